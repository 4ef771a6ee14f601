"""A skeleton OpenAPI v3 document per group/version: paths and PATCH parameters, no schemas. Pure.

kubectl (``apply`` with its default ``--validate=strict``) reads ``/openapi/v3`` only to learn that the
server validates fields itself (a ``fieldValidation`` query parameter on the PATCH operation of the
kind); then it sends ``fieldValidation=Strict`` instead of validating against schemas it would
otherwise need. The emulator accepts that parameter but does not check fields against schemas.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tests.kubeapi.resources import Registry, ResourceType

_PARAMETERS = ("dryRun", "fieldManager", "fieldValidation", "force")


def _url_prefix(api_version: str) -> str:
    return f"api/{api_version}" if "/" not in api_version else f"apis/{api_version}"


def _item_path(rt: ResourceType) -> str:
    scope = "namespaces/{namespace}/" if rt.namespaced else ""
    return f"/{_url_prefix(rt.api_version)}/{scope}{rt.plural}/{{name}}"


def group_version_document(registry: Registry, api_version: str) -> dict[str, Any] | None:
    types = registry.types(api_version)
    if not types:
        return None
    paths: dict[str, Any] = {}
    for rt in types:
        gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
        operation = {
            "operationId": f"patch{rt.kind}",
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": gvk,
            "parameters": [
                {"name": name, "in": "query", "schema": {"type": "string"}} for name in _PARAMETERS
            ],
            "responses": {"200": {"description": "OK"}},
        }
        paths[_item_path(rt)] = {"patch": operation}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.0"}, "paths": paths}


def index(registry: Registry) -> dict[str, Any]:
    """``/openapi/v3``: where each group/version's document is."""
    out = {}
    for api_version in registry.api_versions_served():
        document = group_version_document(registry, api_version)
        digest = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:16].upper()
        prefix = _url_prefix(api_version)
        out[prefix] = {"serverRelativeURL": f"/openapi/v3/{prefix}?hash={digest}"}
    return {"paths": out}
