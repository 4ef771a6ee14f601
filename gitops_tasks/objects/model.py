"""The in-memory shape of a declared object, independent of its kind."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

#: Our own API group; Flux's groups are accepted too (see ``kinds.API_VERSIONS``).
OWN_API_VERSION = "gitops-tasks.io/v1"


@dataclass(frozen=True, order=True)
class ObjectRef:
    """An object's identity: ``kind/namespace/name``."""

    kind: str
    namespace: str
    name: str

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    @classmethod
    def parse(cls, key: str) -> ObjectRef:
        """Parse ``kind/namespace/name`` (as stored in Redis). Raises ``ValueError``."""
        parts = key.split("/")
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"object key {key!r}: expected KIND/NAMESPACE/NAME")
        return cls(parts[0], parts[1], parts[2])

    def as_kwargs(self) -> dict[str, str]:
        """The JSON keyword arguments every reconcile task takes."""
        return {"kind": self.kind, "namespace": self.namespace, "name": self.name}


@dataclass
class Object:
    """A validated declared object. ``spec`` keeps the YAML's field names (Flux's)."""

    api_version: str
    kind: str
    name: str
    namespace: str
    spec: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    #: Where the object was declared, ``file:line`` (for error messages and ``get -o yaml``).
    source: str = ""

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(self.kind, self.namespace, self.name)

    @property
    def suspended(self) -> bool:
        return bool(self.spec.get("suspend", False))

    def spec_fingerprint(self) -> str:
        """A stable text of the spec, to tell whether an apply changed it."""
        return json.dumps(self.spec, sort_keys=True, separators=(",", ":"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": {**self.metadata, "name": self.name, "namespace": self.namespace},
            "spec": self.spec,
        }

    def to_json(self) -> str:
        return json.dumps({**self.to_dict(), "source": self.source}, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Object:
        data = json.loads(text)
        meta = dict(data.get("metadata") or {})
        return cls(
            api_version=data["apiVersion"],
            kind=data["kind"],
            name=meta.pop("name"),
            namespace=meta.pop("namespace"),
            spec=data.get("spec") or {},
            metadata=meta,
            source=data.get("source", ""),
        )
