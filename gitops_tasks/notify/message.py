"""The interface between delivery and the provider types (pure data, JSON-friendly)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Event:
    """One event an Alert matched, as a provider formats it (Flux's event fields)."""

    #: The object the event is about (``involvedObject``).
    kind: str
    namespace: str
    name: str
    #: ``info`` or ``error``.
    severity: str
    reason: str
    message: str
    #: The source revision, e.g. ``main@sha1:<40 hex>``, a tag, or "" when none.
    revision: str = ""
    #: apiVersion of the object (``kustomize.toolkit.fluxcd.io/v1``...).
    api_version: str = ""
    #: Unix time the event was emitted.
    time: float = 0.0
    #: The Alert's ``eventMetadata`` and ``summary`` (Flux sends ``summary`` as metadata too).
    metadata: dict[str, str] = field(default_factory=dict)
    #: Reporting component, as Flux's ``reportingController`` (``kustomize-controller``...).
    controller: str = ""


@dataclass(frozen=True)
class ProviderConfig:
    """A Provider's spec with its secrets resolved (never logged; never a task argument).

    Fields that may hold a secret (webhook URLs carry tokens) are left out of ``repr``, so a
    traceback or a log line showing the object shows none of them."""

    type: str
    address: str = field(default="", repr=False)
    channel: str = ""
    username: str = ""
    token: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    #: Extra headers (the secret's ``headers`` key, YAML mapping).
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    proxy: str = field(default="", repr=False)
    timeout_s: float = 15.0
    #: PEM of the CA (``certSecretRef``'s ``ca.crt``), "" for the system store.
    ca_pem: str = ""
    #: The Provider's own ``namespace/name`` (commit-status keys name it).
    provider_name: str = ""
    provider_namespace: str = ""


@dataclass(frozen=True)
class Request:
    """One HTTP request a provider type wants sent. Its URL (Telegram's has the bot token, webhook
    URLs are credentials), headers and body are left out of ``repr``: log the method and host."""

    method: str
    url: str = field(repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    body: bytes = field(default=b"", repr=False)
    #: When set, a 2xx answer is a success only if its JSON body has this field ``true``: Slack's
    #: Web API (``chat.postMessage``) answers errors with 200 and ``{"ok": false, "error": ...}``.
    json_ok_field: str = ""


class NotSendable(ValueError):
    """The event cannot be sent by this provider (e.g. a commit status without a revision).

    Delivery ends the record quietly at DEBUG (Flux skips such events too)."""


class InvalidProvider(ValueError):
    """The Provider's spec or secret cannot produce a request (a missing token, channel or
    address, an address that names no repository). The message names the field and never
    contains a secret's value; retrying cannot help, so delivery ends the record with
    ``NotificationDispatchFailed``."""
