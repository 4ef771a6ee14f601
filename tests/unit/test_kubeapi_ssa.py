"""Server-side apply bookkeeping of the Kubernetes API emulator: field sets and ownership (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.kubeapi import managed
from tests.kubeapi.errors import ApiError
from tests.kubeapi.fieldsets import describe, from_fields_v1, leaves, remove_path, to_fields_v1
from tests.kubeapi.schema import BuiltinNode, CRDNode

DEPLOYMENT = BuiltinNode("Deployment", ())
NOW = "2025-01-01T00:00:00Z"


def pod_spec(*containers: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"template": {"spec": {"containers": list(containers)}}}}


def test_keyed_lists_become_k_entries_with_the_item_itself_owned() -> None:
    obj = pod_spec({"name": "app", "image": "a:1", "ports": [{"containerPort": 80}], "args": ["-v"]})
    fields = to_fields_v1(set(leaves(obj, DEPLOYMENT, with_status=False)))
    container = fields["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"app"}']
    assert container == {
        ".": {},
        "f:name": {},
        "f:image": {},
        "f:args": {},  # atomic list: one leaf
        "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}},
    }


def test_system_metadata_and_status_are_never_owned() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "a", "namespace": "n", "uid": "u", "resourceVersion": "1", "labels": {"x": "y"}},
        "status": {"phase": "x"},
        "data": {},
    }
    assert set(leaves(obj, BuiltinNode("ConfigMap", ()), with_status=False)) == {
        ("f:metadata", "f:labels", "f:x"),
        ("f:data",),
    }


def test_fields_v1_round_trips_and_paths_read_like_kube_apiserver_messages() -> None:
    obj = {
        "metadata": {"finalizers": ["a/b"]},
        **pod_spec({"name": "app", "env": [{"name": "X", "value": "1"}]}),
    }
    paths = set(leaves(obj, DEPLOYMENT, with_status=False))
    assert from_fields_v1(to_fields_v1(paths)) == paths
    assert sorted(describe(p) for p in paths) == [
        '.metadata.finalizers[="a/b"]',
        '.spec.template.spec.containers[name="app"]',
        '.spec.template.spec.containers[name="app"].env[name="X"]',
        '.spec.template.spec.containers[name="app"].env[name="X"].name',
        '.spec.template.spec.containers[name="app"].env[name="X"].value',
        '.spec.template.spec.containers[name="app"].name',
    ]


def test_crd_schema_extensions_decide_how_custom_lists_merge() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "targets": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["host"],
                        "items": {"type": "object"},
                    },
                    "tags": {"type": "array", "x-kubernetes-list-type": "set"},
                    "owners": {"type": "array"},
                },
            }
        },
    }
    obj = {"spec": {"targets": [{"host": "a", "port": 1}], "tags": ["x"], "owners": ["me"]}}
    assert sorted(describe(p) for p in leaves(obj, CRDNode(schema), with_status=False)) == [
        ".spec.owners",
        '.spec.tags[="x"]',
        '.spec.targets[host="a"]',
        '.spec.targets[host="a"].host',
        '.spec.targets[host="a"].port',
    ]


def test_remove_path_drops_emptied_maps_but_never_list_items_or_their_keys() -> None:
    obj = {"metadata": {"name": "a", "labels": {"x": "1"}}, **pod_spec({"name": "app", "image": "i"})}
    remove_path(obj, ("f:metadata", "f:labels", "f:x"))
    assert obj["metadata"] == {"name": "a"}
    remove_path(obj, ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"app"}', "f:image"))
    assert obj["spec"]["template"]["spec"]["containers"] == [{"name": "app"}]


def apply(
    live: dict[str, Any],
    applied: dict[str, Any],
    entries: list[managed.Entry],
    manager: str,
    *,
    force: bool = False,
) -> tuple[dict[str, Any], list[managed.Entry]]:
    merged, entries, conflicts = managed.apply(
        live,
        applied,
        entries,
        manager=manager,
        api_version="apps/v1",
        force=force,
        root=DEPLOYMENT,
        with_status=False,
        now=NOW,
    )
    if conflicts:
        raise managed.conflict_error(conflicts)
    return merged, entries


def owned(entries: list[managed.Entry], manager: str) -> set[str]:
    return {describe(p) for e in entries if e.manager == manager for p in e.fields}


def test_apply_removes_what_it_stopped_applying_unless_someone_else_owns_it() -> None:
    first = {"spec": {"replicas": 2, "paused": False, "minReadySeconds": 5}}
    live, entries = apply({}, first, [], "gitops")
    # another manager takes minReadySeconds with an update
    updated = {"spec": {**live["spec"], "minReadySeconds": 9}}
    entries = managed.track_update(
        live,
        updated,
        entries,
        manager="other",
        api_version="apps/v1",
        subresource="",
        root=DEPLOYMENT,
        with_status=False,
        now=NOW,
    )
    live, entries = apply(updated, {"spec": {"replicas": 2}}, entries, "gitops")
    assert live == {"spec": {"replicas": 2, "minReadySeconds": 9}}
    assert owned(entries, "gitops") == {".spec.replicas"}
    assert owned(entries, "other") == {".spec.minReadySeconds"}


def test_apply_drops_a_container_it_no_longer_lists_but_not_one_another_applier_shares() -> None:
    a, b = {"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}
    live, entries = apply({}, pod_spec(a, b), [], "gitops")
    live, entries = apply(live, pod_spec(a), entries, "gitops")
    assert live == pod_spec(a)
    live, entries = apply(live, pod_spec(a), entries, "injector")  # same values: shared, no conflict
    live, entries = apply(live, pod_spec(b), entries, "gitops")
    assert live == pod_spec(a, b)
    assert owned(entries, "injector") == {
        '.spec.template.spec.containers[name="a"]',
        '.spec.template.spec.containers[name="a"].name',
        '.spec.template.spec.containers[name="a"].image',
    }


def test_conflicts_name_every_field_and_manager_and_force_moves_ownership() -> None:
    live, entries = apply({}, {"spec": {"replicas": 2, "paused": False}}, [], "alice")
    with pytest.raises(ApiError) as exc:
        apply(live, {"spec": {"replicas": 3, "paused": True}}, entries, "bob")
    assert exc.value.code == 409
    assert exc.value.message == (
        'Apply failed with 2 conflicts: conflicts with "alice":\n- .spec.paused\n- .spec.replicas'
    )
    live, entries = apply(live, {"spec": {"replicas": 3}}, entries, "bob", force=True)
    assert live["spec"] == {"replicas": 3, "paused": False}
    assert (owned(entries, "alice"), owned(entries, "bob")) == ({".spec.paused"}, {".spec.replicas"})


def test_updates_take_over_changed_fields_and_keep_timestamps_of_unchanged_entries() -> None:
    live, entries = apply({}, {"spec": {"replicas": 2}}, [], "gitops")
    before = managed.encode(entries)
    after = managed.track_update(
        live,
        live,
        managed.decode(before),
        manager="noop",
        api_version="apps/v1",
        subresource="",
        root=DEPLOYMENT,
        with_status=False,
        now="2030-01-01T00:00:00Z",
    )
    assert managed.encode(after) == before  # nothing changed: no new entry, same time
