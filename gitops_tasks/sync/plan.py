"""From built objects to an apply plan, and the prune rules (pure: no cluster calls).

A plan puts Namespaces and CRDs first, then other cluster-scoped objects, then namespaced ones,
each stage in a kind order like Helm's install order (ServiceAccounts, Secrets and ConfigMaps
before the workloads that mount them). Namespaced objects get ``spec.targetNamespace`` (always)
or their own namespace or the default one; cluster-scoped objects lose any namespace. Whether a
kind is namespaced comes from the cluster's discovery (``scope``) or from a CRD in the same build.

Every applied object is labelled with its Kustomization: ``gitops-tasks.io/name`` and
``gitops-tasks.io/namespace`` (our own pair rather than Flux's, so that gitops-tasks never prunes
what Flux or anything else created). Per-object policies, read from annotations or labels:

- ``fluxcd.io/ignore: "true"`` or ``kustomize.toolkit.fluxcd.io/reconcile: disabled`` in Git:
  neither applied nor pruned (kept in the inventory so that removing it from Git later does not
  prune it unless it carries our labels); on the live object: left alone, never pruned.
- ``fluxcd.io/ignore: sync_only``: applied, never pruned (Flux v1).
- ``kustomize.toolkit.fluxcd.io/ssa``: ``Override`` (default), ``Merge`` (the same here: a
  server-side apply already keeps fields other managers own), ``IfNotPresent``, ``Ignore``.
- ``kustomize.toolkit.fluxcd.io/force: enabled``: recreate on an immutable-field change.
- ``gitops-tasks.io/prune: disabled`` / ``kustomize.toolkit.fluxcd.io/prune: disabled``: never pruned.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gitops_tasks.objects.ownership import OWNER_NAME_LABEL, OWNER_NAMESPACE_LABEL
from gitops_tasks.sync.errors import PlanError
from gitops_tasks.sync.inventory import Inventory, ObjId, obj_id, split_api_version
from gitops_tasks.sync.manifests import Manifest

IGNORE_KEY = "fluxcd.io/ignore"
RECONCILE_KEY = "kustomize.toolkit.fluxcd.io/reconcile"
SSA_KEY = "kustomize.toolkit.fluxcd.io/ssa"
FORCE_KEY = "kustomize.toolkit.fluxcd.io/force"
PRUNE_KEYS = ("gitops-tasks.io/prune", "kustomize.toolkit.fluxcd.io/prune")
#: Apply policies (``kustomize.toolkit.fluxcd.io/ssa`` values).
POLICIES = ("Override", "Merge", "IfNotPresent", "Ignore")
#: Kinds applied before anything else (and deleted last).
FIRST_KINDS = frozenset({"Namespace", "CustomResourceDefinition"})
_KIND_ORDER = (
    "Namespace",
    "CustomResourceDefinition",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "StorageClass",
    "PriorityClass",
    "RuntimeClass",
    "IngressClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "Ingress",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
)
_RANK = {kind: rank for rank, kind in enumerate(_KIND_ORDER)}

#: ``(apiVersion, kind) → namespaced?`` from discovery; ``None`` when the cluster does not serve it.
Scope = Callable[[str, str], bool | None]


@dataclass(frozen=True)
class Owner:
    """The Kustomization whose objects these are."""

    name: str
    namespace: str

    def labels(self) -> dict[str, str]:
        return {OWNER_NAME_LABEL: self.name, OWNER_NAMESPACE_LABEL: self.namespace}

    def owns(self, obj: Mapping[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(labels.get(k) == v for k, v in self.labels().items())

    def __str__(self) -> str:
        return f"Kustomization {self.namespace}/{self.name}"


@dataclass
class Planned:
    """One object to apply, as it will be sent."""

    obj: dict[str, Any]
    origin: str
    id: ObjId
    version: str
    namespaced: bool
    policy: str = "Override"
    force: bool = False

    @property
    def api_version(self) -> str:
        return str(self.obj["apiVersion"])


@dataclass
class Plan:
    stages: list[list[Planned]] = field(default_factory=list)
    #: What the Kustomization declares: applied objects and those ignored in Git.
    inventory: Inventory = field(default_factory=dict)
    #: Objects left alone because Git says so (``fluxcd.io/ignore``...).
    ignored: list[ObjId] = field(default_factory=list)

    @property
    def objects(self) -> list[Planned]:
        return [p for stage in self.stages for p in stage]


def policy_value(obj: Mapping[str, Any], key: str) -> str:
    """The value of ``key`` as an annotation, else as a label, lower-cased ("" when absent)."""
    meta = obj.get("metadata") or {}
    for where in ("annotations", "labels"):
        value = (meta.get(where) or {}).get(key)
        if value is not None:
            return str(value).strip().lower()
    return ""


def ignored(obj: Mapping[str, Any]) -> bool:
    """Hands off: ``fluxcd.io/ignore: "true"`` or ``kustomize.toolkit.fluxcd.io/reconcile: disabled``."""
    return policy_value(obj, IGNORE_KEY) == "true" or policy_value(obj, RECONCILE_KEY) == "disabled"


def _policy(obj: Mapping[str, Any]) -> str:
    wanted = policy_value(obj, SSA_KEY)
    return next((p for p in POLICIES if p.lower() == wanted), "Override")


def crd_scopes(manifests: Iterable[Manifest]) -> dict[tuple[str, str], bool]:
    """``(group, kind) → namespaced?`` for the CRDs among ``manifests``."""
    out: dict[tuple[str, str], bool] = {}
    for m in manifests:
        if m.obj.get("kind") == "CustomResourceDefinition":
            spec = m.obj.get("spec") or {}
            kind = (spec.get("names") or {}).get("kind")
            if spec.get("group") and kind:
                out[(str(spec["group"]), str(kind))] = spec.get("scope", "Namespaced") == "Namespaced"
    return out


#: Kubernetes' built-in cluster-scoped kinds, ``(group, kind)`` (core group ""), for a plan made
#: without a cluster to ask (``gitops-tasks build`` offline).
BUILTIN_CLUSTER_SCOPED = frozenset(
    {
        ("", "Namespace"),
        ("", "Node"),
        ("", "PersistentVolume"),
        ("", "ComponentStatus"),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicyBinding"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("apiregistration.k8s.io", "APIService"),
        ("certificates.k8s.io", "CertificateSigningRequest"),
        ("certificates.k8s.io", "ClusterTrustBundle"),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
        ("networking.k8s.io", "IngressClass"),
        ("networking.k8s.io", "IPAddress"),
        ("networking.k8s.io", "ServiceCIDR"),
        ("node.k8s.io", "RuntimeClass"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("resource.k8s.io", "DeviceClass"),
        ("resource.k8s.io", "ResourceSlice"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("storage.k8s.io", "CSIDriver"),
        ("storage.k8s.io", "CSINode"),
        ("storage.k8s.io", "StorageClass"),
        ("storage.k8s.io", "VolumeAttachment"),
        ("storage.k8s.io", "VolumeAttributesClass"),
    }
)


def offline_scope(manifests: Iterable[Manifest]) -> Scope:
    """A :data:`Scope` without a cluster: Kubernetes' built-in cluster-scoped kinds and the CRDs
    among ``manifests`` as declared; every other kind namespaced (as kustomize assumes)."""
    crds = crd_scopes(manifests)

    def scope(api_version: str, kind: str) -> bool:
        group, _ = split_api_version(api_version)
        if (group, kind) in BUILTIN_CLUSTER_SCOPED:
            return False
        return crds.get((group, kind), True)

    return scope


def stage_of(oid: ObjId) -> int:
    if oid.kind in FIRST_KINDS:
        return 0
    return 2 if oid.namespace else 1


def _order(oid: ObjId) -> tuple[int, int, str, str]:
    return (stage_of(oid), _RANK.get(oid.kind, len(_RANK)), oid.namespace, oid.name)


def deletion_order(ids: Iterable[ObjId]) -> list[ObjId]:
    """The reverse of the apply order: namespaced objects first, Namespaces and CRDs last."""
    return sorted(ids, key=lambda oid: tuple(-x if isinstance(x, int) else x for x in _order(oid)))


def make_plan(
    manifests: list[Manifest],
    *,
    owner: Owner,
    scope: Scope,
    target_namespace: str | None = None,
    default_namespace: str = "default",
    allowed_namespaces: Collection[str] = (),
    force: bool = False,
) -> Plan:
    """The plan for ``manifests`` (copied: the input is not modified).

    Raises :class:`PlanError`: ``stalled`` for namespaces outside ``allowed_namespaces`` (empty:
    all allowed) and duplicates; ``transient`` for a kind the cluster does not serve (yet).
    """
    crds = crd_scopes(manifests)
    plan = Plan()
    seen: dict[ObjId, str] = {}
    refused: list[str] = []
    planned: list[Planned] = []
    for manifest in manifests:
        obj = copy.deepcopy(manifest.obj)
        api_version, kind = str(obj["apiVersion"]), str(obj["kind"])
        group, version = split_api_version(api_version)
        namespaced = scope(api_version, kind)
        if namespaced is None:
            namespaced = crds.get((group, kind))
        if namespaced is None:
            raise PlanError(
                f"{manifest.origin}: {kind} {api_version} is not served by the cluster "
                "(no matching kind; is its CustomResourceDefinition applied?)",
                result="transient",
            )
        meta = obj.setdefault("metadata", {})
        if namespaced:
            meta["namespace"] = target_namespace or meta.get("namespace") or default_namespace
        else:
            meta.pop("namespace", None)
        oid = obj_id(obj)
        if oid in seen:
            raise PlanError(f"{manifest.origin}: {oid} is declared twice (also at {seen[oid]})")
        seen[oid] = manifest.origin
        plan.inventory[oid] = version
        if ignored(obj):
            plan.ignored.append(oid)
            continue
        checked = oid.namespace if namespaced else (oid.name if kind == "Namespace" else "")
        if allowed_namespaces and checked and checked not in allowed_namespaces:
            refused.append(f"{oid} ({manifest.origin})")
            continue
        meta["labels"] = {**(meta.get("labels") or {}), **owner.labels()}
        is_forced = force or policy_value(obj, FORCE_KEY) == "enabled"
        planned.append(Planned(obj, manifest.origin, oid, version, namespaced, _policy(obj), is_forced))
    if refused:
        allowed = ", ".join(sorted(allowed_namespaces))
        shown = "; ".join(refused[:5]) + (f"; and {len(refused) - 5} more" if len(refused) > 5 else "")
        raise PlanError(f"namespace not allowed (allowed namespaces: {allowed}): {shown}")
    planned.sort(key=lambda p: _order(p.id))
    for index in range(3):
        stage = [p for p in planned if stage_of(p.id) == index]
        if stage:
            plan.stages.append(stage)
    return plan


def prune_verdict(live: Mapping[str, Any] | None, owner: Owner) -> str | None:
    """``None`` when the stale object ``live`` may be deleted, else why it is kept."""
    if live is None:
        return "already deleted"
    meta = live.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return "already being deleted"
    if not owner.owns(live):
        return f"not labelled as applied by {owner}"
    return kept_by_policy(live)


def kept_by_policy(live: Mapping[str, Any]) -> str | None:
    """Why the annotations or labels of ``live`` keep it from being pruned, or None."""
    for key in PRUNE_KEYS:
        if policy_value(live, key) == "disabled":
            return f"{key}: disabled"
    if policy_value(live, IGNORE_KEY) in ("true", "sync_only"):
        return f"{IGNORE_KEY}: {policy_value(live, IGNORE_KEY)}"
    if policy_value(live, RECONCILE_KEY) == "disabled":
        return f"{RECONCILE_KEY}: disabled"
    return None
