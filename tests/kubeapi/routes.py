"""HTTP routing: Kubernetes API paths and query parameters to store operations.

``/api/v1/...`` and ``/apis/<group>/<version>/...`` resource paths (namespaced, cluster-scoped and
all-namespaces collections, items and the ``status`` subresource), discovery, ``/version`` and the health
endpoints. Bodies are JSON, apply configurations JSON or YAML. ``?watch=true`` streams events.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from tests.kubeapi import openapi
from tests.kubeapi.errors import bad_request, method_not_allowed, path_not_found
from tests.kubeapi.patching import APPLY_PATCH
from tests.kubeapi.resources import ResourceType
from tests.kubeapi.store import Store
from tests.kubeapi.watch import watch

#: What ``/version`` reports.
VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0+kubeapi-emulator",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.23",
    "compiler": "gc",
    "platform": "linux/amd64",
}
#: Paths answered without a bearer token.
PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version"})
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class Request:
    method: str
    path: str
    params: Mapping[str, str]
    body: bytes
    content_type: str
    user_agent: str
    stopping: Callable[[], bool] = lambda: False

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            if self.content_type == APPLY_PATCH:
                try:
                    return yaml.load(self.body, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader
                except yaml.YAMLError as exc:
                    raise bad_request(f"error decoding YAML: {exc}") from None
            raise bad_request("the request body is not valid JSON") from None

    def flag(self, name: str) -> bool | None:
        value = self.params.get(name)
        return None if value is None else value.lower() in ("true", "1")

    def dry_run(self, options: Any = None) -> bool:
        values = [self.params["dryRun"]] if "dryRun" in self.params else []
        if isinstance(options, dict):
            values += options.get("dryRun") or []
        for value in values:
            if value != "All":
                raise bad_request(f'dryRun: Unsupported value: "{value}": supported values: "All"')
        return bool(values)

    def manager(self) -> str:
        return self.params.get("fieldManager") or self.user_agent.split("/", 1)[0][:128] or "unknown"


def route(store: Store, request: Request, server_address: str) -> tuple[int, Any]:
    """Handle one request; returns ``(status code, JSON-able body or plain text)``."""
    path = request.path.rstrip("/") or "/"
    if path in ("/healthz", "/livez", "/readyz"):
        return 200, "ok"
    if request.method != "GET" and not _is_resource_path(path):
        raise method_not_allowed()
    if path == "/version":
        return 200, VERSION
    parts = path.strip("/").split("/")
    with store.lock:
        registry = store.registry
        if path == "/api":
            return 200, registry.api_versions(server_address)
        if path == "/apis":
            return 200, registry.group_list()
        if path == "/openapi/v3":
            return 200, openapi.index(registry)
        if path.startswith("/openapi/v3/"):
            api_version = path.removeprefix("/openapi/v3/").removeprefix("api/").removeprefix("apis/")
            return _found(openapi.group_version_document(registry, api_version), path)
        if parts[0] == "api" and len(parts) == 2:
            return _found(registry.resource_list(parts[1]), path)
        if parts[0] == "apis" and len(parts) == 2:
            return _found(registry.group(parts[1]), path)
        if parts[0] == "apis" and len(parts) == 3:
            return _found(registry.resource_list(f"{parts[1]}/{parts[2]}"), path)
        if parts[0] == "api" and len(parts) > 2:
            api_version, rest = parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) > 3:
            api_version, rest = f"{parts[1]}/{parts[2]}", parts[3:]
        else:
            raise path_not_found(path)
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            scoped = registry.get(api_version, rest[2])
            if scoped is not None and scoped.namespaced:
                namespace, rest = rest[1], rest[2:]
        rt = registry.get(api_version, rest[0])
    if rt is None or len(rest) > 3 or (namespace is not None and not rt.namespaced):
        raise path_not_found(path)
    name = rest[1] if len(rest) > 1 else None
    subresource = rest[2] if len(rest) > 2 else ""
    if subresource and (subresource != "status" or not rt.status):
        raise path_not_found(path)
    if rt.namespaced and namespace is None and (name is not None or request.method != "GET"):
        raise path_not_found(path)
    return _resource(store, request, rt, namespace, name, subresource)


def _is_resource_path(path: str) -> bool:
    parts = path.strip("/").split("/")
    return (parts[0] == "api" and len(parts) > 2) or (parts[0] == "apis" and len(parts) > 3)


def _found(document: dict[str, Any] | None, path: str) -> tuple[int, Any]:
    if document is None:
        raise path_not_found(path)
    return 200, document


def _resource(
    store: Store,
    request: Request,
    rt: ResourceType,
    namespace: str | None,
    name: str | None,
    subresource: str,
) -> tuple[int, Any]:
    method, params, ns = request.method, request.params, namespace or ""
    if request.flag("watch"):
        if method != "GET" or name is not None:
            raise method_not_allowed()
        return 200, watch(store, rt, namespace, dict(params), stopping=request.stopping)
    if name is None:
        if method == "GET":
            return 200, store.list_objects(
                rt,
                namespace,
                label_selector=params.get("labelSelector"),
                field_selector=params.get("fieldSelector"),
                limit=int(params.get("limit") or 0),
                continue_token=params.get("continue"),
            )
        if method == "POST":
            return 201, store.create(
                rt, ns, request.json(), manager=request.manager(), dry_run=request.dry_run()
            )
        if method == "DELETE":
            options = request.json() or {}
            return 200, store.delete_collection(
                rt,
                namespace,
                label_selector=params.get("labelSelector"),
                field_selector=params.get("fieldSelector"),
                policy=_policy(request, options),
                dry_run=request.dry_run(options),
            )
        raise method_not_allowed()
    if method == "GET":
        return 200, store.get(rt, ns, name)
    if method == "PUT":
        return 200, store.replace(
            rt,
            ns,
            name,
            request.json(),
            manager=request.manager(),
            dry_run=request.dry_run(),
            subresource=subresource,
        )
    if method == "PATCH":
        content_type = request.content_type
        manager = params.get("fieldManager") if content_type == APPLY_PATCH else request.manager()
        obj, created = store.patch(
            rt,
            ns,
            name,
            request.json(),
            content_type=content_type,
            manager=manager,
            force=request.flag("force"),
            dry_run=request.dry_run(),
            subresource=subresource,
        )
        return (201 if created else 200), obj
    if method == "DELETE" and not subresource:
        options = request.json() or {}
        return 200, store.delete(
            rt,
            ns,
            name,
            policy=_policy(request, options),
            preconditions=options.get("preconditions") if isinstance(options, dict) else None,
            dry_run=request.dry_run(options),
        )
    raise method_not_allowed()


def _policy(request: Request, options: Any) -> str | None:
    policy = request.params.get("propagationPolicy")
    if policy is None and isinstance(options, dict):
        policy = options.get("propagationPolicy")
    orphan = request.flag("orphanDependents")
    if orphan is None and isinstance(options, dict) and options.get("orphanDependents") is not None:
        orphan = bool(options["orphanDependents"])
    if policy is None and orphan is not None:
        policy = "Orphan" if orphan else "Background"
    return policy
