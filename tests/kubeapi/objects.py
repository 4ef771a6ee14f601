"""Small helpers on stored objects: cloning, timestamps, metadata access, request body checks. Pure."""

from __future__ import annotations

import datetime
from typing import Any

from tests.kubeapi.errors import bad_request
from tests.kubeapi.resources import ResourceType

#: Kinds whose objects carry no ``metadata.generation`` on a real server.
NO_GENERATION = frozenset(
    {
        "ConfigMap",
        "Secret",
        "ServiceAccount",
        "Namespace",
        "Service",
        "Event",
        "Pod",
        "PersistentVolumeClaim",
        "PersistentVolume",
        "StorageClass",
        "IngressClass",
        "Role",
        "ClusterRole",
        "RoleBinding",
        "ClusterRoleBinding",
    }
)


def clone(value: Any) -> Any:
    """Deep copy of JSON data (faster than ``copy.deepcopy``)."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(obj: dict[str, Any]) -> dict[str, Any]:
    value = obj.get("metadata")
    if not isinstance(value, dict):
        value = obj["metadata"] = {}
    return value


def content(obj: dict[str, Any]) -> dict[str, Any]:
    """Everything but metadata and status: what bumps ``metadata.generation`` when it changes."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def has_generation(rt: ResourceType) -> bool:
    return bool(rt.crd) or rt.kind not in NO_GENERATION


def check_body(rt: ResourceType, body: Any, *, namespace: str, name: str | None) -> dict[str, Any]:
    """Refuse (400) a body that is not an object of this resource, or names another object."""
    if not isinstance(body, dict):
        raise bad_request("the body of the request must be a JSON or YAML object")
    api_version, kind = body.get("apiVersion"), body.get("kind")
    if api_version and api_version != rt.api_version:
        raise bad_request(
            f"the API version in the data ({api_version}) does not match the expected API version "
            f"({rt.api_version})"
        )
    if kind and kind != rt.kind:
        raise bad_request(f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})")
    metadata: dict[str, Any] = body["metadata"] if isinstance(body.get("metadata"), dict) else {}
    if name is not None and metadata.get("name") and metadata["name"] != name:
        raise bad_request(
            f"the name of the object ({metadata['name']}) does not match the name on the URL ({name})"
        )
    if rt.namespaced and metadata.get("namespace") and metadata["namespace"] != namespace:
        raise bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    return body
