"""Cluster sync against a Kubernetes API (the emulator, or GITOPS_TASKS_TEST_KUBECONFIG's cluster):
plain trees and overlays, substitution, dependencies, policies, failures and health."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from beat_schedule import entry_for
from gitops_tasks.objects.model import Object
from gitops_tasks.objects.outcome import Outcome
from gitops_tasks.sync.pipeline import SyncConfig
from gitops_tasks.sync.reconcile import reconcile
from gitops_tasks.tasks import runner
from gitops_tasks.tasks.context import Context
from tests.gitservers import RemoteRepo
from tests.integration.test_sync_world import IMAGE, World, configmap, deployment, dump, namespace
from tests.kubeapi.fixtures import KubeTarget, kube_target


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeTarget]:
    with kube_target(tmp_path_factory.mktemp("kube")) as target:
        yield target


@pytest.fixture
def world(tmp_path: Path, kube: KubeTarget, file_remote: RemoteRepo) -> Iterator[World]:
    w = World(tmp_path, kube, file_remote)
    yield w
    w.cleanup()


def test_plain_tree_is_applied_in_order_labelled_and_recorded_in_flux_inventory(world: World) -> None:
    ns = world.ns
    revision = world.commit(
        {
            "deploy/app/web.yaml": dump(deployment("web", ns), configmap("web-config", ns)),
            "deploy/ns.yaml": dump(namespace(ns)),
            "deploy/chart/Chart.yaml": "apiVersion: v2\nname: not-applied\n",
            "deploy/chart/templates/x.yaml": "{{ broken }}",
        }
    )
    world.repository()
    world.kustomization("app", path="./deploy")
    outcome = world.sync("app")
    assert (outcome.result, outcome.reason) == ("success", "ReconciliationSucceeded"), outcome.message
    assert outcome.message.startswith(f"Applied revision: {revision}; ")
    assert f"Namespace/{ns} created" in outcome.message and f"Deployment/{ns}/web created" in outcome.message
    assert outcome.changed and outcome.revision == revision
    assert world.inventory("app") == [
        f"_{ns}__Namespace",
        f"{ns}_web-config__ConfigMap",
        f"{ns}_web_apps_Deployment",
    ]
    live = world.get("Deployment", "web", ns, "apps/v1")
    assert live is not None
    assert live["metadata"]["labels"] == {
        "gitops-tasks.io/name": "app",
        "gitops-tasks.io/namespace": "default",
    }
    assert {f["manager"] for f in live["metadata"]["managedFields"]} >= {"gitops-tasks"}
    # Nothing changed: the next run applies nothing and reports no change.
    again = world.sync("app")
    assert again.ready and not again.changed and again.message == f"Applied revision: {revision}"


needs_kubectl = pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl (with kustomize) not installed"
)


@needs_kubectl
def test_kustomize_overlay_and_spec_fields_are_applied(world: World) -> None:
    ns = world.ns
    world.commit(
        {
            "base/kustomization.yaml": "resources: [web.yaml]\n",
            "base/web.yaml": dump(deployment("web", "placeholder", image="nginx:1.0")),
            "prod/kustomization.yaml": "resources: [../base, ns.yaml]\nnamePrefix: prod-\n",
            "prod/ns.yaml": dump(namespace(ns)),
        }
    )
    world.repository()
    world.kustomization(
        "app",
        path="./prod",
        targetNamespace=ns,
        images=[{"name": "nginx", "newName": IMAGE.split(":")[0], "newTag": "3.9"}],
    )
    outcome = world.sync("app")
    assert outcome.ready, outcome.message
    live = world.get("Deployment", "prod-web", ns, "apps/v1")
    assert live is not None and live["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE


def test_post_build_substitution_from_spec_cluster_configmap_and_secrets_dir(world: World) -> None:
    ns = world.ns
    vars_cm = f"{ns}-vars"
    world.cluster.apply(configmap(vars_cm, "default", {"region": "eu-1", "tier": "from-configmap"}))
    world.cleanups.append(("v1", "ConfigMap", vars_cm, "default"))
    secret_dir = world.secrets_dir / "default" / "sync-secret-vars"
    secret_dir.mkdir(parents=True)
    (secret_dir / "token").write_text("s3cr3t")
    world.commit(
        {
            "ns.yaml": dump(namespace(ns)),
            "cm.yaml": dump(
                configmap(
                    "settings-${env}",
                    ns,
                    {
                        "region": "${region}",
                        "tier": "${tier}",
                        "token": "${token}",
                        "size": "${size:=small}",
                        "escaped": "$${env}",
                        "shell": "echo $HOME",
                    },
                ),
                configmap(
                    "raw",
                    ns,
                    {"kept": "${env}"},
                    annotations={"kustomize.toolkit.fluxcd.io/substitute": "disabled"},
                ),
            ),
        }
    )
    world.repository()
    world.kustomization(
        "app",
        postBuild={
            "substitute": {"env": "prod", "tier": "from-spec"},
            "substituteFrom": [
                {"kind": "ConfigMap", "name": vars_cm},
                {"kind": "Secret", "name": "sync-secret-vars"},
                {"kind": "ConfigMap", "name": "absent", "optional": True},
            ],
        },
    )
    outcome = world.sync("app")
    assert outcome.ready, outcome.message
    live = world.get("ConfigMap", "settings-prod", ns)
    assert live is not None
    assert live["data"] == {
        "region": "eu-1",
        "tier": "from-spec",
        "token": "s3cr3t",
        "size": "small",
        "escaped": "${env}",
        "shell": "echo $HOME",
    }
    assert (world.get("ConfigMap", "raw", ns) or {})["data"] == {"kept": "${env}"}
    # A required source that is missing fails the build and keeps the inventory.
    world.kustomization("app", postBuild={"substituteFrom": [{"kind": "Secret", "name": "nope"}]})
    failed = world.sync("app")
    assert (failed.result, failed.reason) == ("transient", "BuildFailed")
    assert "Secret default/nope not found" in failed.message
    assert world.inventory("app") == [
        f"_{ns}__Namespace",
        f"{ns}_raw__ConfigMap",
        f"{ns}_settings-prod__ConfigMap",
    ]


def test_depends_on_waits_for_the_dependency_to_apply_the_current_revision(world: World) -> None:
    ns = world.ns
    world.commit({"infra/ns.yaml": dump(namespace(ns)), "app/cm.yaml": dump(configmap("app", ns))})
    world.repository()
    world.kustomization("infra", path="./infra")
    world.kustomization("app", path="./app", dependsOn=[{"name": "infra"}], retryInterval="10s")
    waiting = world.sync("app")
    assert (waiting.result, waiting.reason, waiting.retry_after_s) == ("waiting", "DependencyNotReady", 10.0)
    assert "dependency 'default/infra' is not ready" in waiting.message
    assert world.get("ConfigMap", "app", ns) is None
    assert world.sync("infra").ready
    assert world.sync("app").ready
    # A new revision: app waits again until infra has applied it.
    revision = world.commit({"app/cm.yaml": dump(configmap("app", ns, {"k": "v2"}))})
    waiting = world.sync("app")
    assert waiting.reason == "DependencyNotReady" and f"source is at {revision}" in waiting.message
    assert world.sync("infra").ready
    assert world.sync("app").ready
    assert (world.get("ConfigMap", "app", ns) or {})["data"] == {"k": "v2"}


def test_namespace_allow_list_refuses_objects_elsewhere_before_applying_anything(world: World) -> None:
    ns = world.ns
    world.commit({"a.yaml": dump(namespace(ns), configmap("ok", ns), configmap("bad", "kube-system"))})
    world.repository()
    world.kustomization("app")
    config = SyncConfig(secrets_dir=world.secrets_dir, cache_dir=world.cache_dir, allowed_namespaces=(ns,))
    outcome = world.sync("app", config)
    assert (outcome.result, outcome.reason) == ("stalled", "ReconciliationFailed")
    assert (
        f"namespace not allowed (allowed namespaces: {ns}): ConfigMap/kube-system/bad (a.yaml: document 3"
        in outcome.message
    )
    assert world.get("Namespace", ns) is None


@pytest.mark.parametrize("path", ["../..", "./x/../../.."])
def test_a_path_leading_out_of_the_repository_is_refused(world: World, path: str) -> None:
    world.repository()
    world.kustomization("app", path=path)
    outcome = world.sync("app")
    assert (outcome.result, outcome.reason) == ("stalled", "ArtifactFailed")
    assert "leads outside the repository" in outcome.message


def test_an_invalid_object_midway_fails_and_keeps_the_previous_inventory(world: World) -> None:
    ns = world.ns
    first = world.commit({"ns.yaml": dump(namespace(ns)), "a.yaml": dump(configmap("a", ns))})
    world.repository()
    world.kustomization("app")
    assert world.sync("app").ready
    before = world.inventory("app")
    bad = configmap("Bad_Name", ns)
    second = world.commit(
        {"a.yaml": dump(configmap("a", ns, {"k": "v2"})), "b.yaml": dump(configmap("b", ns), bad)}
    )
    outcome = world.sync("app")
    assert (outcome.result, outcome.reason) == ("stalled", "ReconciliationFailed")
    assert f"ConfigMap/{ns}/Bad_Name (b.yaml: document 2 (line " in outcome.message
    assert world.inventory("app") == before
    status = world.status_of("app")
    assert (status["lastAppliedRevision"], status["lastAttemptedRevision"]) == (first, second)
    # The dry run caught it: nothing of that stage was written.
    assert (world.get("ConfigMap", "a", ns) or {})["data"] == {"k": "v"}
    assert world.get("ConfigMap", "b", ns) is None


def test_hpa_owned_replicas_are_left_alone(world: World) -> None:
    ns = world.ns
    world.commit({"ns.yaml": dump(namespace(ns)), "web.yaml": dump(deployment("web", ns))})
    world.repository()
    world.kustomization("app")
    assert world.sync("app").ready
    # Given an autoscaler owning spec.replicas ...
    scale = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {"replicas": 5},
    }
    hpa = world.connect(None)
    hpa.field_manager = "horizontal-pod-autoscaler"
    hpa.apply(scale)
    hpa.close()
    # ... a change in Git that does not mention replicas keeps them.
    world.commit({"web.yaml": dump(deployment("web", ns, labels={"team": "a"}))})
    assert world.sync("app").ready
    live = world.get("Deployment", "web", ns, "apps/v1") or {}
    assert live["spec"]["replicas"] == 5
    assert live["metadata"]["labels"]["team"] == "a"


def test_immutable_changes_fail_unless_forced_then_the_object_is_recreated(world: World) -> None:
    ns = world.ns
    world.commit({"ns.yaml": dump(namespace(ns)), "web.yaml": dump(deployment("web", ns))})
    world.repository()
    world.kustomization("app")
    assert world.sync("app").ready
    uid = (world.get("Deployment", "web", ns, "apps/v1") or {})["metadata"]["uid"]
    changed = deployment("web", ns)
    changed["spec"]["selector"]["matchLabels"]["tier"] = "x"
    changed["spec"]["template"]["metadata"]["labels"]["tier"] = "x"
    world.commit({"web.yaml": dump(changed)})
    outcome = world.sync("app")
    assert (outcome.result, outcome.reason) == ("stalled", "ReconciliationFailed")
    assert f"Deployment/{ns}/web" in outcome.message and "immutable" in outcome.message
    world.kustomization("app", force=True)
    outcome = world.sync("app")
    assert outcome.ready, outcome.message
    assert f"Deployment/{ns}/web recreated" in outcome.message
    live = world.get("Deployment", "web", ns, "apps/v1") or {}
    assert live["metadata"]["uid"] != uid and live["spec"]["selector"]["matchLabels"]["tier"] == "x"


def test_ssa_if_not_present_and_ignore_policies(world: World) -> None:
    ns = world.ns
    policy = "kustomize.toolkit.fluxcd.io/ssa"
    world.commit(
        {
            "ns.yaml": dump(namespace(ns)),
            "a.yaml": dump(
                configmap("once", ns, {"k": "git"}, annotations={policy: "IfNotPresent"}),
                configmap("never", ns, annotations={policy: "Ignore"}),
            ),
        }
    )
    world.repository()
    world.kustomization("app")
    assert world.sync("app").ready
    assert (world.get("ConfigMap", "once", ns) or {})["data"] == {"k": "git"}
    assert world.get("ConfigMap", "never", ns) is None
    other = world.connect(None)
    other.field_manager = "cert-manager"
    other.apply(configmap("once", ns, {"k": "mutated"}))
    other.close()
    world.commit(
        {"a.yaml": dump(configmap("once", ns, {"k": "git-v2"}, annotations={policy: "IfNotPresent"}))}
    )
    assert world.sync("app").ready
    assert (world.get("ConfigMap", "once", ns) or {})["data"] == {"k": "mutated"}


def test_health_checks_wait_for_readiness_within_the_timeout(world: World) -> None:
    ns = world.ns
    world.commit({"ns.yaml": dump(namespace(ns)), "web.yaml": dump(deployment("web", ns))})
    world.repository()
    world.kustomization("app", wait=True, timeout="60s")
    assert world.sync("app").ready
    world.kustomization(
        "app",
        timeout="1s",
        healthChecks=[{"apiVersion": "apps/v1", "kind": "Deployment", "name": "missing", "namespace": ns}],
    )
    outcome = world.sync("app")
    assert (outcome.result, outcome.reason) == ("transient", "HealthCheckFailed")
    assert f"timeout waiting for: [Deployment/{ns}/missing status: 'NotFound'" in outcome.message
    assert world.inventory("app") == [f"_{ns}__Namespace", f"{ns}_web_apps_Deployment"]


def test_an_unhealthy_deployment_fails_the_health_check(world: World) -> None:
    if world.kube.emulator is None:
        pytest.skip("needs the emulator to make a Deployment unhealthy")
    ns = world.ns
    world.commit({"ns.yaml": dump(namespace(ns)), "web.yaml": dump(deployment("web", ns))})
    world.repository()
    world.kustomization("app")
    assert world.sync("app").ready
    world.kube.emulator.set_status(
        "apps/v1",
        "Deployment",
        ns,
        "web",
        {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 0},
    )
    world.kustomization("app", wait=True, timeout="1s")
    outcome = world.sync("app")
    assert outcome.reason == "HealthCheckFailed"
    assert f"Deployment/{ns}/web status: 'InProgress' (available replicas: 0/1)" in outcome.message
    assert (
        "lastAppliedRevision" in world.statuses[next(r for r in world.statuses if r.kind == "Kustomization")]
    )


def crd(group: str, kind: str, scope: str = "Namespaced") -> dict:
    plural = kind.lower() + "s"
    schema = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
            "scope": scope,
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": schema}],
        },
    }


def test_crds_and_their_custom_resources_apply_in_one_sync_and_prune(world: World) -> None:
    ns = world.ns
    group = f"{ns}.example.com"
    world.cleanups.append(("apiextensions.k8s.io/v1", "CustomResourceDefinition", f"widgets.{group}", None))
    widget = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 3}}
    world.commit(
        {"ns.yaml": dump(namespace(ns)), "widget.yaml": dump(widget), "crd.yaml": dump(crd(group, "Widget"))}
    )
    world.repository()
    world.kustomization("app", targetNamespace=ns)
    outcome = world.sync("app")
    assert outcome.ready, outcome.message
    assert f"{ns}_w1_{group}_Widget" in world.inventory("app")
    assert (world.get("Widget", "w1", ns, f"{group}/v1") or {})["spec"] == {"size": 3}
    world.commit({"widget.yaml": None})
    outcome = world.sync("app")
    assert outcome.ready and f"Widget/{ns}/w1 deleted" in outcome.message
    assert world.get("Widget", "w1", ns, f"{group}/v1") is None


def test_a_sync_whose_run_lock_was_taken_over_applies_nothing(
    world: World, ctx: Context, caplog: pytest.LogCaptureFixture
) -> None:
    """A run whose lock is lost mid-run stops before its side effects: another worker may own the
    object by then, so applying would run one object on two workers."""
    # Given a Kustomization with something to apply
    ns = world.ns
    world.commit({"deploy/ns.yaml": dump(namespace(ns)), "deploy/cm.yaml": dump(configmap("web", ns))})
    world.repository()
    kustomization = world.kustomization("app", path="./deploy")
    ctx.catalog.apply([kustomization], entry_for=entry_for)
    lock_key = ctx.keys.run_lock(kustomization.ref.key)
    other = "other-worker:0123456789abcdef"

    def sync_after_a_takeover(obj: Object, previous: dict[str, Any], run_ctx: Context) -> Outcome:
        # Mid-run, this worker's lock expires (a Redis pause) and another worker takes it.
        ctx.client.set(lock_key, other, px=10_000)
        return reconcile(
            obj,
            previous,
            lookup=world,
            connect=world.connect,
            config=world.config,
            ensure_held=run_ctx.ensure_held,
        )

    # When the run goes on
    result = runner.run(
        kustomization.ref,
        reason="manual",
        ctx=ctx,
        reconciler=sync_after_a_takeover,
        enqueue_dependent=lambda _: False,
    )

    # Then it stops before applying anything, says why, and leaves the new holder alone
    assert (result["result"], result["reason"]) == ("discarded", "RunLockLost"), result
    assert world.get("Namespace", ns) is None
    assert world.get("ConfigMap", "web", ns) is None
    assert ctx.client.get(lock_key) == other
    assert ctx.status.get(kustomization.ref) == {}
    assert any(
        r.levelname == "WARNING" and "stopped before its next side effect" in r.getMessage()
        for r in caplog.records
    )
