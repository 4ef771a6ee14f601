"""Registry credentials and TLS material: where they come from, in Flux's order.

1. ``spec.secretRef``: a ``kubernetes.io/dockerconfigjson`` Secret, read from the mounted
   Secret-volume layout ``<secrets_dir>/<namespace>/<name>/.dockerconfigjson`` (``.dockercfg``
   for the legacy type).
2. Kubernetes pull secrets of ``spec.serviceAccountName``: a seam only
   (:func:`credentials_from_kubernetes` returns None until cluster support exists).
3. Docker config files (``$DOCKER_CONFIG/config.json``, ``~/.docker/config.json``), including
   ``credsStore`` / ``credHelpers`` credential helpers, through :mod:`docker.auth`. The path is
   docker's own convention, read by the docker package, not a gitops-tasks setting.

The first source with an entry for the image's registry wins; none means anonymous access.
:class:`Credentials` never shows its secrets in ``repr`` and no message here holds them.
``spec.certSecretRef`` gives :class:`TLSFiles` (``ca.crt``, ``tls.crt``, ``tls.key``).
"""

from __future__ import annotations

import binascii
import fnmatch
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from docker import auth as docker_auth
from docker import errors as docker_errors

from gitops_tasks.objects.model import Object
from gitops_tasks.registry.errors import RegistryError
from gitops_tasks.registry.names import DOCKER_HUB, DOCKER_HUB_ALIASES, ImageName

#: Secret keys holding a docker config, in the order they are tried.
DOCKERCONFIG_KEYS = (".dockerconfigjson", ".dockercfg")
#: certSecretRef keys (Flux's current names, then the deprecated ones).
CA_KEYS = ("ca.crt", "caFile")
CERT_KEYS = ("tls.crt", "certFile")
KEY_KEYS = ("tls.key", "keyFile")


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

    @property
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


def credentials_from_docker_config(image: ImageName) -> Credentials | None:
    """Credentials from docker's config files and credential helpers (via :mod:`docker.auth`).

    Raises :class:`RegistryError` (``invalid``, ``InvalidDockerConfig``) when a config file is
    malformed or a credential helper fails.
    """
    try:
        config = docker_auth.load_config()
        found = docker_auth.resolve_authconfig(config, image.registry)
    except docker_errors.DockerException as exc:
        raise RegistryError(
            "invalid", f"docker config for {image.registry}: {_first_line(exc)}", reason="InvalidDockerConfig"
        ) from None
    if not found:
        return None
    entry = {k.lower(): v for k, v in found.items()}
    return _entry_credentials(entry, source="docker config")


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
