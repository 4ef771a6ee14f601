"""Deletion: finalizers, propagation to owned objects, namespace and CRD cleanup.

What a real cluster's garbage collector and namespace controller do asynchronously happens here
synchronously, inside the request: ``Background`` and ``Foreground`` delete the dependents (objects whose
``ownerReferences`` name the deleted object's uid) before the request returns, ``Orphan`` removes those
owner references instead. An object with finalizers only gets ``deletionTimestamp`` and goes away when
a later write empties ``metadata.finalizers``. Deleting a namespace deletes everything in it (the
namespace stays ``Terminating`` while finalizers hold some object); deleting a CRD removes its types
and all their objects, finalizers or not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.kubeapi.errors import ApiError, bad_request, precondition_failed
from tests.kubeapi.objects import clone, meta, now
from tests.kubeapi.resources import ResourceType

if TYPE_CHECKING:
    from tests.kubeapi.store import Store

POLICIES = ("Foreground", "Background", "Orphan")


def delete(
    store: Store,
    rt: ResourceType,
    namespace: str,
    name: str,
    *,
    policy: str | None,
    preconditions: dict[str, Any] | None,
    dry_run: bool,
) -> dict[str, Any]:
    """Delete one object; returns what the API answers (the object while it lingers, else a Status)."""
    if policy is not None and policy not in POLICIES:
        raise bad_request(
            f'propagationPolicy: Unsupported value: "{policy}": supported values: '
            '"Foreground", "Background", "Orphan"'
        )
    with store.lock:
        obj = store.existing(rt, namespace, name)
        metadata = meta(obj)
        for field in ("uid", "resourceVersion"):
            wanted = (preconditions or {}).get(field)
            if wanted and wanted != metadata.get(field):
                label = "UID" if field == "uid" else "ResourceVersion"
                raise precondition_failed(
                    rt.plural,
                    rt.group,
                    name,
                    f"Precondition failed: {label} in precondition: {wanted}, "
                    f"{label} in object meta: {metadata.get(field)}",
                )
        if dry_run:
            return store.out(rt, obj)
        key = store.key_of(rt, namespace, name)
        lingering = delete_object(store, rt, key, policy or "Background")
        if lingering is not None:
            return store.out(rt, lingering)
        if rt.kind == "Namespace" and not rt.crd:
            gone = clone(obj)
            gone["status"] = {"phase": "Terminating"}
            meta(gone)["deletionTimestamp"] = now()
            return store.out(rt, gone)
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {"name": name, "group": rt.group, "kind": rt.plural, "uid": metadata.get("uid")},
        }


def delete_collection(
    store: Store,
    rt: ResourceType,
    namespace: str | None,
    *,
    label_selector: str | None,
    field_selector: str | None,
    policy: str | None,
    dry_run: bool,
) -> dict[str, Any]:
    with store.lock:
        selected = store.select(rt, namespace, label_selector, field_selector)
        if not dry_run:
            for key, _ in selected:
                if key in store.bucket(rt):
                    delete_object(store, rt, key, policy or "Background")
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}


def delete_object(store: Store, rt: ResourceType, key: tuple[str, str], policy: str) -> dict[str, Any] | None:
    """Delete now, or mark for deletion; returns the marked object when it lingers."""
    obj = store.bucket(rt)[key]
    metadata = meta(obj)
    store.deletions.append(
        {
            "apiVersion": rt.api_version,
            "kind": rt.kind,
            "namespace": key[0],
            "name": key[1],
            "propagationPolicy": policy,
        }
    )
    if policy == "Foreground":
        _delete_dependents(store, metadata.get("uid"), "Foreground")
    if rt.kind == "Namespace" and not rt.crd:
        return _delete_namespace(store, rt, key)
    if metadata.get("finalizers"):
        return _mark(store, rt, key)
    finish_deletion(store, rt, key, policy)
    return None


def _mark(store: Store, rt: ResourceType, key: tuple[str, str], **status: Any) -> dict[str, Any]:
    obj: dict[str, Any] = store.bucket(rt)[key]
    if meta(obj).get("deletionTimestamp") and not status:
        return obj
    marked: dict[str, Any] = clone(obj)
    meta(marked).setdefault("deletionTimestamp", now())
    meta(marked).setdefault("deletionGracePeriodSeconds", 0)
    if status:
        marked["status"] = status
    meta(marked)["resourceVersion"] = store.next_version()
    store.bucket(rt)[key] = marked
    store.record(rt.group, rt.plural, "MODIFIED", marked)
    return marked


def finish_deletion(store: Store, rt: ResourceType, key: tuple[str, str], policy: str = "Background") -> None:
    """Remove the object and do what its removal implies (dependents, CRD types, namespace)."""
    obj = store.bucket(rt).pop(key, None)
    if obj is None:
        return
    _removed(store, rt.group, rt.plural, obj)
    uid = meta(obj).get("uid")
    if policy == "Orphan":
        _orphan(store, uid)
    else:
        _delete_dependents(store, uid, "Background")
    if rt.kind == "CustomResourceDefinition" and rt.group == "apiextensions.k8s.io":
        spec = obj.get("spec") or {}
        store.registry.remove_crd(meta(obj)["name"])
        group, plural = spec.get("group", ""), (spec.get("names") or {}).get("plural", "")
        for custom in store.objects.pop((group, plural), {}).values():
            _removed(store, group, plural, custom)
    if rt.kind == "Namespace" and not rt.crd:
        return
    if key[0]:
        _finish_namespace_if_empty(store, key[0])


def _delete_namespace(store: Store, rt: ResourceType, key: tuple[str, str]) -> dict[str, Any] | None:
    name = key[1]
    _mark(store, rt, key, phase="Terminating")
    for (group, plural), objects in list(store.objects.items()):
        for obj_key in [k for k in objects if k[0] == name]:
            if obj_key in objects and not meta(objects[obj_key]).get("deletionTimestamp"):
                delete_object(store, _type_of(store, group, plural), obj_key, "Background")
    return None if _finish_namespace_if_empty(store, name) else store.bucket(rt).get(key)


def _finish_namespace_if_empty(store: Store, namespace: str) -> bool:
    namespaces = store.objects.get(("", "namespaces"), {})
    ns = namespaces.get(("", namespace))
    if ns is None or not meta(ns).get("deletionTimestamp"):
        return False
    if any(key[0] == namespace for objects in store.objects.values() for key in objects):
        return False
    _removed(store, "", "namespaces", namespaces.pop(("", namespace)))
    return True


def _removed(store: Store, group: str, plural: str, obj: dict[str, Any]) -> None:
    """Account for an object leaving the store: a new resourceVersion and a DELETED event."""
    last = {**obj, "metadata": {**meta(obj), "resourceVersion": store.next_version()}}
    store.record(group, plural, "DELETED", last)


def _type_of(store: Store, group: str, plural: str) -> ResourceType:
    found = store.registry.versions_of(group, plural)
    if not found:
        raise ApiError(500, "InternalError", f"no served version for {plural}.{group}")
    return found[0]


def _dependents(store: Store, uid: str | None) -> list[tuple[str, str, tuple[str, str]]]:
    if not uid:
        return []
    return [
        (group, plural, key)
        for (group, plural), objects in store.objects.items()
        for key, obj in objects.items()
        if any(ref.get("uid") == uid for ref in meta(obj).get("ownerReferences") or [])
    ]


def _delete_dependents(store: Store, uid: str | None, policy: str) -> None:
    for group, plural, key in _dependents(store, uid):
        if key in store.objects.get((group, plural), {}):
            delete_object(store, _type_of(store, group, plural), key, policy)


def _orphan(store: Store, uid: str | None) -> None:
    for group, plural, key in _dependents(store, uid):
        objects = store.objects[(group, plural)]
        freed = clone(objects[key])
        refs = [ref for ref in meta(freed)["ownerReferences"] if ref.get("uid") != uid]
        if refs:
            meta(freed)["ownerReferences"] = refs
        else:
            del meta(freed)["ownerReferences"]
        meta(freed)["resourceVersion"] = store.next_version()
        objects[key] = freed
        store.record(group, plural, "MODIFIED", freed)
