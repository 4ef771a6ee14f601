"""How lists and maps merge: the little schema knowledge server-side apply and strategic merge need.

A real API server reads ``x-kubernetes-list-type``, ``x-kubernetes-list-map-keys`` and
``x-kubernetes-map-type`` (and, for built-ins, the patch merge keys) from its OpenAPI. Here built-in
types use a table of the well-known associative lists; custom resources read those extensions from their
CRD's ``openAPIV3Schema``. Anything not described is atomic (lists) or granular (maps), as on a real
server. Pure.
"""

from __future__ import annotations

from typing import Any, Protocol

#: Built-in list fields merged as maps keyed by these fields, wherever they appear.
LIST_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "volumes": ("name",),
    "env": ("name",),
    "imagePullSecrets": ("name",),
    "secrets": ("name",),
    "resourceClaims": ("name",),
    "volumeMounts": ("mountPath",),
    "volumeDevices": ("devicePath",),
    "conditions": ("type",),
    "hostAliases": ("ip",),
    "topologySpreadConstraints": ("topologyKey", "whenUnsatisfiable"),
}

#: Built-in map fields replaced as a whole (label selectors and ``mapType=atomic`` maps).
ATOMIC_MAPS = frozenset({"selector", "podSelector", "namespaceSelector", "labelSelector", "nodeSelector"})

_CONTAINER_LISTS = frozenset({"containers", "initContainers", "ephemeralContainers"})


class SchemaNode(Protocol):
    def field(self, name: str) -> SchemaNode: ...

    def item(self) -> SchemaNode: ...

    def list_keys(self) -> tuple[str, ...] | None:
        """Key fields when this node is a list merged by key, else None."""
        ...

    def key_defaults(self) -> dict[str, Any]:
        """Defaults of key fields, used when a list item omits them (``protocol: TCP`` on ports)."""
        ...

    def is_set(self) -> bool:
        """True for a list of scalars merged as a set (``v:`` entries)."""
        ...

    def atomic_map(self) -> bool: ...


class BuiltinNode:
    """A position in a built-in object, known by its path of field names (``[]`` for a list item)."""

    __slots__ = ("kind", "path")

    def __init__(self, kind: str, path: tuple[str, ...]) -> None:
        self.kind = kind
        self.path = path

    def field(self, name: str) -> BuiltinNode:
        return BuiltinNode(self.kind, (*self.path, name))

    def item(self) -> BuiltinNode:
        return BuiltinNode(self.kind, (*self.path, "[]"))

    def list_keys(self) -> tuple[str, ...] | None:
        if not self.path:
            return None
        name = self.path[-1]
        if name == "ports":
            if len(self.path) >= 3 and self.path[-2] == "[]" and self.path[-3] in _CONTAINER_LISTS:
                return ("containerPort", "protocol")
            if self.kind == "Service" and self.path == ("spec", "ports"):
                return ("port", "protocol")
            return None
        if name == "ownerReferences":
            return ("uid",) if self.path == ("metadata", "ownerReferences") else None
        return LIST_KEYS.get(name)

    def key_defaults(self) -> dict[str, Any]:
        return {"protocol": "TCP"} if self.path and self.path[-1] == "ports" else {}

    def is_set(self) -> bool:
        return self.path == ("metadata", "finalizers")

    def atomic_map(self) -> bool:
        return bool(self.path) and self.path[-1] in ATOMIC_MAPS


_META = BuiltinNode("", ())


class CRDNode:
    """A position in a custom resource, described by its CRD's structural schema (None when unknown)."""

    __slots__ = ("path", "schema")

    def __init__(self, schema: dict[str, Any] | None, path: tuple[str, ...] = ()) -> None:
        self.schema = schema or {}
        self.path = path

    def field(self, name: str) -> SchemaNode:
        if not self.path and name == "metadata":
            return _META.field("metadata")
        props = self.schema.get("properties") or {}
        if name in props:
            return CRDNode(props[name], (*self.path, name))
        extra = self.schema.get("additionalProperties")
        return CRDNode(extra if isinstance(extra, dict) else None, (*self.path, name))

    def item(self) -> SchemaNode:
        return CRDNode(self.schema.get("items"), (*self.path, "[]"))

    def list_keys(self) -> tuple[str, ...] | None:
        if self.schema.get("x-kubernetes-list-type") == "map":
            return tuple(self.schema.get("x-kubernetes-list-map-keys") or ())
        return None

    def key_defaults(self) -> dict[str, Any]:
        props = (self.schema.get("items") or {}).get("properties") or {}
        return {
            name: prop["default"]
            for name, prop in props.items()
            if isinstance(prop, dict) and "default" in prop
        }

    def is_set(self) -> bool:
        return self.schema.get("x-kubernetes-list-type") == "set"

    def atomic_map(self) -> bool:
        return self.schema.get("x-kubernetes-map-type") == "atomic"
