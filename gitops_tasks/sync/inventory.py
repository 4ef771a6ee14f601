"""Inventory: the record of what a Kustomization applied, in Flux's format (pure).

An entry is ``{"id": "<namespace>_<name>_<group>_<kind>", "v": "<version>"}`` exactly as Flux's
``status.inventory.entries``: cluster-scoped objects have an empty namespace, the core group is
empty (``default_web__Service``), and a ``:`` in a name (RBAC objects) is written ``__``.
The stale set, what pruning considers, is the previous inventory minus the new one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, order=True)
class ObjId:
    """An object's identity in a cluster, independent of the API version it is read at."""

    namespace: str
    name: str
    group: str
    kind: str

    @property
    def id(self) -> str:
        """Flux's inventory id."""
        return f"{self.namespace}_{self.name.replace(':', '__')}_{self.group}_{self.kind}"

    @classmethod
    def parse(cls, text: str) -> ObjId:
        """Parse an inventory id. Raises ``ValueError`` on a malformed id."""
        namespace, sep, rest = text.partition("_")
        parts = rest.rsplit("_", 2)
        if not sep or len(parts) != 3 or not parts[0] or not parts[2]:
            raise ValueError(f"inventory id {text!r}: expected <namespace>_<name>_<group>_<kind>")
        name, group, kind = parts
        return cls(namespace, name.replace("__", ":"), group, kind)

    def api_version(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version

    def __str__(self) -> str:
        """``Kind/namespace/name`` (``Kind/name`` when cluster-scoped), as Flux's events write it."""
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"


def split_api_version(api_version: str) -> tuple[str, str]:
    """``apps/v1`` → ``("apps", "v1")``; ``v1`` → ``("", "v1")``."""
    group, _, version = api_version.rpartition("/")
    return group, version


def obj_id(obj: Mapping[str, Any]) -> ObjId:
    """The identity of a manifest or live object (its namespace as written; may be empty)."""
    group, _ = split_api_version(str(obj.get("apiVersion", "")))
    meta = obj.get("metadata") or {}
    return ObjId(str(meta.get("namespace") or ""), str(meta.get("name", "")), group, str(obj.get("kind", "")))


#: An inventory: object identity → the API version it was applied at.
Inventory = dict[ObjId, str]


def from_status(status: Mapping[str, Any]) -> Inventory:
    """The inventory recorded in a Kustomization status (``{}`` when none; bad ids are dropped)."""
    entries = ((status.get("inventory") or {}).get("entries")) or []
    out: Inventory = {}
    for entry in entries:
        try:
            out[ObjId.parse(str(entry["id"]))] = str(entry.get("v", ""))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def to_status(inventory: Mapping[ObjId, str]) -> dict[str, Any]:
    """The ``inventory`` status fact, entries sorted by id (stable across runs)."""
    return {
        "entries": [{"id": oid.id, "v": v} for oid, v in sorted(inventory.items(), key=lambda kv: kv[0].id)]
    }


def stale(previous: Mapping[ObjId, str], current: Iterable[ObjId]) -> Inventory:
    """Entries of ``previous`` that ``current`` no longer holds: what pruning considers."""
    keep = set(current)
    return {oid: v for oid, v in previous.items() if oid not in keep}
