"""The engine's own objects in a Kustomization's build: routed to the catalog, owned, pruned.

A build's documents of the engine's groups (:func:`gitops_tasks.objects.ownership.is_engine_document`)
are validated exactly as ``gitops-tasks apply`` validates them and stored in the catalog, labelled
with the Kustomization, before any cluster object is applied; every other document goes to the
cluster. A document of a Flux group whose kind the engine does not know fails the build, so nothing
of that revision is applied. The catalog is reached through a :class:`Fleet` (the task layer
passes the stores).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from gitops_tasks.objects import LoadError
from gitops_tasks.objects.loader import load_manifests
from gitops_tasks.objects.model import Object, ObjectRef
from gitops_tasks.objects.ownership import group_of, inventory_version, is_engine_group
from gitops_tasks.store.catalog import Applied, Removed
from gitops_tasks.sync.errors import BuildError
from gitops_tasks.sync.health import Target
from gitops_tasks.sync.inventory import Inventory, ObjId
from gitops_tasks.sync.manifests import Manifest
from gitops_tasks.sync.plan import ignored

#: Errors listed in a build failure before "and N more".
MAX_LISTED_ERRORS = 10


class Fleet(Protocol):
    """Write access to the catalog for one Kustomization's sync, and the readiness of objects."""

    def store(self, owner: ObjectRef, objects: list[Object]) -> list[Applied]:
        """Store ``objects`` as ``owner``'s in one transaction; raises
        :class:`~gitops_tasks.store.catalog.OwnershipConflict` writing nothing."""
        ...

    def prune(self, owner: ObjectRef, refs: list[ObjectRef]) -> list[Removed]: ...

    def object(self, ref: ObjectRef) -> Object | None: ...

    def ready(self, ref: ObjectRef) -> Mapping[str, Any] | None:
        """The object as a health check sees it: ``metadata.generation`` and its ``status``
        (None when absent from the catalog)."""
        ...


def split(manifests: Iterable[Manifest]) -> tuple[list[Manifest], list[Manifest]]:
    """``(engine documents, cluster documents)`` in build order."""
    engine: list[Manifest] = []
    plain: list[Manifest] = []
    for manifest in manifests:
        group = group_of(str(manifest.obj.get("apiVersion") or ""))
        (engine if is_engine_group(group) else plain).append(manifest)
    return engine, plain


def catalog_objects(
    manifests: list[Manifest], *, target_namespace: str | None, default_namespace: str
) -> list[Object]:
    """Validate the engine documents as ``apply`` does; ``spec.targetNamespace`` (else each one's
    namespace, else the default) sets their namespace, as for namespaced cluster objects. One
    marked ``fluxcd.io/ignore: "true"`` or ``kustomize.toolkit.fluxcd.io/reconcile: disabled`` in
    Git is left out (neither stored nor pruned, as for cluster objects).

    Raises :class:`BuildError` (stalled) listing every problem, each naming its file and object.
    """
    docs = []
    for manifest in manifests:
        if ignored(manifest.obj):
            continue
        data = copy.deepcopy(manifest.obj)
        meta = data.get("metadata")
        if isinstance(meta, dict) and target_namespace:
            meta["namespace"] = target_namespace
        docs.append((data, manifest.origin))
    try:
        return load_manifests(docs, default_namespace=default_namespace)
    except LoadError as exc:
        shown = exc.errors[:MAX_LISTED_ERRORS]
        more = len(exc.errors) - len(shown)
        text = "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
        noun = "object" if len(exc.errors) == 1 else "objects"
        raise BuildError(f"invalid gitops-tasks {noun}, nothing applied: {text}") from None


def obj_id(obj: Object) -> ObjId:
    return ObjId(obj.namespace, obj.name, group_of(obj.api_version), obj.kind)


def inventory(objects: Iterable[Object]) -> Inventory:
    return {obj_id(o): inventory_version(o) for o in objects}


def is_catalog_entry(oid: ObjId) -> bool:
    return is_engine_group(oid.group)


def ref_of(oid: ObjId) -> ObjectRef:
    return ObjectRef(oid.kind, oid.namespace, oid.name)


def target(obj: Object) -> Target:
    return Target(obj.api_version, obj.kind, obj.name, obj.namespace)


def health_view(obj: Object, status: Mapping[str, Any]) -> dict[str, Any]:
    """A catalog object with its status, shaped like a live object for
    :func:`~gitops_tasks.sync.health.status_of`; one never reconciled yet reads as in progress."""
    conditions = list(status.get("conditions") or [])
    if not any(isinstance(c, Mapping) and c.get("type") == "Ready" for c in conditions):
        conditions = [{"type": "Reconciling", "status": "True", "message": "not reconciled yet"}]
    return {
        "apiVersion": obj.api_version,
        "kind": obj.kind,
        "metadata": {"name": obj.name, "namespace": obj.namespace, **obj.metadata},
        "status": {**status, "conditions": conditions},
    }
