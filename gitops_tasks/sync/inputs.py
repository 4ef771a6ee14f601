"""Where a Kustomization's ConfigMaps and Secrets are read from (``substituteFrom``,
``kubeConfig.secretRef``).

From the cluster gitops-tasks is configured for (the "home" cluster, not a remote target), in the
Kustomization's namespace, when one is configured; then from the secrets directory, laid out like
a mounted volume: ``<secrets dir>/<namespace>/<name>/<key>`` (the same layout serves ConfigMaps).
A ConfigMap or Secret absent from both is ``None``. Hidden entries (a mounted volume's ``..data``)
are not keys.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from gitops_tasks.sync.cluster import Cluster
from gitops_tasks.sync.errors import ClusterError, KubeConfigError

#: Keys tried, in order, for a kubeconfig in a Secret without ``secretRef.key`` (Flux's).
KUBECONFIG_KEYS = ("value", "value.yaml")

HomeCluster = Callable[[], Cluster | None]


class SecretReader(Protocol):
    """``(kind, name) → data`` in the Kustomization's namespace, or in ``namespace`` when given
    (the controller-wide age key Secret); ``None`` when the object does not exist."""

    def __call__(self, kind: str, name: str, namespace: str | None = None) -> Mapping[str, str] | None: ...


def read_directory(secrets_dir: Path, namespace: str, name: str) -> dict[str, str] | None:
    """The keys of ``<secrets_dir>/<namespace>/<name>/``, or ``None`` when there is no such dir."""
    directory = secrets_dir / namespace / name
    if not directory.is_dir():
        return None
    out: dict[str, str] = {}
    for item in sorted(directory.iterdir()):
        if item.name.startswith(".") or not item.is_file():
            continue
        out[item.name] = item.read_text(encoding="utf-8")
    return out


def read_cluster(cluster: Cluster, kind: str, namespace: str, name: str) -> dict[str, str] | None:
    """The data of a ConfigMap or Secret (decoded), or ``None`` when it does not exist."""
    live = cluster.get("v1", kind, name, namespace)
    if live is None:
        return None
    out: dict[str, str] = {}
    if kind == "Secret":
        for key, value in (live.get("data") or {}).items():
            try:
                out[key] = base64.b64decode(str(value)).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                continue
        out.update({str(k): str(v) for k, v in (live.get("stringData") or {}).items()})
    else:
        out.update({str(k): str(v) for k, v in (live.get("data") or {}).items()})
    return out


def make_reader(namespace: str, *, secrets_dir: Path, home: HomeCluster) -> SecretReader:
    """A ``(kind, name) → data`` reader for ``namespace`` (cluster first, then the directory).

    An unreachable or refusing cluster falls back to the directory; when that has nothing either,
    the cluster's error is raised (:class:`ClusterError`).
    """

    default_namespace = namespace

    def read(kind: str, name: str, namespace: str | None = None) -> Mapping[str, str] | None:
        namespace = namespace or default_namespace
        failure: ClusterError | None = None
        try:
            cluster = home()
        except KubeConfigError:
            cluster = None
        if cluster is not None:
            try:
                found = read_cluster(cluster, kind, namespace, name)
            except ClusterError as exc:
                failure, found = exc, None
            if found is not None:
                return found
        found = read_directory(secrets_dir, namespace, name)
        if found is None and failure is not None:
            raise failure
        return found

    return read


def kubeconfig_from_secret(
    secret_ref: Mapping[str, str], namespace: str, *, secrets_dir: Path, home: HomeCluster
) -> tuple[str, str]:
    """``(kubeconfig text, origin)`` from ``spec.kubeConfig.secretRef``. Raises :class:`KubeConfigError`."""
    name = str(secret_ref.get("name", ""))
    origin = f"spec.kubeConfig.secretRef: Secret {namespace}/{name}"
    try:
        data = make_reader(namespace, secrets_dir=secrets_dir, home=home)("Secret", name)
    except ClusterError as exc:
        raise KubeConfigError(f"{origin}: {exc.message}") from None
    if data is None:
        raise KubeConfigError(f"{origin} not found")
    keys = (secret_ref["key"],) if secret_ref.get("key") else KUBECONFIG_KEYS
    for key in keys:
        if data.get(key, "").strip():
            return data[key], f"{origin} key {key!r}"
    raise KubeConfigError(f"{origin} has no key {' or '.join(repr(k) for k in keys)}")
