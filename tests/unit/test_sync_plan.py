"""Plans (order, namespaces, labels, policies), Flux inventory ids and the prune rules."""

from __future__ import annotations

from typing import Any

import pytest

from gitops_tasks.sync import inventory as inv
from gitops_tasks.sync.errors import PlanError
from gitops_tasks.sync.inventory import ObjId
from gitops_tasks.sync.manifests import Manifest
from gitops_tasks.sync.plan import Owner, deletion_order, make_plan, offline_scope, prune_verdict

OWNER = Owner("apps", "flux-system")
NAMESPACED = {"ConfigMap", "Deployment", "Service", "ServiceAccount", "Secret", "Role", "Widget"}
CLUSTER = {"Namespace", "CustomResourceDefinition", "ClusterRole", "StorageClass"}


def scope(api_version: str, kind: str) -> bool | None:
    if kind in NAMESPACED:
        return True
    return False if kind in CLUSTER else None


def obj(kind: str, name: str, namespace: str | None = None, api_version: str = "v1", **meta: Any) -> Manifest:
    metadata: dict[str, Any] = {"name": name, **meta}
    if namespace:
        metadata["namespace"] = namespace
    return Manifest({"apiVersion": api_version, "kind": kind, "metadata": metadata}, f"{kind}-{name}.yaml")


def crd(group: str, kind: str, scope: str) -> Manifest:
    m = obj("CustomResourceDefinition", f"{kind.lower()}s.{group}", api_version="apiextensions.k8s.io/v1")
    m.obj["spec"] = {"group": group, "names": {"kind": kind, "plural": f"{kind.lower()}s"}, "scope": scope}
    return m


def ids(plan: Any) -> list[list[str]]:
    return [[str(p.id) for p in stage] for stage in plan.stages]


def test_namespaces_and_crds_first_then_cluster_scoped_then_the_rest_in_kind_order() -> None:
    manifests = [
        obj("Deployment", "web", "apps", "apps/v1"),
        obj("Gadget", "g1", api_version="example.com/v1"),
        obj("ClusterRole", "reader", api_version="rbac.authorization.k8s.io/v1"),
        obj("Widget", "w1", "apps", "example.com/v1"),
        obj("ConfigMap", "cfg", "apps"),
        crd("example.com", "Gadget", "Cluster"),
        obj("ServiceAccount", "sa", "apps"),
        obj("Namespace", "apps"),
        obj("Service", "web", "apps"),
    ]
    plan = make_plan(manifests, owner=OWNER, scope=scope)
    assert ids(plan) == [
        ["Namespace/apps", "CustomResourceDefinition/gadgets.example.com"],
        ["ClusterRole/reader", "Gadget/g1"],
        [
            "ServiceAccount/apps/sa",
            "ConfigMap/apps/cfg",
            "Service/apps/web",
            "Deployment/apps/web",
            "Widget/apps/w1",
        ],
    ]


def test_kinds_unknown_to_the_cluster_and_the_build_wait_for_their_crd() -> None:
    with pytest.raises(PlanError, match=r"Gadget-g\.yaml: Gadget example\.com/v1 is not served") as err:
        make_plan([obj("Gadget", "g", api_version="example.com/v1")], owner=OWNER, scope=scope)
    assert err.value.result == "transient"


def test_namespaces_target_default_and_cluster_scoped() -> None:
    manifests = [obj("ConfigMap", "a", "own"), obj("ConfigMap", "b"), obj("ClusterRole", "c", "stray")]
    plan = make_plan(manifests, owner=OWNER, scope=scope, default_namespace="fallback")
    namespaces = {p.id.name: p.obj["metadata"].get("namespace") for p in plan.objects}
    assert namespaces == {"a": "own", "b": "fallback", "c": None}
    plan = make_plan(manifests, owner=OWNER, scope=scope, target_namespace="target")
    namespaces = {p.id.name: p.obj["metadata"].get("namespace") for p in plan.objects}
    assert namespaces == {"a": "target", "b": "target", "c": None}
    assert manifests[0].obj["metadata"]["namespace"] == "own"  # the input is untouched


def test_offline_scope_knows_builtin_cluster_kinds_and_the_builds_crds() -> None:
    manifests = [
        crd("example.com", "Gadget", "Cluster"),
        crd("example.com", "Widget", "Namespaced"),
        obj("Gadget", "g", api_version="example.com/v1"),
        obj("Widget", "w", api_version="example.com/v1"),
        obj("Thing", "t", api_version="other.io/v1"),  # no CRD anywhere: namespaced, as kustomize
        obj("ClusterRole", "r", "stray", api_version="rbac.authorization.k8s.io/v1"),
        obj("StorageClass", "fast", api_version="storage.k8s.io/v1"),
        obj("ConfigMap", "c"),
        obj("Role", "role", api_version="rbac.authorization.k8s.io/v1"),
    ]
    plan = make_plan(manifests, owner=OWNER, scope=offline_scope(manifests), target_namespace="t")
    namespaces = {p.id.name: p.obj["metadata"].get("namespace") for p in plan.objects}
    assert {name: namespaces[name] for name in ("g", "w", "t", "r", "fast", "c", "role")} == {
        "g": None,
        "w": "t",
        "t": "t",
        "r": None,
        "fast": None,
        "c": "t",
        "role": "t",
    }


def test_every_applied_object_carries_the_owner_labels() -> None:
    plan = make_plan([obj("ConfigMap", "a", "x", labels={"app": "a"})], owner=OWNER, scope=scope)
    assert plan.objects[0].obj["metadata"]["labels"] == {
        "app": "a",
        "gitops-tasks.io/name": "apps",
        "gitops-tasks.io/namespace": "flux-system",
    }


def test_namespace_allow_list_refuses_other_namespaces_with_a_clear_message() -> None:
    allowed = ("apps", "web")
    ok = [obj("Namespace", "apps"), obj("ConfigMap", "a", "apps"), obj("ClusterRole", "r")]
    assert len(make_plan(ok, owner=OWNER, scope=scope, allowed_namespaces=allowed).objects) == 3
    for bad in (obj("ConfigMap", "a", "kube-system"), obj("Namespace", "evil"), obj("Secret", "s")):
        with pytest.raises(
            PlanError, match=r"namespace not allowed \(allowed namespaces: apps, web\)"
        ) as err:
            make_plan([*ok, bad], owner=OWNER, scope=scope, allowed_namespaces=allowed)
        assert str(bad.obj["metadata"]["name"]) in err.value.message and bad.origin in err.value.message
        assert err.value.result == "stalled"


def test_ignored_in_git_is_neither_applied_nor_dropped_from_the_inventory() -> None:
    manifests = [
        obj("ConfigMap", "a", "x", annotations={"fluxcd.io/ignore": "true"}),
        obj("ConfigMap", "b", "x", labels={"kustomize.toolkit.fluxcd.io/reconcile": "disabled"}),
        obj("ConfigMap", "c", "x", annotations={"fluxcd.io/ignore": "false"}),
        obj("ConfigMap", "d", "x", annotations={"fluxcd.io/ignore": "sync_only"}),
    ]
    plan = make_plan(manifests, owner=OWNER, scope=scope)
    assert ids(plan) == [["ConfigMap/x/c", "ConfigMap/x/d"]]
    assert [str(i) for i in plan.ignored] == ["ConfigMap/x/a", "ConfigMap/x/b"]
    assert len(plan.inventory) == 4


@pytest.mark.parametrize(
    ("meta", "policy", "force"),
    [
        ({}, "Override", False),
        ({"annotations": {"kustomize.toolkit.fluxcd.io/ssa": "IfNotPresent"}}, "IfNotPresent", False),
        ({"labels": {"kustomize.toolkit.fluxcd.io/ssa": "ignore"}}, "Ignore", False),
        ({"annotations": {"kustomize.toolkit.fluxcd.io/ssa": "Merge"}}, "Merge", False),
        ({"annotations": {"kustomize.toolkit.fluxcd.io/force": "Enabled"}}, "Override", True),
    ],
)
def test_apply_policies_come_from_annotations_or_labels(meta: dict, policy: str, force: bool) -> None:
    (planned,) = make_plan([obj("ConfigMap", "a", "x", **meta)], owner=OWNER, scope=scope).objects
    assert (planned.policy, planned.force) == (policy, force)


def test_spec_force_recreates_every_object() -> None:
    (planned,) = make_plan([obj("ConfigMap", "a", "x")], owner=OWNER, scope=scope, force=True).objects
    assert planned.force


def test_the_same_object_twice_is_refused_naming_both_places() -> None:
    with pytest.raises(PlanError, match=r"ConfigMap/x/a is declared twice \(also at ConfigMap-a\.yaml\)"):
        make_plan(
            [obj("ConfigMap", "a", "x"), obj("ConfigMap", "a")],
            owner=OWNER,
            scope=scope,
            default_namespace="x",
        )


@pytest.mark.parametrize(
    ("oid", "text"),
    [
        (ObjId("default", "podinfo", "", "Service"), "default_podinfo__Service"),
        (ObjId("default", "podinfo", "apps", "Deployment"), "default_podinfo_apps_Deployment"),
        (ObjId("", "apps", "", "Namespace"), "_apps__Namespace"),
        (
            ObjId("", "system:viewer", "rbac.authorization.k8s.io", "ClusterRole"),
            "_system__viewer_rbac.authorization.k8s.io_ClusterRole",
        ),
        (
            ObjId("", "w.example.com", "apiextensions.k8s.io", "CustomResourceDefinition"),
            "_w.example.com_apiextensions.k8s.io_CustomResourceDefinition",
        ),
    ],
)
def test_inventory_ids_are_fluxs(oid: ObjId, text: str) -> None:
    assert oid.id == text
    assert ObjId.parse(text) == oid


def test_inventory_status_round_trip_and_stale_set() -> None:
    plan = make_plan(
        [obj("Namespace", "x"), obj("Deployment", "web", "x", "apps/v1")], owner=OWNER, scope=scope
    )
    status = {"inventory": inv.to_status(plan.inventory)}
    assert status["inventory"] == {
        "entries": [{"id": "_x__Namespace", "v": "v1"}, {"id": "x_web_apps_Deployment", "v": "v1"}]
    }
    previous = inv.from_status(
        {
            "inventory": {
                "entries": [
                    *status["inventory"]["entries"],
                    {"id": "x_old__ConfigMap", "v": "v1"},
                    {"id": "garbage"},
                ]
            }
        }
    )
    assert inv.stale(previous, plan.inventory) == {ObjId("x", "old", "", "ConfigMap"): "v1"}
    assert inv.stale({}, plan.inventory) == {}


def live(**meta: Any) -> dict[str, Any]:
    labels = meta.pop("labels", OWNER.labels())
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "labels": labels, **meta}}


@pytest.mark.parametrize(
    ("obj_", "verdict"),
    [
        (live(), None),
        (None, "already deleted"),
        (live(deletionTimestamp="2024-01-01T00:00:00Z"), "already being deleted"),
        (live(labels={}), "not labelled as applied by Kustomization flux-system/apps"),
        (
            live(labels={**OWNER.labels(), "gitops-tasks.io/name": "other"}),
            "not labelled as applied by Kustomization flux-system/apps",
        ),
        (
            live(labels={**OWNER.labels(), "gitops-tasks.io/namespace": "other"}),
            "not labelled as applied by Kustomization flux-system/apps",
        ),
        (live(annotations={"gitops-tasks.io/prune": "disabled"}), "gitops-tasks.io/prune: disabled"),
        (
            live(annotations={"kustomize.toolkit.fluxcd.io/prune": "Disabled"}),
            "kustomize.toolkit.fluxcd.io/prune: disabled",
        ),
        (
            live(labels={**OWNER.labels(), "kustomize.toolkit.fluxcd.io/prune": "disabled"}),
            "kustomize.toolkit.fluxcd.io/prune: disabled",
        ),
        (live(annotations={"fluxcd.io/ignore": "sync_only"}), "fluxcd.io/ignore: sync_only"),
        (live(annotations={"fluxcd.io/ignore": "true"}), "fluxcd.io/ignore: true"),
        (
            live(annotations={"kustomize.toolkit.fluxcd.io/reconcile": "disabled"}),
            "kustomize.toolkit.fluxcd.io/reconcile: disabled",
        ),
        (
            live(annotations={"fluxcd.io/ignore": "false", "kustomize.toolkit.fluxcd.io/prune": "enabled"}),
            None,
        ),
    ],
)
def test_prune_only_deletes_what_this_kustomization_labelled_and_did_not_protect(
    obj_: Any, verdict: str | None
) -> None:
    assert prune_verdict(obj_, OWNER) == verdict


def test_deletion_runs_in_reverse_apply_order() -> None:
    order = deletion_order(
        [
            ObjId("", "apps", "", "Namespace"),
            ObjId("apps", "web", "apps", "Deployment"),
            ObjId("", "r", "rbac.authorization.k8s.io", "ClusterRole"),
            ObjId("apps", "cfg", "", "ConfigMap"),
            ObjId("", "w.example.com", "apiextensions.k8s.io", "CustomResourceDefinition"),
        ]
    )
    assert [str(o) for o in order] == [
        "Deployment/apps/web",
        "ConfigMap/apps/cfg",
        "ClusterRole/r",
        "CustomResourceDefinition/w.example.com",
        "Namespace/apps",
    ]
