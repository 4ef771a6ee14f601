"""A Provider's spec with its secrets, read at send time (never stored, logged or queued).

Secrets are read as every other ``secretRef`` is: from a directory laid out like a mounted Secret
volume, ``<secrets_dir>/<namespace>/<name>/<key>``. Keys as notification-controller reads them:
``spec.secretRef`` gives ``address`` (replaces ``spec.address``), ``token``, ``username`` and
``password``, ``headers`` (a YAML mapping) and the deprecated ``proxy``; ``spec.certSecretRef``
gives ``ca.crt``; ``spec.proxySecretRef`` gives ``address`` and optionally ``username`` and
``password``. Reads files; no other I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import yaml

from gitops_tasks.boundedyaml import safe_load
from gitops_tasks.notify.message import ProviderConfig
from gitops_tasks.objects.durations import parse_duration
from gitops_tasks.objects.model import Object

#: Flux's default ``spec.timeout`` of a Provider (seconds).
DEFAULT_TIMEOUT_S = 15.0
#: Flux's limit on an address read from a secret (bytes).
MAX_ADDRESS_BYTES = 2048


@dataclass
class ConfigError(Exception):
    """The Provider cannot be used as it is: ``reason`` is CamelCase (``SecretNotFound``,
    ``InvalidSecret``); ``message`` names the Provider, the field and the secret, never a value."""

    reason: str
    message: str

    def __str__(self) -> str:
        return self.message


def read_secret(secrets_dir: Path, namespace: str, name: str, field: str) -> dict[str, str]:
    """Every key of Secret ``namespace/name`` (named by ``field``). Raises :class:`ConfigError`
    ``SecretNotFound`` when its directory is absent."""
    directory = Path(secrets_dir) / namespace / name
    if not directory.is_dir():
        raise ConfigError("SecretNotFound", f"Secret {namespace}/{name} ({field}) not found")
    return {
        p.name: p.read_text(encoding="utf-8", errors="replace")
        for p in sorted(directory.iterdir())
        if not p.name.startswith(".") and p.is_file()
    }


def _secret_name(provider: Object, field: str) -> str | None:
    ref = provider.spec.get(field)
    return str(ref["name"]) if isinstance(ref, dict) and ref.get("name") else None


def secret_refs(provider: Object) -> list[tuple[str, str]]:
    """``(field, secret name)`` for each secret the Provider names."""
    fields = ("secretRef", "certSecretRef", "proxySecretRef")
    return [(f"spec.{f}", name) for f in fields if (name := _secret_name(provider, f)) is not None]


def _headers(text: str, where: str) -> dict[str, str]:
    try:
        data = safe_load(text) or {}
    except yaml.YAMLError:
        data = None
    if not isinstance(data, dict):
        raise ConfigError("InvalidSecret", f"{where}: key 'headers' is not a YAML mapping of strings")
    return {str(k): str(v) for k, v in data.items()}


def _proxy_url(secret: dict[str, str], where: str) -> str:
    address = secret.get("address", "").strip()
    if not address:
        raise ConfigError("InvalidSecret", f"{where}: key 'address' missing")
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https", "socks5") or not parts.hostname:
        raise ConfigError("InvalidSecret", f"{where}: key 'address' is not a proxy URL")
    user, password = secret.get("username", "").strip(), secret.get("password", "").strip()
    if user or password:
        netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.netloc.rsplit('@', 1)[-1]}"
        return urlunsplit(parts._replace(netloc=netloc))
    return address


def provider_config(provider: Object, *, secrets_dir: Path) -> ProviderConfig:
    """The Provider as its type builds requests. Raises :class:`ConfigError`."""
    spec = provider.spec
    ns = provider.namespace
    values: dict[str, str] = {
        "address": str(spec.get("address") or ""),
        "channel": str(spec.get("channel") or ""),
        "username": str(spec.get("username") or ""),
        "proxy": str(spec.get("proxy") or ""),
    }
    headers: dict[str, str] = {}
    ca_pem = ""
    name = _secret_name(provider, "secretRef")
    if name is not None:
        where = f"Provider {ns}/{provider.name} spec.secretRef (Secret {ns}/{name})"
        secret = read_secret(secrets_dir, ns, name, "spec.secretRef")
        if "address" in secret:
            if len(secret["address"].encode()) > MAX_ADDRESS_BYTES:
                too_long = f"{where}: key 'address' exceeds {MAX_ADDRESS_BYTES} bytes"
                raise ConfigError("InvalidSecret", too_long)
            values["address"] = secret["address"].strip()
        for key in ("token", "username", "password", "proxy"):
            if key in secret:
                values[key] = secret[key].strip()
        if "headers" in secret:
            headers = _headers(secret["headers"], where)
    name = _secret_name(provider, "certSecretRef")
    if name is not None:
        secret = read_secret(secrets_dir, ns, name, "spec.certSecretRef")
        ca_pem = secret.get("ca.crt", "")
        if not ca_pem.strip():
            where = f"Provider {ns}/{provider.name} spec.certSecretRef (Secret {ns}/{name})"
            raise ConfigError("InvalidSecret", f"{where}: key 'ca.crt' missing")
    name = _secret_name(provider, "proxySecretRef")
    if name is not None:
        where = f"Provider {ns}/{provider.name} spec.proxySecretRef (Secret {ns}/{name})"
        values["proxy"] = _proxy_url(read_secret(secrets_dir, ns, name, "spec.proxySecretRef"), where)
    timeout = spec.get("timeout")
    return ProviderConfig(
        type=str(spec.get("type", "")),
        address=values["address"],
        channel=values["channel"],
        username=values.get("username", ""),
        token=values.get("token", ""),
        password=values.get("password", ""),
        headers=headers,
        proxy=values["proxy"],
        timeout_s=parse_duration(timeout) if timeout else DEFAULT_TIMEOUT_S,
        ca_pem=ca_pem,
        provider_name=provider.name,
        provider_namespace=ns,
    )


def secret_values(config: ProviderConfig) -> list[str]:
    """Every value of ``config`` that must never appear in text (the address may hold a token in
    its path, as Slack's and Discord's webhook URLs do)."""
    values = [config.token, config.password, config.address, config.proxy, *config.headers.values()]
    parts = urlsplit(config.address) if config.address else None
    if parts is not None and parts.path not in ("", "/"):
        values.append(parts.path)
        values.extend(seg for seg in parts.path.split("/") if len(seg) >= 8)
    if parts is not None and parts.query:
        values.append(parts.query)
    return [v for v in values if v]
