"""``Cluster``: the few Kubernetes API calls sync needs, over the official dynamic client.

Built from a kubeconfig (a file, the text of one, or the in-cluster service account) or from a
ready ``ApiClient``; ``impersonate`` sends ``Impersonate-User`` on every request (a Kustomization's
``serviceAccountName``). Applies are server-side applies (``PATCH`` with
``application/apply-patch+yaml``) under the field manager ``gitops-tasks`` with ``force`` (the
Git declaration wins conflicts, as in Flux). Every API failure becomes a
:class:`~gitops_tasks.sync.errors.ClusterError` carrying the HTTP status and the API's reason.
Discovery is cached in a private temporary file per ``Cluster`` and refreshed on a miss, so a CRD
applied a moment ago is found.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import DynamicApiError, ResourceNotFoundError
from urllib3.exceptions import HTTPError

from gitops_tasks.boundedyaml import describe, safe_load
from gitops_tasks.sync.errors import ClusterError, KubeConfigError, NoClusterConfigured

#: Field manager of every apply (``metadata.managedFields[].manager``).
FIELD_MANAGER = "gitops-tasks"
#: Longest one API request may take (seconds).
DEFAULT_REQUEST_TIMEOUT_S = 30.0

T = TypeVar("T")


def _api_message(exc: DynamicApiError) -> tuple[str, str]:
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    reason = body.get("reason") if isinstance(body, dict) else None
    return str(message or exc.reason or "error"), str(reason or exc.reason or "")


class _DynamicClient(DynamicClient):
    """The dynamic client with a timeout on every request, discovery included."""

    def __init__(self, client: k8s.ApiClient, *, cache_file: str, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        super().__init__(client, cache_file=cache_file)

    def request(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        params.setdefault("_request_timeout", self.timeout_s)
        return super().request(method, path, body=body, **params)


def cluster_configured(env: dict[str, str] | None = None) -> bool:
    """True when a default cluster configuration exists: a pod's service account, a file named by
    ``$KUBECONFIG`` or ``~/.kube/config``."""
    env = dict(os.environ) if env is None else env
    if env.get("KUBERNETES_SERVICE_HOST"):
        return True
    paths = [p for p in env.get("KUBECONFIG", "").split(os.pathsep) if p]
    if not paths:
        paths = [os.path.join(os.path.expanduser("~"), ".kube", "config")]
    return any(os.path.isfile(p) for p in paths)


class Cluster:
    """One Kubernetes API endpoint. Not thread-safe: one per reconcile (construction is cheap)."""

    def __init__(
        self,
        api_client: k8s.ApiClient,
        *,
        field_manager: str = FIELD_MANAGER,
        request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
        impersonate: str | None = None,
    ) -> None:
        self.api_client = api_client
        self.field_manager = field_manager
        self.request_timeout_s = request_timeout_s
        self.host = str(api_client.configuration.host)
        if impersonate:
            api_client.set_default_header("Impersonate-User", impersonate)
        self._cache_dir = tempfile.mkdtemp(prefix="gitops-tasks-discovery-")
        self._finalizer = weakref.finalize(self, shutil.rmtree, self._cache_dir, True)
        self._dynamic: DynamicClient | None = None

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def from_kubeconfig(
        cls, path: str | Path | None = None, *, context: str | None = None, impersonate: str | None = None
    ) -> Cluster:
        """From a kubeconfig file; ``None``: in-cluster when running in a pod, else ``$KUBECONFIG``
        or ``~/.kube/config``. Raises :class:`KubeConfigError`."""
        if path is None and not cluster_configured():
            raise NoClusterConfigured(
                "no cluster configured (set GITOPS_TASKS_KUBECONFIG or $KUBECONFIG, "
                "or provide ~/.kube/config or a pod service account)"
            )
        try:
            if path is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
                configuration = k8s.Configuration()
                k8s_config.load_incluster_config(client_configuration=configuration)
                api = k8s.ApiClient(configuration)
            else:
                api = k8s_config.new_client_from_config(
                    config_file=str(path) if path else None, context=context, persist_config=False
                )
        except (k8s_config.ConfigException, OSError, yaml.YAMLError, TypeError, KeyError) as exc:
            where = f"kubeconfig {path}" if path else "the default kubeconfig"
            raise KubeConfigError(f"cannot load {where}: {exc}") from None
        return cls(api, impersonate=impersonate)

    @classmethod
    def from_kubeconfig_text(
        cls, text: str, *, origin: str, context: str | None = None, impersonate: str | None = None
    ) -> Cluster:
        """From kubeconfig YAML (a Secret's value); ``origin`` names it in errors."""
        try:
            data = safe_load(text)
            if not isinstance(data, dict):
                raise k8s_config.ConfigException("expected a kubeconfig mapping")
            api = k8s_config.new_client_from_config_dict(data, context=context, persist_config=False)
        except (k8s_config.ConfigException, yaml.YAMLError, TypeError, KeyError) as exc:
            raise KubeConfigError(f"{origin}: invalid kubeconfig: {describe(exc)}") from None
        return cls(api, impersonate=impersonate)

    def close(self) -> None:
        self.api_client.close()
        self._finalizer()

    # -- calls --------------------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except DynamicApiError as exc:
            message, reason = _api_message(exc)
            raise ClusterError(f"{what}: {message}", status=int(exc.status or 0), reason=reason) from None
        except (HTTPError, OSError) as exc:
            raise ClusterError(f"{what}: cannot reach the Kubernetes API at {self.host}: {exc}") from None

    @property
    def dynamic(self) -> DynamicClient:
        if self._dynamic is None:
            cache = os.path.join(self._cache_dir, "discovery.json")
            self._dynamic = self._call(
                "discovery",
                lambda: _DynamicClient(self.api_client, cache_file=cache, timeout_s=self.request_timeout_s),
            )
        return self._dynamic

    def resource(self, api_version: str, kind: str) -> Any:
        """The dynamic client's resource for ``kind``; :class:`ClusterError` (404) when not served."""
        try:
            return self._call(
                f"discovery of {kind} {api_version}",
                lambda: self.dynamic.resources.get(api_version=api_version, kind=kind),
            )
        except ResourceNotFoundError:
            raise ClusterError(
                f"{kind} {api_version} is not served by the cluster", status=404, reason="NoKindMatch"
            ) from None

    def scope(self, api_version: str, kind: str) -> bool | None:
        """Whether ``kind`` is namespaced; ``None`` when the cluster does not serve it."""
        try:
            return bool(self.resource(api_version, kind).namespaced)
        except ClusterError as exc:
            if exc.reason == "NoKindMatch":
                return None
            raise

    def refresh(self) -> None:
        """Forget discovery (after CRDs were applied or deleted)."""
        if self._dynamic is not None:
            self._call("discovery", self._dynamic.resources.invalidate_cache)

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        """The live object, or ``None`` when it does not exist."""
        resource = self.resource(api_version, kind)
        ns = namespace if resource.namespaced else None
        try:
            found = self._call(
                f"get {kind}/{name}",
                lambda: self.dynamic.get(resource, name=name, namespace=ns),
            )
        except ClusterError as exc:
            if exc.status == 404:
                return None
            raise
        return dict(found.to_dict())

    def list(
        self, api_version: str, kind: str, *, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        resource = self.resource(api_version, kind)
        found = self._call(
            f"list {kind}",
            lambda: self.dynamic.get(
                resource,
                namespace=namespace if resource.namespaced else None,
                label_selector=label_selector,
            ),
        )
        return [dict(item) for item in found.to_dict().get("items") or []]

    def apply(self, obj: dict[str, Any], *, dry_run: bool = False, force: bool = True) -> dict[str, Any]:
        """Server-side apply ``obj``; ``dry_run`` asks the server what it would store."""
        resource = self.resource(str(obj["apiVersion"]), str(obj["kind"]))
        meta = obj.get("metadata") or {}
        extra: dict[str, Any] = {"dry_run": "All"} if dry_run else {}
        found = self._call(
            ("dry-run apply" if dry_run else "apply") + f" {obj['kind']}/{meta.get('name')}",
            lambda: self.dynamic.server_side_apply(
                resource,
                body=obj,
                namespace=meta.get("namespace") if resource.namespaced else None,
                field_manager=self.field_manager,
                force_conflicts=force,
                **extra,
            ),
        )
        return dict(found.to_dict())

    def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str = "Background",
    ) -> bool:
        """Delete an object; ``False`` when it was already gone."""
        resource = self.resource(api_version, kind)
        try:
            self._call(
                f"delete {kind}/{name}",
                lambda: self.dynamic.delete(
                    resource,
                    name=name,
                    namespace=namespace if resource.namespaced else None,
                    propagation_policy=propagation,
                ),
            )
        except ClusterError as exc:
            if exc.status == 404:
                return False
            raise
        return True
