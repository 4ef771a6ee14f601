"""Which documents of a build are the engine's own objects, and who owns a catalog object (pure).

A Kustomization's build holds two sorts of documents. Those of the engine's API groups (Flux's
``*.fluxcd.io`` groups and ``gitops-tasks.io``) are objects the engine reconciles itself: they go
into the catalog, never to the cluster, whatever CRDs the cluster serves. Every other document is a
cluster object. Both carry their Kustomization's name and namespace in the same two labels, and
both appear in its ``status.inventory`` with Flux's ids (``<namespace>_<name>_<group>_<kind>``).

A catalog object being deleted carries ``metadata.deletionTimestamp`` until its finalizer ran (a
Kustomization with ``prune: true`` garbage-collects what it owns first, as Flux's finalizer does).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from gitops_tasks.objects.model import Object, ObjectRef

#: Labels naming the Kustomization that applied an object (cluster and catalog alike).
OWNER_NAME_LABEL = "gitops-tasks.io/name"
OWNER_NAMESPACE_LABEL = "gitops-tasks.io/namespace"
#: The engine's own API group; Flux's groups all end with :data:`FLUX_GROUP_SUFFIX`.
OWN_GROUP = "gitops-tasks.io"
FLUX_GROUP_SUFFIX = ".fluxcd.io"
#: Set on a catalog object whose deletion waits for its finalizer.
DELETION_KEY = "deletionTimestamp"


def group_of(api_version: str) -> str:
    """``apps/v1`` → ``apps``; ``v1`` → ``""``."""
    return api_version.rpartition("/")[0]


def is_engine_group(group: str) -> bool:
    """True for the groups whose objects go into the catalog (Flux's and ours)."""
    return group == OWN_GROUP or group.endswith(FLUX_GROUP_SUFFIX) or group == FLUX_GROUP_SUFFIX[1:]


def is_engine_document(doc: Mapping[str, Any]) -> bool:
    """True when ``doc`` (a manifest) is of one of the engine's groups."""
    return is_engine_group(group_of(str(doc.get("apiVersion") or "")))


def owner_labels(owner: ObjectRef) -> dict[str, str]:
    return {OWNER_NAME_LABEL: owner.name, OWNER_NAMESPACE_LABEL: owner.namespace}


def owner_of(obj: Object) -> ObjectRef | None:
    """The Kustomization whose labels ``obj`` carries, or None for a hand-applied object."""
    labels = obj.metadata.get("labels") or {}
    name, namespace = labels.get(OWNER_NAME_LABEL), labels.get(OWNER_NAMESPACE_LABEL)
    if not name or not namespace:
        return None
    return ObjectRef("Kustomization", str(namespace), str(name))


def set_owner(obj: Object, owner: ObjectRef | None) -> None:
    """Label ``obj`` as owned by ``owner`` (None: remove the labels)."""
    labels = dict(obj.metadata.get("labels") or {})
    labels.pop(OWNER_NAME_LABEL, None)
    labels.pop(OWNER_NAMESPACE_LABEL, None)
    if owner is not None:
        labels.update(owner_labels(owner))
    if labels:
        obj.metadata["labels"] = labels
    else:
        obj.metadata.pop("labels", None)


def inventory_id(obj: Object) -> str:
    """Flux's inventory id of a catalog object, e.g.
    ``flux-system_apps_kustomize.toolkit.fluxcd.io_Kustomization``."""
    return f"{obj.namespace}_{obj.name}_{group_of(obj.api_version)}_{obj.kind}"


def inventory_version(obj: Object) -> str:
    return obj.api_version.rpartition("/")[2]


def deleting(obj: Object) -> bool:
    return bool(obj.metadata.get(DELETION_KEY))


def mark_deleting(obj: Object, now: float) -> None:
    if not deleting(obj):
        stamp = datetime.datetime.fromtimestamp(now, tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        obj.metadata[DELETION_KEY] = stamp


def has_finalizer(obj: Object) -> bool:
    """True when deleting ``obj`` must first garbage-collect what it owns: a Kustomization with
    ``spec.prune`` that is not suspended (Flux's kustomize-controller skips the collection of a
    suspended one)."""
    return obj.kind == "Kustomization" and bool(obj.spec.get("prune")) and not obj.suspended
