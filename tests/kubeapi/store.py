"""The in-memory object store: create, read, list, replace, patch and server-side apply.

Every operation holds one re-entrant lock, so concurrent requests see a single global order and one
monotonically increasing ``resourceVersion``. Stored objects are never mutated in place (every write
stores a fresh dict), so callers may serialise what an operation returns after the lock is released.
PATCH and server-side apply live in :mod:`tests.kubeapi.patching`, deletion and garbage collection in
:mod:`tests.kubeapi.deletion`.
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import threading
import uuid
from collections import deque
from typing import Any

from tests.kubeapi import deletion, managed, patching
from tests.kubeapi.defaults import apply_defaults, crd_status, simulated_status
from tests.kubeapi.errors import (
    ApiError,
    already_exists,
    bad_request,
    invalid,
    not_found,
    stale,
)
from tests.kubeapi.objects import check_body, clone, content, has_generation, meta, now
from tests.kubeapi.resources import Registry, ResourceType, crd_types
from tests.kubeapi.selectors import parse_field_selector, parse_label_selector
from tests.kubeapi.validation import validate
from tests.kubeapi.watch import Event

Key = tuple[str, str]  # (namespace or "", name)

#: Namespaces every cluster starts with.
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
#: Field manager of what simulated controllers write.
CONTROLLERS = "kube-controller-manager"
#: Stand-in for the cluster CA certificate every namespace's ``kube-root-ca.crt`` carries.
EMULATOR_CA = "-----BEGIN CERTIFICATE-----\nkubeapi-emulator (plain HTTP: no CA)\n-----END CERTIFICATE-----\n"
#: How many recent changes watches can replay.
EVENT_HISTORY = 10_000
#: The kinds whose status an API server maintains itself (shown even with simulated controllers off).
SERVER_STATUS_KINDS = frozenset({"Namespace", "CustomResourceDefinition"})


class Store:
    def __init__(self, *, simulate_controllers: bool = True) -> None:
        self.lock = threading.RLock()
        #: Notified on every change (watches wait on it).
        self.changed = threading.Condition(self.lock)
        self.simulate_controllers = simulate_controllers
        self.resource_version = 0
        self.reset()

    def reset(self) -> None:
        """Forget every object and custom resource type; recreate the initial namespaces.

        ``resourceVersion`` keeps increasing across resets, so clients never see a version go back.
        """
        with self.lock:
            self.registry = Registry()
            self.objects: dict[tuple[str, str], dict[Key, dict[str, Any]]] = {}
            #: Recent changes, oldest first, for watches.
            self.events: deque[Event] = deque(maxlen=EVENT_HISTORY)
            self._ips = itertools.count(10)
            #: Every deletion carried out, oldest first: apiVersion, kind, namespace, name, policy.
            self.deletions: list[dict[str, str]] = []
            namespaces = self.registry.get("v1", "namespaces")
            assert namespaces is not None
            for name in INITIAL_NAMESPACES:
                self.create(
                    namespaces, "", {"metadata": {"name": name}}, manager="kube-apiserver", dry_run=False
                )

    # -- helpers ------------------------------------------------------------------------------------

    def bucket(self, rt: ResourceType) -> dict[Key, dict[str, Any]]:
        return self.objects.setdefault((rt.group, rt.plural), {})

    def next_version(self) -> str:
        self.resource_version += 1
        return str(self.resource_version)

    def record(self, group: str, plural: str, event_type: str, obj: dict[str, Any]) -> None:
        """Remember a change for watches (``obj`` carries the change's resourceVersion)."""
        version = int(meta(obj)["resourceVersion"])
        self.events.append(Event(version, event_type, group, plural, obj))
        self.changed.notify_all()

    def _allocate_ip(self) -> str:
        n = next(self._ips)
        return f"10.96.{n // 250}.{n % 250 + 1}"

    @staticmethod
    def out(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """The object as this resource's version presents it (a shallow copy: stored dicts are immutable)."""
        return {
            "apiVersion": rt.api_version,
            "kind": rt.kind,
            **{k: v for k, v in obj.items() if k not in ("apiVersion", "kind")},
        }

    def key_of(self, rt: ResourceType, namespace: str, name: str) -> Key:
        return (namespace if rt.namespaced else "", name)

    def existing(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        obj = self.bucket(rt).get(self.key_of(rt, namespace, name))
        if obj is None:
            raise not_found(rt.plural, rt.group, name)
        return obj

    def require_namespace(self, rt: ResourceType, namespace: str, name: str) -> None:
        if not rt.namespaced:
            return
        ns = self.objects.get(("", "namespaces"), {}).get(("", namespace))
        if ns is None:
            raise not_found("namespaces", "", namespace)
        if meta(ns).get("deletionTimestamp"):
            raise ApiError(
                403,
                "Forbidden",
                f'{rt.plural} "{name}" is forbidden: unable to create new content in namespace {namespace} '
                "because it is being terminated",
                {"name": name, "group": rt.group, "kind": rt.plural},
            )

    # -- reads --------------------------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        with self.lock:
            return self.out(rt, self.existing(rt, namespace, name))

    def select(
        self, rt: ResourceType, namespace: str | None, label_selector: str | None, field_selector: str | None
    ) -> list[tuple[Key, dict[str, Any]]]:
        labels_match = parse_label_selector(label_selector)
        fields_match = parse_field_selector(field_selector)
        return [
            (key, obj)
            for key, obj in sorted(self.bucket(rt).items())
            if (not namespace or not rt.namespaced or key[0] == namespace)
            and labels_match(meta(obj).get("labels") or {})
            and fields_match(obj)
        ]

    def list_objects(
        self,
        rt: ResourceType,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int = 0,
        continue_token: str | None = None,
    ) -> dict[str, Any]:
        with self.lock:
            selected = self.select(rt, namespace, label_selector, field_selector)
            version = str(self.resource_version)
        if continue_token:
            try:
                after = tuple(json.loads(base64.urlsafe_b64decode(continue_token)))
            except ValueError:
                raise ApiError(
                    410, "Expired", "the provided continue parameter is too old or invalid"
                ) from None
            selected = [(key, obj) for key, obj in selected if key > after]
        list_meta: dict[str, Any] = {"resourceVersion": version}
        if limit and len(selected) > limit:
            last = selected[limit - 1][0]
            list_meta["continue"] = base64.urlsafe_b64encode(json.dumps(list(last)).encode()).decode()
            list_meta["remainingItemCount"] = len(selected) - limit
            selected = selected[:limit]
        return {
            "kind": rt.list_kind,
            "apiVersion": rt.api_version,
            "metadata": list_meta,
            "items": [self.out(rt, obj) for _, obj in selected],
        }

    # -- writes (PATCH in patching.py, DELETE in deletion.py) ---------------------------------------

    def patch(self, *args: Any, **kwargs: Any) -> tuple[dict[str, Any], bool]:
        return patching.patch(self, *args, **kwargs)

    def apply(self, *args: Any, **kwargs: Any) -> tuple[dict[str, Any], bool]:
        return patching.apply(self, *args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return deletion.delete(self, *args, **kwargs)

    def delete_collection(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return deletion.delete_collection(self, *args, **kwargs)

    # -- create and replace ------------------------------------------------------------------------

    def create(
        self, rt: ResourceType, namespace: str, body: Any, *, manager: str, dry_run: bool
    ) -> dict[str, Any]:
        check_body(rt, body, namespace=namespace, name=None)
        new = clone(body)
        metadata = meta(new)
        if not metadata.get("name") and metadata.get("generateName"):
            metadata["name"] = metadata["generateName"] + secrets.token_hex(3)[:5]
        name = metadata.get("name") or ""
        if metadata.get("resourceVersion"):
            raise bad_request("resourceVersion should not be set on objects to be created")
        with self.lock:
            self.require_namespace(rt, namespace, name)
            if self.key_of(rt, namespace, name) in self.bucket(rt):
                raise already_exists(rt.plural, rt.group, name)
            self.prepare(rt, new, None, namespace=namespace)
            entries = managed.track_update(
                None,
                new,
                [],
                manager=manager,
                api_version=rt.api_version,
                subresource="",
                root=rt.root_schema(),
                with_status=not rt.status,
                now=now(),
            )
            return self.save(rt, None, new, entries, dry_run=dry_run)

    def replace(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        *,
        manager: str,
        dry_run: bool,
        subresource: str = "",
    ) -> dict[str, Any]:
        check_body(rt, body, namespace=namespace, name=name)
        with self.lock:
            old = self.existing(rt, namespace, name)
            wanted = (body.get("metadata") or {}).get("resourceVersion")
            if wanted and wanted != meta(old)["resourceVersion"]:
                raise stale(rt.plural, rt.group, name)
            return self.write_update(
                rt, namespace, old, clone(body), manager=manager, dry_run=dry_run, subresource=subresource
            )

    def write_update(
        self,
        rt: ResourceType,
        namespace: str,
        old: dict[str, Any],
        new: dict[str, Any],
        *,
        manager: str,
        dry_run: bool,
        subresource: str,
    ) -> dict[str, Any]:
        """A non-apply write of ``new`` over ``old`` (the whole object, or its status)."""
        if subresource == "status":
            status = new.get("status")
            new = clone(old)
            new["status"] = status
            if status is None:
                del new["status"]
        old_fields = meta(old).get("managedFields")
        sent = meta(new).get("managedFields")
        base = old_fields if sent is None or sent == old_fields else [e for e in sent if e]
        self.prepare(rt, new, old, namespace=namespace, subresource=subresource)
        entries = managed.track_update(
            old,
            new,
            managed.decode(base),
            manager=manager,
            api_version=rt.api_version,
            subresource=subresource,
            root=rt.root_schema(),
            with_status=subresource == "status" or not rt.status,
            now=now(),
        )
        return self.save(rt, old, new, entries, dry_run=dry_run)

    def prepare(
        self,
        rt: ResourceType,
        new: dict[str, Any],
        old: dict[str, Any] | None,
        *,
        namespace: str,
        subresource: str = "",
    ) -> None:
        """System metadata, status rules, defaults and validation for the object about to be written."""
        new["apiVersion"], new["kind"] = rt.api_version, rt.kind
        metadata = meta(new)
        if rt.namespaced:
            metadata["namespace"] = namespace
        else:
            metadata.pop("namespace", None)
        if old is None:
            metadata.update(uid=str(uuid.uuid4()), creationTimestamp=now())
            if has_generation(rt):
                metadata["generation"] = 1
        else:
            old_meta = meta(old)
            metadata["name"] = old_meta["name"]
            for field in (
                "uid",
                "creationTimestamp",
                "generation",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
            ):
                if field in old_meta:
                    metadata[field] = old_meta[field]
                else:
                    metadata.pop(field, None)
        metadata.pop("resourceVersion", None)
        metadata.pop("managedFields", None)
        if rt.status and subresource != "status":
            if old is not None and "status" in old:
                new["status"] = clone(old["status"])
            else:
                new.pop("status", None)
        apply_defaults(rt, new, old, allocate_ip=self._allocate_ip)
        causes = validate(rt, new, old)
        if causes:
            raise invalid(rt.kind, rt.group, metadata.get("name", ""), causes)

    def save(
        self,
        rt: ResourceType,
        old: dict[str, Any] | None,
        new: dict[str, Any],
        entries: list[managed.Entry],
        *,
        dry_run: bool,
    ) -> dict[str, Any]:
        metadata = meta(new)
        fields = managed.encode(entries)
        if fields:
            metadata["managedFields"] = fields
        if old is not None:
            metadata["resourceVersion"] = meta(old)["resourceVersion"]
            if "generation" in metadata and content(old) != content(new):
                metadata["generation"] += 1
        self._simulate(rt, new, old)
        if old is not None and new == old:
            return self.out(rt, old)  # a no-op write keeps the resourceVersion
        if dry_run:
            return self.out(rt, new)
        metadata["resourceVersion"] = self.next_version()
        key = self.key_of(rt, metadata.get("namespace", ""), metadata["name"])
        self.bucket(rt)[key] = new
        self.record(rt.group, rt.plural, "ADDED" if old is None else "MODIFIED", new)
        if rt.kind == "CustomResourceDefinition" and rt.group == "apiextensions.k8s.io":
            self.registry.remove_crd(metadata["name"])
            for served in crd_types(new):
                self.registry.add(served)
        if metadata.get("deletionTimestamp") and not metadata.get("finalizers"):
            deletion.finish_deletion(self, rt, key)
        if old is None and rt.kind == "Namespace" and not rt.crd and self.simulate_controllers:
            self._populate_namespace(metadata["name"])
        return self.out(rt, new)

    def _populate_namespace(self, namespace: str) -> None:
        """What controllers put in every new namespace: a ``default`` ServiceAccount, the root CA."""
        accounts, configmaps = (
            self.registry.get("v1", "serviceaccounts"),
            self.registry.get("v1", "configmaps"),
        )
        assert accounts is not None and configmaps is not None
        self.create(
            accounts, namespace, {"metadata": {"name": "default"}}, manager=CONTROLLERS, dry_run=False
        )
        root_ca = {"metadata": {"name": "kube-root-ca.crt"}, "data": {"ca.crt": EMULATOR_CA}}
        self.create(configmaps, namespace, root_ca, manager=CONTROLLERS, dry_run=False)

    def _simulate(self, rt: ResourceType, new: dict[str, Any], old: dict[str, Any] | None) -> None:
        """Set the status controllers would, when the spec changed (so no-op writes stay no-ops)."""
        if rt.kind == "CustomResourceDefinition" and not rt.crd:
            new["status"] = crd_status(new, now())
            if old is not None and content(old) == content(new):
                new["status"] = old.get("status", new["status"])
            return
        if rt.crd or not (self.simulate_controllers or rt.kind in SERVER_STATUS_KINDS):
            return
        if meta(new).get("deletionTimestamp"):
            return
        if old is None or content(old) != content(new) or "status" not in new:
            status = simulated_status(rt, new, now())
            if status is not None:
                new["status"] = status

    def set_status(
        self, rt: ResourceType, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        """Replace an object's status as a controller would (no managed fields recorded)."""
        with self.lock:
            old = self.existing(rt, namespace, name)
            new = clone(old)
            new["status"] = clone(status)
            meta(new)["resourceVersion"] = self.next_version()
            self.bucket(rt)[self.key_of(rt, namespace, name)] = new
            self.record(rt.group, rt.plural, "MODIFIED", new)
            return self.out(rt, new)
