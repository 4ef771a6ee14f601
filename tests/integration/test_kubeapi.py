"""The Kubernetes API emulator, driven through the official client (and kubectl) over real HTTP.

Every test also runs against a real cluster when ``GITOPS_TASKS_TEST_KUBECONFIG`` names a kubeconfig:
objects live in a fresh namespace per test, waits poll (a real cluster deletes asynchronously), and the
few emulator-only checks skip there.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, dynamic, watch
from kubernetes.client.rest import ApiException

from tests.kubeapi.fixtures import KubeTarget, kube_target, unique_name
from tests.procs import wait_for

SSA = "application/apply-patch+yaml"


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeTarget]:
    with kube_target(tmp_path_factory.mktemp("kube")) as target:
        yield target


@pytest.fixture
def api(kube: KubeTarget) -> Iterator[client.ApiClient]:
    api_client = kube.api_client()
    yield api_client
    api_client.close()


@pytest.fixture
def dyn(api: client.ApiClient, tmp_path: Path) -> dynamic.DynamicClient:
    return dynamic.DynamicClient(api, cache_file=str(tmp_path / "discovery.json"))


@pytest.fixture
def ns(api: client.ApiClient) -> Iterator[str]:
    core = client.CoreV1Api(api)
    name = unique_name("t")
    core.create_namespace({"metadata": {"name": name}})
    yield name
    try:
        core.delete_namespace(name)
    except ApiException as exc:
        if exc.status != 404:
            raise


@pytest.fixture
def emulator(kube: KubeTarget) -> Any:
    if kube.emulator is None:
        pytest.skip("emulator-only behaviour (a real cluster is configured)")
    return kube.emulator


def error(exc: pytest.ExceptionInfo[ApiException]) -> dict[str, Any]:
    body = json.loads(exc.value.body)
    assert body["kind"] == "Status" and body["code"] == exc.value.status
    return body


def gone(read: Any, *args: str) -> bool:
    try:
        read(*args)
    except ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


def deployment(
    name: str, ns: str, *, replicas: int | None = 2, containers: list[str] | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {
                "containers": [
                    {"name": c, "image": f"registry.example/{c}:1", "ports": [{"containerPort": 8080}]}
                    for c in containers or ["app"]
                ]
            },
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def configmap(
    name: str, ns: str, data: dict[str, str], labels: dict[str, str] | None = None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": ns}
    if labels:
        metadata["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


def managers(obj: Any) -> dict[str, dict[str, Any]]:
    entries = obj["metadata"].get("managedFields") or []
    return {f"{e['manager']}/{e['operation']}": e["fieldsV1"] for e in entries}


# -- discovery, namespaces, basic CRUD ------------------------------------------------------------


def test_discovery_lists_builtin_groups_and_the_version(
    api: client.ApiClient, dyn: dynamic.DynamicClient
) -> None:
    groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
    assert {
        "apps",
        "batch",
        "networking.k8s.io",
        "rbac.authorization.k8s.io",
        "apiextensions.k8s.io",
        "autoscaling",
    } <= groups
    assert client.CoreApi(api).get_api_versions().versions == ["v1"]
    assert client.VersionApi(api).get_code().major == "1"
    for api_version, kind, namespaced in [
        ("v1", "Namespace", False),
        ("v1", "ConfigMap", True),
        ("apps/v1", "Deployment", True),
        ("batch/v1", "CronJob", True),
        ("networking.k8s.io/v1", "Ingress", True),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", False),
        ("autoscaling/v2", "HorizontalPodAutoscaler", True),
    ]:
        assert dyn.resources.get(api_version=api_version, kind=kind).namespaced is namespaced


def test_namespaced_create_needs_its_namespace(api: client.ApiClient) -> None:
    missing = unique_name("missing")
    with pytest.raises(ApiException) as exc:
        client.CoreV1Api(api).create_namespaced_config_map(missing, configmap("a", missing, {}))
    assert exc.value.status == 404
    assert error(exc)["message"] == f'namespaces "{missing}" not found'


def test_duplicate_create_and_stale_resource_version_conflict(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    first = core.create_namespaced_config_map(ns, configmap("a", ns, {"k": "1"}))
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map(ns, configmap("a", ns, {"k": "2"}))
    assert (exc.value.status, error(exc)["reason"]) == (409, "AlreadyExists")

    first.data = {"k": "2"}
    second = core.replace_namespaced_config_map("a", ns, first)
    assert int(second.metadata.resource_version) > int(first.metadata.resource_version)
    first.data = {"k": "3"}  # still carries the first resourceVersion
    with pytest.raises(ApiException) as exc:
        core.replace_namespaced_config_map("a", ns, first)
    assert (exc.value.status, error(exc)["reason"]) == (409, "Conflict")
    assert core.read_namespaced_config_map("a", ns).data == {"k": "2"}


def test_label_and_field_selectors_filter_lists(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    for name, labels in [
        ("a", {"tier": "web", "env": "prod"}),
        ("b", {"tier": "db", "env": "prod"}),
        ("c", {"tier": "web"}),
    ]:
        core.create_namespaced_config_map(ns, configmap(name, ns, {}, {"set": "sel", **labels}))

    def names(label_selector: str, **kwargs: str) -> list[str]:
        # "set=sel" leaves out what the cluster itself puts in every namespace (kube-root-ca.crt)
        found = core.list_namespaced_config_map(ns, label_selector=f"set=sel,{label_selector}", **kwargs)
        return sorted(cm.metadata.name for cm in found.items)

    assert names("tier=web") == ["a", "c"]
    assert names("tier==web,env=prod") == ["a"]
    assert names("tier!=web") == ["b"]
    assert names("tier in (db, web),env") == ["a", "b"]
    assert names("tier notin (web)") == ["b"]
    assert names("!env") == ["c"]
    assert names("set", field_selector="metadata.name=b") == ["b"]
    assert names("tier", field_selector="metadata.name!=b") == ["a", "c"]
    everywhere = core.list_config_map_for_all_namespaces(label_selector="tier=db").items
    assert [(cm.metadata.namespace, cm.metadata.name) for cm in everywhere] == [(ns, "b")]
    with pytest.raises(ApiException) as exc:
        core.list_namespaced_config_map(ns, label_selector="tier in (web")
    assert exc.value.status == 400


def test_custom_resource_definition_registers_and_unregisters_its_type(
    api: client.ApiClient, ns: str, tmp_path: Path
) -> None:
    group = f"{unique_name('g')}.example.com"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    }
    ext = client.ApiextensionsV1Api(api)
    ext.create_custom_resource_definition(crd)
    custom = client.CustomObjectsApi(api)
    widget = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 3}}
    try:
        wait_for(
            lambda: any(g.name == group for g in client.ApisApi(api).get_api_versions().groups),
            timeout_s=30,
            what="the CRD's group in discovery",
        )
        wait_for(lambda: _created(custom, group, ns, widget), timeout_s=30, what="the first Widget")
        listed = custom.list_namespaced_custom_object(group, "v1", ns, "widgets")
        assert [(w["kind"], w["metadata"]["name"], w["spec"]) for w in listed["items"]] == [
            ("Widget", "w1", {"size": 3})
        ]
        kinds = dynamic.DynamicClient(api, cache_file=str(tmp_path / "d.json")).resources.get(
            api_version=f"{group}/v1", kind="Widget"
        )
        assert kinds.namespaced
        established = ext.read_custom_resource_definition(f"widgets.{group}").status.conditions
        assert any(c.type == "Established" and c.status == "True" for c in established)
    finally:
        ext.delete_custom_resource_definition(f"widgets.{group}")
    wait_for(
        lambda: all(g.name != group for g in client.ApisApi(api).get_api_versions().groups),
        timeout_s=60,
        what="the CRD's group to leave discovery",
    )


def _created(custom: client.CustomObjectsApi, group: str, ns: str, body: dict[str, Any]) -> bool:
    try:
        custom.create_namespaced_custom_object(group, "v1", ns, "widgets", body)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


# -- server-side apply ------------------------------------------------------------------------------


def test_apply_creates_then_updates_and_records_managed_fields(dyn: dynamic.DynamicClient, ns: str) -> None:
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    created = deployments.server_side_apply(body=deployment("web", ns), field_manager="gitops-tasks")
    fields = managers(created.to_dict())["gitops-tasks/Apply"]
    container = fields["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"app"}']
    assert {".", "f:image", "f:name", "f:ports"} <= set(container)
    assert 'k:{"containerPort":8080,"protocol":"TCP"}' in container["f:ports"]
    assert fields["f:spec"]["f:selector"] == {}

    body = deployment("web", ns, replicas=3)
    updated = deployments.server_side_apply(body=body, field_manager="gitops-tasks")
    assert updated.spec.replicas == 3
    assert updated.metadata.generation == created.metadata.generation + 1


def test_an_unchanged_apply_writes_nothing(dyn: dynamic.DynamicClient, ns: str) -> None:
    configmaps = dyn.resources.get(api_version="v1", kind="ConfigMap")
    first = configmaps.server_side_apply(body=configmap("cfg", ns, {"k": "v"}), field_manager="gitops-tasks")
    again = configmaps.server_side_apply(body=configmap("cfg", ns, {"k": "v"}), field_manager="gitops-tasks")
    assert again.metadata.resourceVersion == first.metadata.resourceVersion
    assert again.metadata.managedFields[0].time == first.metadata.managedFields[0].time


def test_apply_removes_fields_it_no_longer_applies_but_keeps_other_managers_fields(
    api: client.ApiClient, dyn: dynamic.DynamicClient, ns: str
) -> None:
    configmaps = dyn.resources.get(api_version="v1", kind="ConfigMap")
    core = client.CoreV1Api(api)
    configmaps.server_side_apply(
        body=configmap("cfg", ns, {"a": "1", "b": "2"}, {"keep": "x", "drop": "y"}),
        field_manager="gitops-tasks",
    )
    core.patch_namespaced_config_map("cfg", ns, {"data": {"c": "3"}}, field_manager="someone-else")
    result = configmaps.server_side_apply(
        body=configmap("cfg", ns, {"a": "1"}, {"keep": "x"}), field_manager="gitops-tasks"
    )
    assert result.data.to_dict() == {"a": "1", "c": "3"}
    assert result.metadata.labels.to_dict() == {"keep": "x"}
    assert managers(result.to_dict())["someone-else/Update"] == {"f:data": {"f:c": {}}}

    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    deployments.server_side_apply(
        body=deployment("web", ns, containers=["app", "sidecar"]), field_manager="gitops-tasks"
    )
    slim = deployments.server_side_apply(
        body=deployment("web", ns, containers=["app"]), field_manager="gitops-tasks"
    )
    assert [c.name for c in slim.spec.template.spec.containers] == ["app"]


def test_fields_another_manager_updated_survive_an_apply_that_omits_them(
    api: client.ApiClient, dyn: dynamic.DynamicClient, ns: str
) -> None:
    # Given gitops-tasks applied replicas once, and an autoscaler then set them through a patch
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    deployments.server_side_apply(body=deployment("web", ns, replicas=2), field_manager="gitops-tasks")
    client.AppsV1Api(api).patch_namespaced_deployment(
        "web", ns, {"spec": {"replicas": 5}}, field_manager="hpa"
    )
    # When gitops-tasks applies a manifest without replicas
    result = deployments.server_side_apply(
        body=deployment("web", ns, replicas=None), field_manager="gitops-tasks"
    )
    # Then the autoscaler's value stays, and it owns it
    assert result.spec.replicas == 5
    owners = managers(result.to_dict())
    assert "f:replicas" in owners["hpa/Update"]["f:spec"]
    assert "f:replicas" not in owners["gitops-tasks/Apply"]["f:spec"]
    # And applying a different replicas value now conflicts with the autoscaler
    with pytest.raises(ApiException) as exc:
        deployments.server_side_apply(body=deployment("web", ns, replicas=2), field_manager="gitops-tasks")
    assert exc.value.status == 409
    assert (
        error(exc)["message"]
        == 'Apply failed with 1 conflict: conflict with "hpa" using apps/v1: .spec.replicas'
    )


def test_apply_conflicts_with_another_applier_unless_forced(
    api: client.ApiClient, dyn: dynamic.DynamicClient, ns: str
) -> None:
    configmaps = dyn.resources.get(api_version="v1", kind="ConfigMap")
    configmaps.server_side_apply(body=configmap("cfg", ns, {"k": "1", "other": "x"}), field_manager="alice")
    with pytest.raises(ApiException) as exc:
        configmaps.server_side_apply(body=configmap("cfg", ns, {"k": "2"}), field_manager="bob")
    body = error(exc)
    assert (exc.value.status, body["reason"]) == (409, "Conflict")
    assert body["message"] == 'Apply failed with 1 conflict: conflict with "alice": .data.k'
    assert body["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "alice"', "field": ".data.k"}
    ]
    # The same value is shared ownership, not a conflict
    configmaps.server_side_apply(body=configmap("cfg", ns, {"k": "1"}), field_manager="carol")

    forced = configmaps.server_side_apply(
        body=configmap("cfg", ns, {"k": "2"}), field_manager="bob", force_conflicts=True
    )
    assert forced.data.k == "2"
    owners = managers(forced.to_dict())
    assert owners["bob/Apply"] == {"f:data": {"f:k": {}}}
    assert owners["alice/Apply"] == {"f:data": {"f:other": {}}}
    assert "carol/Apply" not in owners


def test_apply_through_the_typed_client_with_the_apply_content_type(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    result = core.patch_namespaced_config_map(
        "typed", ns, configmap("typed", ns, {"k": "v"}), field_manager="gitops-tasks", _content_type=SSA
    )
    assert result.data == {"k": "v"}
    assert [(e.manager, e.operation) for e in result.metadata.managed_fields] == [("gitops-tasks", "Apply")]
    with pytest.raises(ApiException) as exc:
        core.patch_namespaced_config_map("typed", ns, configmap("typed", ns, {"k": "v"}), _content_type=SSA)
    assert exc.value.status == 422  # fieldManager is required for apply


def test_concurrent_writers_each_get_their_own_resource_version(
    kube: KubeTarget, ns: str, tmp_path: Path
) -> None:
    def write(worker: int) -> list[int]:
        with kube.api_client() as api_client:
            discovery = str(tmp_path / f"discovery-{worker}.json")
            configmaps = dynamic.DynamicClient(api_client, cache_file=discovery).resources.get(
                api_version="v1", kind="ConfigMap"
            )
            return [
                int(
                    configmaps.server_side_apply(
                        body=configmap(f"cm-{worker}-{i}", ns, {"i": str(i)}), field_manager=f"w{worker}"
                    ).metadata.resourceVersion
                )
                for i in range(10)
            ]

    with ThreadPoolExecutor(max_workers=4) as pool:
        versions = [v for batch in pool.map(write, range(4)) for v in batch]
    assert len(set(versions)) == 40
    with kube.api_client() as api_client:
        assert len(client.CoreV1Api(api_client).list_namespaced_config_map(ns).items) >= 40


def test_watch_streams_changes_after_a_resource_version(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    start = core.list_namespaced_config_map(ns).metadata.resource_version
    core.create_namespaced_config_map(ns, configmap("a", ns, {}, {"watched": "yes"}))
    core.create_namespaced_config_map(ns, configmap("b", ns, {}))
    core.patch_namespaced_config_map("a", ns, {"data": {"k": "v"}})
    core.delete_namespaced_config_map("a", ns)
    seen = []
    stream = watch.Watch()
    for event in stream.stream(
        core.list_namespaced_config_map,
        ns,
        resource_version=start,
        label_selector="watched=yes",
        timeout_seconds=5,
    ):
        seen.append((event["type"], event["object"].metadata.name))
        if event["type"] == "DELETED":
            stream.stop()
    assert seen == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]


# -- dryRun, deletion, immutability ---------------------------------------------------------------


def test_dry_run_changes_nothing(api: client.ApiClient, dyn: dynamic.DynamicClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    preview = core.create_namespaced_config_map(ns, configmap("dry", ns, {"k": "v"}), dry_run="All")
    assert preview.metadata.name == "dry"
    assert gone(core.read_namespaced_config_map, "dry", ns)

    configmaps = dyn.resources.get(api_version="v1", kind="ConfigMap")
    configmaps.server_side_apply(
        body=configmap("dry", ns, {"k": "v"}), field_manager="gitops-tasks", dry_run="All"
    )
    assert gone(core.read_namespaced_config_map, "dry", ns)

    live = core.create_namespaced_config_map(ns, configmap("dry", ns, {"k": "v"}))
    applied = configmaps.server_side_apply(
        body=configmap("dry", ns, {"k": "new"}),
        field_manager="gitops-tasks",
        force_conflicts=True,
        dry_run="All",
    )
    assert applied.data.k == "new"
    patched = core.patch_namespaced_config_map("dry", ns, {"data": {"k": "patched"}}, dry_run="All")
    assert patched.data == {"k": "patched"}
    core.delete_namespaced_config_map("dry", ns, dry_run="All")
    after = core.read_namespaced_config_map("dry", ns)
    assert (after.data, after.metadata.resource_version) == ({"k": "v"}, live.metadata.resource_version)


def _owned_by(owner: Any, name: str, ns: str) -> dict[str, Any]:
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": owner.metadata.name, "uid": owner.metadata.uid}
    return {"metadata": {"name": name, "namespace": ns, "ownerReferences": [ref]}, "data": {}}


@pytest.mark.parametrize("policy", ["Background", "Foreground", "Orphan"])
def test_delete_propagates_to_dependents_by_policy(api: client.ApiClient, ns: str, policy: str) -> None:
    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(ns, configmap("owner", ns, {}))
    core.create_namespaced_config_map(ns, _owned_by(owner, "dependent", ns))
    core.delete_namespaced_config_map("owner", ns, propagation_policy=policy)
    wait_for(lambda: gone(core.read_namespaced_config_map, "owner", ns), timeout_s=60, what="the owner to go")
    if policy == "Orphan":
        wait_for(
            lambda: not core.read_namespaced_config_map("dependent", ns).metadata.owner_references,
            timeout_s=60,
            what="the orphan's owner reference to go",
        )
    else:
        wait_for(
            lambda: gone(core.read_namespaced_config_map, "dependent", ns),
            timeout_s=60,
            what="the dependent to go",
        )


def test_deletions_record_their_propagation_policy(api: client.ApiClient, ns: str, emulator: Any) -> None:
    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(ns, configmap("owner", ns, {}))
    core.create_namespaced_config_map(ns, _owned_by(owner, "dependent", ns))
    core.delete_namespaced_config_map(
        "owner", ns, body=client.V1DeleteOptions(propagation_policy="Foreground")
    )
    recorded = [(d["name"], d["propagationPolicy"]) for d in emulator.deletions if d["namespace"] == ns]
    assert recorded == [("owner", "Foreground"), ("dependent", "Foreground")]


def test_finalizers_hold_an_object_until_removed(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    body = configmap("held", ns, {})
    body["metadata"]["finalizers"] = ["example.com/hold"]
    core.create_namespaced_config_map(ns, body)
    core.delete_namespaced_config_map("held", ns)
    held = core.read_namespaced_config_map("held", ns)
    assert held.metadata.deletion_timestamp is not None
    core.patch_namespaced_config_map("held", ns, {"metadata": {"finalizers": None}})
    wait_for(
        lambda: gone(core.read_namespaced_config_map, "held", ns), timeout_s=30, what="the released object"
    )


def test_deleting_a_namespace_deletes_its_objects(api: client.ApiClient, dyn: dynamic.DynamicClient) -> None:
    core = client.CoreV1Api(api)
    name = unique_name("doomed")
    core.create_namespace({"metadata": {"name": name}})
    core.create_namespaced_config_map(name, configmap("a", name, {}))
    dyn.resources.get(api_version="apps/v1", kind="Deployment").server_side_apply(
        body=deployment("web", name), field_manager="gitops-tasks"
    )
    core.delete_namespace(name)
    wait_for(lambda: gone(core.read_namespace, name), timeout_s=120, what=f"namespace {name} to go")
    assert core.list_config_map_for_all_namespaces(field_selector=f"metadata.namespace={name}").items == []
    apps = client.AppsV1Api(api)
    assert apps.list_deployment_for_all_namespaces(field_selector=f"metadata.namespace={name}").items == []
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map(name, configmap("late", name, {}))
    assert exc.value.status == 404


def test_immutable_fields_are_refused_with_422(
    api: client.ApiClient, dyn: dynamic.DynamicClient, ns: str
) -> None:
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    deployments.server_side_apply(body=deployment("web", ns), field_manager="gitops-tasks")
    changed = deployment("web", ns)
    changed["spec"]["selector"]["matchLabels"]["extra"] = "x"
    changed["spec"]["template"]["metadata"]["labels"]["extra"] = "x"
    with pytest.raises(ApiException) as exc:
        deployments.server_side_apply(body=changed, field_manager="gitops-tasks", force_conflicts=True)
    body = error(exc)
    assert (exc.value.status, body["reason"]) == (422, "Invalid")
    assert "spec.selector" in body["message"] and "field is immutable" in body["message"]
    assert body["details"]["kind"] == "Deployment" and body["details"]["group"] == "apps"

    core = client.CoreV1Api(api)
    sealed = configmap("sealed", ns, {"k": "v"})
    sealed["immutable"] = True
    core.create_namespaced_config_map(ns, sealed)
    with pytest.raises(ApiException) as exc:
        core.patch_namespaced_config_map("sealed", ns, {"data": {"k": "changed"}})
    assert exc.value.status == 422

    service = {
        "metadata": {"name": "svc"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
    }
    created = core.create_namespaced_service(ns, service)
    with pytest.raises(ApiException) as exc:
        core.patch_namespaced_service("svc", ns, {"spec": {"clusterIP": _other_ip(created.spec.cluster_ip)}})
    assert exc.value.status == 422


def _other_ip(ip: str) -> str:
    parts = ip.split(".")
    parts[-1] = str((int(parts[-1]) % 200) + 1) if parts[-1] != "1" else "2"
    return ".".join(parts)


def test_simulated_controllers_report_ready_workloads(
    api: client.ApiClient, dyn: dynamic.DynamicClient, ns: str, emulator: Any
) -> None:
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    applied = deployments.server_side_apply(
        body=deployment("web", ns, replicas=3), field_manager="gitops-tasks"
    )
    assert (
        applied.status.availableReplicas == 3
        and applied.status.observedGeneration == applied.metadata.generation
    )
    emulator.set_status(
        "apps/v1", "Deployment", ns, "web", {"observedGeneration": 1, "replicas": 3, "availableReplicas": 0}
    )
    assert client.AppsV1Api(api).read_namespaced_deployment("web", ns).status.available_replicas == 0


def test_plain_http_endpoints_and_unsupported_requests(emulator: Any) -> None:
    def get(path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(emulator.url + path, timeout=10) as response:  # noqa: S310 - http://127.0.0.1
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    assert get("/healthz") == (200, b"ok")
    status, body = get("/openapi/v3")
    assert status == 200 and "apis/apps/v1" in json.loads(body)["paths"]
    assert get("/apis/nothing.example.com/v1/things")[0] == 404


def test_a_wrong_bearer_token_is_unauthorized(emulator: Any) -> None:
    config = client.Configuration(host=emulator.url)
    config.api_key = {"BearerToken": "wrong"}
    config.api_key_prefix = {"BearerToken": "Bearer"}
    with client.ApiClient(config) as wrong, pytest.raises(ApiException) as exc:
        client.CoreV1Api(wrong).list_namespace()
    assert exc.value.status == 401


# -- kubectl ----------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_gets_and_applies_server_side(kube: KubeTarget, ns: str, tmp_path: Path) -> None:
    def kubectl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["kubectl", "--kubeconfig", str(kube.kubeconfig), "--cache-dir", str(tmp_path / "cache"), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    listed = kubectl("get", "namespaces", "-o", "name")
    assert f"namespace/{ns}" in listed.stdout.split(), listed.stderr
    manifest = json.dumps(deployment("web", ns, replicas=2))
    applied = kubectl("apply", "--server-side", "--field-manager", "gitops-tasks", "-f", "-", stdin=manifest)
    assert applied.returncode == 0, applied.stderr
    assert "deployment.apps/web serverside-applied" in applied.stdout
    other = json.dumps(deployment("web", ns, replicas=4))
    refused = kubectl("apply", "--server-side", "-f", "-", stdin=other)
    assert refused.returncode != 0 and 'conflict with "gitops-tasks"' in refused.stderr
    forced = kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=other)
    assert forced.returncode == 0, forced.stderr
    shown = json.loads(
        kubectl("get", "deployment", "web", "-n", ns, "-o", "json", "--show-managed-fields").stdout
    )
    assert shown["spec"]["replicas"] == 4
    assert {"gitops-tasks", "kubectl"} <= {e["manager"] for e in shown["metadata"]["managedFields"]}
