"""The Kubernetes API emulator's store, called in-process (no HTTP): patch kinds, status, deletion."""

from __future__ import annotations

from typing import Any

import pytest

from tests.kubeapi.errors import ApiError
from tests.kubeapi.patching import APPLY_PATCH, JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH
from tests.kubeapi.resources import ResourceType
from tests.kubeapi.selectors import parse_label_selector
from tests.kubeapi.store import Store


@pytest.fixture
def store() -> Store:
    return Store()


def rt(store: Store, api_version: str, plural: str) -> ResourceType:
    found = store.registry.get(api_version, plural)
    assert found is not None
    return found


def deployment(name: str = "web", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [{"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]}]
                },
            },
            **spec,
        },
    }


def reason(exc: pytest.ExceptionInfo[ApiError]) -> tuple[int, str]:
    return exc.value.code, exc.value.reason


def test_strategic_merge_merges_containers_by_name_and_honours_delete_directives(store: Store) -> None:
    deployments = rt(store, "apps/v1", "deployments")
    store.create(deployments, "default", deployment(), manager="test", dry_run=False)
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "env": [{"name": "B", "value": "2"}, {"name": "A", "$patch": "delete"}],
                        },
                        {"name": "sidecar", "image": "side:1"},
                    ]
                }
            }
        }
    }
    result, _ = store.patch(
        deployments,
        "default",
        "web",
        patch,
        content_type=STRATEGIC_PATCH,
        manager="m",
        force=None,
        dry_run=False,
    )
    containers = result["spec"]["template"]["spec"]["containers"]
    assert containers == [
        {"name": "app", "image": "app:1", "env": [{"name": "B", "value": "2"}]},
        {"name": "sidecar", "image": "side:1"},
    ]


def test_merge_patch_replaces_lists_and_json_patch_edits_them(store: Store) -> None:
    deployments = rt(store, "apps/v1", "deployments")
    store.create(deployments, "default", deployment(), manager="test", dry_run=False)
    containers = [{"name": "only", "image": "only:1"}]
    merged, _ = store.patch(
        deployments,
        "default",
        "web",
        {"spec": {"template": {"spec": {"containers": containers}}}},
        content_type=MERGE_PATCH,
        manager="m",
        force=None,
        dry_run=False,
    )
    assert merged["spec"]["template"]["spec"]["containers"] == containers
    ops = [
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "only:2"},
        {"op": "add", "path": "/metadata/labels", "value": {"a/b": "c"}},
    ]
    patched, _ = store.patch(
        deployments, "default", "web", ops, content_type=JSON_PATCH, manager="m", force=None, dry_run=False
    )
    assert patched["spec"]["template"]["spec"]["containers"][0]["image"] == "only:2"
    assert patched["metadata"]["labels"] == {"a/b": "c"}
    with pytest.raises(ApiError) as exc:
        store.patch(
            deployments,
            "default",
            "web",
            [{"op": "test", "path": "/spec/replicas", "value": 7}],
            content_type=JSON_PATCH,
            manager="m",
            force=None,
            dry_run=False,
        )
    assert exc.value.code == 422


def test_writes_without_change_keep_the_resource_version_and_metadata_changes_keep_generation(
    store: Store,
) -> None:
    deployments = rt(store, "apps/v1", "deployments")
    created = store.create(deployments, "default", deployment(), manager="test", dry_run=False)
    same = store.replace(deployments, "default", "web", created, manager="test", dry_run=False)
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    labelled, _ = store.patch(
        deployments,
        "default",
        "web",
        {"metadata": {"labels": {"x": "y"}}},
        content_type=MERGE_PATCH,
        manager="m",
        force=None,
        dry_run=False,
    )
    assert labelled["metadata"]["generation"] == 1
    assert int(labelled["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])


def test_status_is_written_only_through_the_status_subresource(store: Store) -> None:
    store = Store(simulate_controllers=False)
    deployments = rt(store, "apps/v1", "deployments")
    store.create(
        deployments, "default", {**deployment(), "status": {"replicas": 9}}, manager="t", dry_run=False
    )
    assert "status" not in store.get(deployments, "default", "web")
    with_status = {**store.get(deployments, "default", "web"), "status": {"readyReplicas": 1}}
    store.replace(
        deployments, "default", "web", with_status, manager="ctl", dry_run=False, subresource="status"
    )
    written = store.get(deployments, "default", "web")
    assert written["status"] == {"readyReplicas": 1}
    assert [(e["manager"], e.get("subresource")) for e in written["metadata"]["managedFields"]] == [
        ("t", None),
        ("ctl", "status"),
    ]
    store.replace(deployments, "default", "web", {**written, "status": {}}, manager="t", dry_run=False)
    assert store.get(deployments, "default", "web")["status"] == {"readyReplicas": 1}


def test_custom_resources_merge_by_their_schema_and_refuse_strategic_merge(store: Store) -> None:
    crds = rt(store, "apiextensions.k8s.io/v1", "customresourcedefinitions")
    targets = {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["host"]}
    schema = {
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {"targets": targets}}},
    }
    crd = {
        "metadata": {"name": "routes.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Cluster",
            "names": {"plural": "routes", "kind": "Route"},
            "versions": [
                {"name": "v1beta1", "served": True, "storage": False},
                {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": schema}},
            ],
        },
    }
    store.create(crds, "", crd, manager="t", dry_run=False)
    routes = rt(store, "example.com/v1", "routes")
    assert not routes.namespaced and store.registry.get("example.com/v1beta1", "routes") is not None
    route = {"apiVersion": "example.com/v1", "kind": "Route", "metadata": {"name": "r"}}
    store.apply(
        routes,
        "",
        "r",
        {**route, "spec": {"targets": [{"host": "a"}]}},
        manager="one",
        force=False,
        dry_run=False,
    )
    merged, _ = store.apply(
        routes,
        "",
        "r",
        {**route, "spec": {"targets": [{"host": "b"}]}},
        manager="two",
        force=False,
        dry_run=False,
    )
    assert merged["spec"]["targets"] == [{"host": "a"}, {"host": "b"}]
    with pytest.raises(ApiError) as exc:
        store.patch(
            routes,
            "",
            "r",
            {"spec": {}},
            content_type=STRATEGIC_PATCH,
            manager="m",
            force=None,
            dry_run=False,
        )
    assert reason(exc) == (415, "UnsupportedMediaType")
    store.delete(crds, "", "routes.example.com", policy=None, preconditions=None, dry_run=False)
    assert store.registry.get("example.com/v1", "routes") is None
    assert ("example.com", "routes") not in store.objects


def test_a_namespace_with_held_objects_stays_terminating_and_refuses_new_content(store: Store) -> None:
    namespaces, configmaps = rt(store, "v1", "namespaces"), rt(store, "v1", "configmaps")
    store.create(namespaces, "", {"metadata": {"name": "ns"}}, manager="t", dry_run=False)
    held = {"metadata": {"name": "held", "finalizers": ["x.io/hold"]}}
    store.create(configmaps, "ns", held, manager="t", dry_run=False)
    store.create(configmaps, "ns", {"metadata": {"name": "free"}}, manager="t", dry_run=False)
    answer = store.delete(namespaces, "", "ns", policy=None, preconditions=None, dry_run=False)
    assert answer["status"]["phase"] == "Terminating"
    assert [key for key in store.bucket(configmaps) if key[0] == "ns"] == [("ns", "held")]
    with pytest.raises(ApiError) as exc:
        store.create(configmaps, "ns", {"metadata": {"name": "new"}}, manager="t", dry_run=False)
    assert reason(exc) == (403, "Forbidden")
    store.patch(
        configmaps,
        "ns",
        "held",
        {"metadata": {"finalizers": None}},
        content_type=MERGE_PATCH,
        manager="t",
        force=None,
        dry_run=False,
    )
    assert ("", "ns") not in store.bucket(namespaces)


def test_lists_paginate_and_deletecollection_uses_selectors(store: Store) -> None:
    configmaps = rt(store, "v1", "configmaps")
    for index in range(5):
        body = {"metadata": {"name": f"cm-{index}", "labels": {"even": str(index % 2 == 0).lower()}}}
        store.create(configmaps, "default", body, manager="t", dry_run=False)
    page = store.list_objects(configmaps, "default", limit=2)
    assert [i["metadata"]["name"] for i in page["items"]] == ["cm-0", "cm-1"]
    assert page["metadata"]["remainingItemCount"] == 4  # and kube-root-ca.crt
    rest = store.list_objects(configmaps, "default", continue_token=page["metadata"]["continue"])
    assert [i["metadata"]["name"] for i in rest["items"]] == ["cm-2", "cm-3", "cm-4", "kube-root-ca.crt"]
    store.delete_collection(
        configmaps, "default", label_selector="even=true", field_selector=None, policy=None, dry_run=False
    )
    left = sorted(name for namespace, name in store.bucket(configmaps) if namespace == "default")
    assert left == ["cm-1", "cm-3", "kube-root-ca.crt"]


@pytest.mark.parametrize(
    ("plural", "api_version", "before", "after", "field"),
    [
        (
            "jobs",
            "batch/v1",
            {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "a:1"}]}}}},
            {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "a:2"}]}}}},
            "spec.template",
        ),
        (
            "rolebindings",
            "rbac.authorization.k8s.io/v1",
            {"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "a"}},
            {"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "b"}},
            "roleRef",
        ),
        (
            "statefulsets",
            "apps/v1",
            {"spec": {**deployment()["spec"], "serviceName": "a"}},
            {"spec": {**deployment()["spec"], "serviceName": "b"}},
            "spec",
        ),
    ],
)
def test_immutable_fields_refuse_changes(
    store: Store, plural: str, api_version: str, before: dict[str, Any], after: dict[str, Any], field: str
) -> None:
    resource = rt(store, api_version, plural)
    store.create(resource, "default", {"metadata": {"name": "x"}, **before}, manager="t", dry_run=False)
    with pytest.raises(ApiError) as exc:
        store.apply(
            resource,
            "default",
            "x",
            {"apiVersion": api_version, "kind": resource.kind, "metadata": {"name": "x"}, **after},
            manager="t",
            force=True,
            dry_run=False,
        )
    assert reason(exc) == (422, "Invalid")
    assert exc.value.details is not None and exc.value.details["causes"][0]["field"] == field


def test_bad_requests_are_refused(store: Store) -> None:
    configmaps = rt(store, "v1", "configmaps")
    with pytest.raises(ApiError) as exc:
        store.apply(
            configmaps,
            "default",
            "a",
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}},
            manager="m",
            force=False,
            dry_run=False,
        )
    assert exc.value.code == 400
    with pytest.raises(ApiError) as exc:
        store.create(configmaps, "default", {"metadata": {"name": "Bad_Name"}}, manager="m", dry_run=False)
    assert reason(exc) == (422, "Invalid")
    with pytest.raises(ApiError) as exc:
        store.create(
            configmaps,
            "default",
            {"metadata": {"name": "a", "labels": {"k": "bad value"}}},
            manager="m",
            dry_run=False,
        )
    assert reason(exc) == (422, "Invalid")
    with pytest.raises(ApiError) as exc:
        store.patch(
            configmaps,
            "default",
            "missing",
            {},
            content_type=APPLY_PATCH,
            manager=None,
            force=None,
            dry_run=False,
        )
    assert exc.value.code == 422


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ("a=1,b", {"a": "1", "b": ""}, True),
        ("a in (1, 2),c notin (x)", {"a": "2"}, True),
        ("a notin (1)", {}, True),
        ("!a", {"a": "1"}, False),
        ("a>1", {"a": "5"}, True),
        ("a<1", {"a": "x"}, False),
        ("example.com/tier!=web", {"example.com/tier": "db"}, True),
        ("", {"a": "1"}, True),
    ],
)
def test_label_selectors(selector: str, labels: dict[str, str], matches: bool) -> None:
    assert parse_label_selector(selector)(labels) is matches


def test_unparseable_label_selectors_are_bad_requests() -> None:
    for selector in ("a in (1", "a=b=c", "=x"):
        with pytest.raises(ApiError) as exc:
            parse_label_selector(selector)
        assert exc.value.code == 400, selector
