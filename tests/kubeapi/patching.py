"""PATCH: JSON, merge and strategic merge patches, and server-side apply (which may create).

Mixed into :class:`tests.kubeapi.store.Store`; every method takes the store lock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.kubeapi import managed
from tests.kubeapi.errors import ApiError, bad_request, not_found, stale, unsupported_media_type
from tests.kubeapi.merge import PatchError, json_patch, merge_patch, strategic_merge, strip_nulls
from tests.kubeapi.objects import check_body, clone, meta, now
from tests.kubeapi.resources import ResourceType

if TYPE_CHECKING:
    from tests.kubeapi.store import Store

#: PATCH content types.
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


def patch(
    store: Store,
    rt: ResourceType,
    namespace: str,
    name: str,
    body: Any,
    *,
    content_type: str,
    manager: str | None,
    force: bool | None,
    dry_run: bool,
    subresource: str = "",
) -> tuple[dict[str, Any], bool]:
    """Apply a PATCH; returns the object and whether it was created (server-side apply only)."""
    if content_type == APPLY_PATCH:
        if subresource:
            raise ApiError(
                405,
                "MethodNotAllowed",
                "server-side apply of a subresource is not supported by the emulator",
            )
        return apply(store, rt, namespace, name, body, manager=manager, force=bool(force), dry_run=dry_run)
    if force is not None:
        raise ApiError(
            422,
            "Invalid",
            'PatchOptions.meta.k8s.io "" is invalid: '
            "force: Forbidden: may not be specified for non-apply patch",
        )
    with store.lock:
        old = store.existing(rt, namespace, name)
        try:
            if content_type == JSON_PATCH:
                new = json_patch(clone(old), body)
            elif content_type == MERGE_PATCH:
                new = merge_patch(clone(old), body)
            elif content_type == STRATEGIC_PATCH and not rt.crd:
                new = strategic_merge(clone(old), body, rt.root_schema())
            else:
                accepted = [JSON_PATCH, MERGE_PATCH, APPLY_PATCH] + ([] if rt.crd else [STRATEGIC_PATCH])
                raise unsupported_media_type(accepted)
        except PatchError as exc:
            code = 422 if "testing value" in str(exc) else 400
            raise ApiError(code, "Invalid" if code == 422 else "BadRequest", str(exc)) from None
        if not isinstance(new, dict):
            raise bad_request("the patched object is not a JSON object")
        wanted = meta(new).get("resourceVersion")
        if wanted and wanted != meta(old)["resourceVersion"]:
            raise stale(rt.plural, rt.group, name)
        return (
            store.write_update(
                rt,
                namespace,
                old,
                new,
                manager=manager or "unknown",
                dry_run=dry_run,
                subresource=subresource,
            ),
            False,
        )


def apply(
    store: Store,
    rt: ResourceType,
    namespace: str,
    name: str,
    body: Any,
    *,
    manager: str | None,
    force: bool,
    dry_run: bool,
) -> tuple[dict[str, Any], bool]:
    if not manager:
        raise ApiError(
            422,
            "Invalid",
            'PatchOptions.meta.k8s.io "" is invalid: '
            "fieldManager: Required value: is required for apply patch",
        )
    check_body(rt, body, namespace=namespace, name=name)
    if not body.get("apiVersion") or not body.get("kind"):
        raise bad_request("apiVersion and kind are required in an apply configuration")
    applied = strip_nulls(body)
    metadata = meta(applied)
    if metadata.get("managedFields"):
        raise bad_request("metadata.managedFields must be nil")
    wanted = metadata.pop("resourceVersion", None)
    metadata["name"] = name
    if rt.namespaced:
        metadata["namespace"] = namespace
    if rt.status:
        applied.pop("status", None)
    with store.lock:
        old = store.bucket(rt).get(store.key_of(rt, namespace, name))
        if wanted and (old is None or wanted != meta(old)["resourceVersion"]):
            raise (
                stale(rt.plural, rt.group, name) if old is not None else not_found(rt.plural, rt.group, name)
            )
        if old is None:
            store.require_namespace(rt, namespace, name)
            live: dict[str, Any] = {
                "apiVersion": rt.api_version,
                "kind": rt.kind,
                "metadata": {"name": name},
            }
            entries: list[managed.Entry] = []
        else:
            live, entries = clone(old), managed.decode(meta(old).get("managedFields"))
        merged, entries, conflicts = managed.apply(
            live,
            applied,
            entries,
            manager=manager,
            api_version=rt.api_version,
            force=force,
            root=rt.root_schema(),
            with_status=not rt.status,
            now=now(),
        )
        if conflicts:
            raise managed.conflict_error(conflicts)
        store.prepare(rt, merged, old, namespace=namespace)
        return store.save(rt, old, merged, entries, dry_run=dry_run), old is None
