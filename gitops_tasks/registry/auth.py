"""Registry credentials and TLS material: where they come from, in Flux's order.

1. ``spec.secretRef``: a ``kubernetes.io/dockerconfigjson`` Secret, read from the configured
   cluster when it has it, else from the mounted Secret-volume layout
   ``<secrets_dir>/<namespace>/<name>/.dockerconfigjson`` (``.dockercfg`` for the legacy type).
2. Kubernetes pull secrets of ``spec.serviceAccountName``, with a configured cluster
   (:class:`ClusterSecrets`, built and cached per process by the task layer).
3. Docker config files (``$DOCKER_CONFIG/config.json``, ``~/.docker/config.json``), including
   ``credsStore`` / ``credHelpers`` credential helpers, through :mod:`docker.auth`. The path is
   docker's own convention, read by the docker package, not a gitops-tasks setting. Each process
   parses a config file once per version (path, mtime, size: an edited file is read again) and
   reuses a credential helper's answer for :data:`DEFAULT_HELPER_TTL_S` (:class:`DockerConfigCache`).

The first source with an entry for the image's registry wins; none means anonymous access.
:class:`Credentials` never shows its secrets in ``repr`` and no message here holds them.
``spec.certSecretRef`` gives :class:`TLSFiles` (``ca.crt``, ``tls.crt``, ``tls.key``).
"""

from __future__ import annotations

import binascii
import fnmatch
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

from docker import auth as docker_auth
from docker import errors as docker_errors
from docker.utils import config as docker_config_files

from gitops_tasks.objects.model import Object
from gitops_tasks.registry.errors import RegistryError
from gitops_tasks.registry.names import DOCKER_HUB, DOCKER_HUB_ALIASES, ImageName

#: Secret keys holding a docker config, in the order they are tried.
DOCKERCONFIG_KEYS = (".dockerconfigjson", ".dockercfg")
#: certSecretRef keys (Flux's current names, then the deprecated ones).
CA_KEYS = ("ca.crt", "caFile")
CERT_KEYS = ("tls.crt", "certFile")
KEY_KEYS = ("tls.key", "keyFile")
#: Seconds a docker credential helper's answer (per helper and registry) is reused before the helper
#: runs again; an edit of the docker config file drops the answers at once.
DEFAULT_HELPER_TTL_S = 300.0


@dataclass(frozen=True)
class Credentials:
    """What to present to a registry or its token server. Secrets are left out of ``repr``."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    #: An OAuth2 refresh token (docker's ``identitytoken``), exchanged at the token server.
    identity_token: str | None = field(default=None, repr=False)
    #: A bearer token for the registry itself (docker's ``registrytoken``).
    registry_token: str | None = field(default=None, repr=False)
    #: Where they came from, for messages: ``secret default/regcred``, ``docker config``.
    source: str = ""

    @property
    def has_basic(self) -> bool:
        return bool(self.username) and self.password is not None

    @cached_property
    def fingerprint(self) -> str:
        """A short hash naming these credentials (so cached tokens are never shared between
        identities); reveals nothing about them."""
        material = "\0".join(
            v or "" for v in (self.username, self.password, self.identity_token, self.registry_token)
        )
        return hashlib.sha256(material.encode()).hexdigest()[:16]

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret value, for redaction."""
        return tuple(v for v in (self.password, self.identity_token, self.registry_token) if v)


@dataclass(frozen=True)
class TLSFiles:
    """Files of a ``certSecretRef``: a CA to trust and an optional client certificate."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None


def _secret_dir(obj: Object, field_name: str, secrets_dir: Path) -> tuple[Path, str]:
    ref = obj.spec.get(field_name) or {}
    name = str(ref.get("name", ""))
    where = f"{obj.namespace}/{name}"
    path = secrets_dir / obj.namespace / name
    if not name or not path.is_dir():
        raise RegistryError(
            "invalid",
            f"{obj.ref}: spec.{field_name}: secret {where} not found (expected a directory {path})",
            reason="SecretNotFound",
        )
    return path, where


def credentials_from_dockerconfig(data: bytes | str, image: ImageName, *, source: str) -> Credentials | None:
    """The entry of a docker config (``{"auths": {...}}`` or the legacy flat form) that serves
    ``image``, or None. Keys match by host (``https://index.docker.io/v1/`` is Docker Hub; ``*``
    globs a host as Kubernetes allows) and optional path prefix; the most specific key wins.
    Raises :class:`RegistryError` ``InvalidSecret`` when the JSON or an ``auth`` value is malformed."""
    try:
        config = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise RegistryError("invalid", f"{source}: not valid JSON", reason="InvalidSecret") from None
    if not isinstance(config, dict):
        raise RegistryError("invalid", f"{source}: expected a JSON object", reason="InvalidSecret")
    entries = config.get("auths", config if "auths" not in config else {})
    if not isinstance(entries, dict):
        raise RegistryError("invalid", f"{source}: 'auths' is not an object", reason="InvalidSecret")
    best: tuple[int, Any] | None = None
    for key, entry in entries.items():
        score = _match(str(key), image)
        if score is not None and isinstance(entry, dict) and (best is None or score > best[0]):
            best = (score, entry)
    return None if best is None else _entry_credentials(best[1], source=source)


def _match(key: str, image: ImageName) -> int | None:
    """How specifically config key ``key`` names ``image``'s repository (None: it does not)."""
    rest = key.split("://", 1)[1] if "://" in key else key
    host, _, prefix = rest.partition("/")
    host = host.lower()
    registry = DOCKER_HUB if host in DOCKER_HUB_ALIASES else host
    if registry != image.registry and not ("*" in host and fnmatch.fnmatchcase(image.registry, host)):
        return None
    prefix = prefix.strip("/")
    if prefix in ("v1", "v2"):  # https://index.docker.io/v1/: an API path, not a repository prefix
        prefix = ""
    if prefix and not (image.path == prefix or image.path.startswith(prefix + "/")):
        return None
    return len(prefix) + (0 if "*" in host else 1_000)


def _entry_credentials(entry: dict[str, Any], *, source: str) -> Credentials | None:
    username, password = entry.get("username"), entry.get("password")
    if entry.get("auth") and not (username and password is not None):
        try:
            username, password = docker_auth.decode_auth(entry["auth"])
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise RegistryError(
                "invalid", f"{source}: an 'auth' value is not base64 of user:password", reason="InvalidSecret"
            ) from None
    creds = Credentials(
        username=username or None,
        password=password if username else None,
        identity_token=entry.get("identitytoken") or entry.get("IdentityToken") or None,
        registry_token=entry.get("registrytoken") or None,
        source=source,
    )
    if not (creds.has_basic or creds.identity_token or creds.registry_token):
        return None
    return creds


class ClusterSecrets(Protocol):
    """Read access to the configured cluster's Secrets and ServiceAccounts (built by the task layer)."""

    def secret(self, namespace: str, name: str) -> Mapping[str, str] | None:
        """The decoded data of a Secret, or None when it does not exist."""

    def pull_secrets(self, namespace: str, service_account: str) -> list[str] | None:
        """The ``imagePullSecrets`` names of a ServiceAccount, or None when it does not exist."""


def credentials_from_secret(
    obj: Object, image: ImageName, *, secrets_dir: Path, cluster: ClusterSecrets | None = None
) -> Credentials | None:
    """Credentials from ``spec.secretRef`` (None when the object names no secret or the secret has
    no entry for the image's registry): the cluster's Secret when a cluster is configured and has
    it, else the mounted secrets directory. Raises ``SecretNotFound`` / ``InvalidSecret`` errors."""
    name = (obj.spec.get("secretRef") or {}).get("name")
    if not name:
        return None
    if cluster is not None:
        data = cluster.secret(obj.namespace, str(name))
        if data is not None:
            return _from_secret_data(
                data, image, where=f"{obj.ref}: spec.secretRef: secret {obj.namespace}/{name}"
            )
    path, where = _secret_dir(obj, "secretRef", secrets_dir)
    for key in DOCKERCONFIG_KEYS:
        if (path / key).is_file():
            source = f"{obj.ref}: spec.secretRef: secret {where} key {key}"
            return credentials_from_dockerconfig((path / key).read_bytes(), image, source=source)
    raise RegistryError(
        "invalid",
        f"{obj.ref}: spec.secretRef: secret {where} has no {' or '.join(DOCKERCONFIG_KEYS)} key",
        reason="InvalidSecret",
    )


def credentials_from_kubernetes(
    obj: Object, image: ImageName, cluster: ClusterSecrets | None
) -> Credentials | None:
    """Credentials from the ``imagePullSecrets`` of ``spec.serviceAccountName`` (as Flux does), when
    a cluster is configured; the first pull secret with an entry for the image's registry wins.
    Raises ``SecretNotFound`` when the service account or one of its secrets does not exist."""
    account = obj.spec.get("serviceAccountName")
    if cluster is None or not account:
        return None
    names = cluster.pull_secrets(obj.namespace, str(account))
    if names is None:
        raise RegistryError(
            "invalid",
            f"{obj.ref}: spec.serviceAccountName: service account {obj.namespace}/{account} not found",
            reason="SecretNotFound",
        )
    for name in names:
        data = cluster.secret(obj.namespace, name)
        where = f"{obj.ref}: imagePullSecret {obj.namespace}/{name} of service account {account}"
        if data is None:
            raise RegistryError("invalid", f"{where} not found", reason="SecretNotFound")
        found = _from_secret_data(data, image, where=where)
        if found is not None:
            return found
    return None


def _from_secret_data(data: Mapping[str, str], image: ImageName, *, where: str) -> Credentials | None:
    for key in DOCKERCONFIG_KEYS:
        if key in data:
            return credentials_from_dockerconfig(data[key], image, source=f"{where} key {key}")
    raise RegistryError(
        "invalid", f"{where} has no {' or '.join(DOCKERCONFIG_KEYS)} key", reason="InvalidSecret"
    )


class DockerConfigCache:
    """Docker config credentials for one process, without reading the file or running a
    credential helper on every scan. Thread-safe.

    The parsed file is kept per (path, inode, mtime_ns, size), so an edited, replaced or removed
    file is seen by the next lookup. Answers are kept per (helper, registry) for ``helper_ttl_s``
    when a credential helper serves the registry, for as long as the file is unchanged otherwise. A
    malformed file's error is kept like a parsed file; after a failing helper the file is read and
    the helper asked again next time. Secrets stay in memory only; nothing here logs them.
    """

    def __init__(
        self, *, helper_ttl_s: float = DEFAULT_HELPER_TTL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.helper_ttl_s = helper_ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._version: tuple[str, int, int, int] | None = None
        self._config: docker_auth.AuthConfig | docker_errors.DockerException = docker_auth.AuthConfig({})
        #: (helper or "", registry) → (credentials, monotonic expiry).
        self._answers: dict[tuple[str, str], tuple[Credentials | None, float]] = {}

    def credentials(self, image: ImageName) -> Credentials | None:
        """Credentials for ``image``'s registry, or None. Raises :class:`RegistryError`
        (``invalid``, ``InvalidDockerConfig``) when the file is malformed or a helper fails."""
        config = self._current_config(image)
        helper = config.get_credential_store(image.registry) or ""
        key = (helper, image.registry)
        now = self._clock()
        with self._lock:
            found = self._answers.get(key)
        if found is not None and found[1] > now:
            return found[0]
        try:
            entry = docker_auth.resolve_authconfig(config, image.registry)
        except docker_errors.DockerException as exc:
            with self._lock:
                if config is self._config:  # read the file (and find the helpers) again next time
                    self._version = None
            raise _invalid_docker_config(image, exc) from None
        creds = (
            _entry_credentials({k.lower(): v for k, v in entry.items()}, source="docker config")
            if entry
            else None
        )
        expires = now + self.helper_ttl_s if helper else float("inf")
        with self._lock:
            if config is self._config:  # not replaced by a newer file meanwhile
                self._answers[key] = (creds, expires)
        return creds

    def _current_config(self, image: ImageName) -> docker_auth.AuthConfig:
        version = _docker_config_version()
        with self._lock:
            config = self._config if version == self._version else None
        if config is None:
            try:
                config = docker_auth.load_config(version[0]) if version else docker_auth.AuthConfig({})
            except docker_errors.DockerException as exc:
                config = exc
            with self._lock:
                self._version, self._config = version, config
                self._answers.clear()
        if isinstance(config, docker_errors.DockerException):
            raise _invalid_docker_config(image, config)
        return config


def _docker_config_version() -> tuple[str, int, int, int] | None:
    """(path, inode, mtime_ns, size) of the docker config file docker would read (the first that
    exists of ``$DOCKER_CONFIG/config.json``, ``~/.docker/config.json``, ``~/.dockercfg``), or None.
    The order is :func:`docker.utils.config.find_config_file`'s, with one ``stat`` per candidate."""
    home = os.path.expanduser("~")
    from_env = os.environ.get("DOCKER_CONFIG")
    candidates = (
        os.path.join(from_env, "config.json") if from_env else None,
        os.path.join(home, docker_config_files.DOCKER_CONFIG_FILENAME),
        os.path.join(home, docker_config_files.LEGACY_DOCKER_CONFIG_FILENAME),
    )
    for path in candidates:
        if path is None:
            continue
        try:
            stat = os.stat(path)
        except OSError:
            continue
        return path, stat.st_ino, stat.st_mtime_ns, stat.st_size
    return None


def _invalid_docker_config(image: ImageName, exc: BaseException) -> RegistryError:
    return RegistryError(
        "invalid", f"docker config for {image.registry}: {_first_line(exc)}", reason="InvalidDockerConfig"
    )


#: This process's docker config cache (what :func:`credentials_from_docker_config` reads).
_docker_config = DockerConfigCache()


def credentials_from_docker_config(image: ImageName) -> Credentials | None:
    """Credentials from docker's config files and credential helpers (via :mod:`docker.auth`),
    through this process's :class:`DockerConfigCache`.

    Raises :class:`RegistryError` (``invalid``, ``InvalidDockerConfig``) when a config file is
    malformed or a credential helper fails.
    """
    return _docker_config.credentials(image)


def resolve_credentials(
    obj: Object,
    image: ImageName,
    *,
    secrets_dir: Path,
    docker_config: bool = True,
    cluster: ClusterSecrets | None = None,
) -> Credentials | None:
    """The credentials a scan of ``obj`` presents: secretRef, then the service account's pull
    secrets (with a cluster), then docker config."""
    return (
        credentials_from_secret(obj, image, secrets_dir=secrets_dir, cluster=cluster)
        or credentials_from_kubernetes(obj, image, cluster)
        or (credentials_from_docker_config(image) if docker_config else None)
    )


def tls_from_secret(obj: Object, *, secrets_dir: Path) -> TLSFiles | None:
    """TLS files from ``spec.certSecretRef`` (None without one). A client certificate needs both
    ``tls.crt`` and ``tls.key``; raises ``SecretNotFound`` / ``InvalidSecret`` errors."""
    if not (obj.spec.get("certSecretRef") or {}).get("name"):
        return None
    path, where = _secret_dir(obj, "certSecretRef", secrets_dir)

    def first(keys: tuple[str, ...]) -> Path | None:
        return next((path / k for k in keys if (path / k).is_file()), None)

    files = TLSFiles(first(CA_KEYS), first(CERT_KEYS), first(KEY_KEYS))
    if (files.cert_file is None) != (files.key_file is None):
        raise RegistryError(
            "invalid",
            f"{obj.ref}: spec.certSecretRef: secret {where} needs both tls.crt and tls.key "
            "for a client certificate",
            reason="InvalidSecret",
        )
    if files == TLSFiles():
        raise RegistryError(
            "invalid",
            f"{obj.ref}: spec.certSecretRef: secret {where} has none of ca.crt, tls.crt, tls.key",
            reason="InvalidSecret",
        )
    return files


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
