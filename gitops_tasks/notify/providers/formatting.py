"""Text and request helpers the provider types share (pure)."""

from __future__ import annotations

import base64
import datetime
import json

from gitops_tasks.notify.message import Event, InvalidProvider, ProviderConfig, Request

#: Flux's reason for "a reconciliation is under way"; commit statuses and PagerDuty skip it.
PROGRESSING_REASON = "Progressing"


def metadata(event: Event) -> dict[str, str]:
    """The event's metadata as Flux's notifiers see it: the Alert's ``eventMetadata``/``summary``
    and the object's ``revision``."""
    fields = dict(event.metadata)
    if event.revision:
        fields.setdefault("revision", event.revision)
    return fields


def sorted_metadata(event: Event) -> list[tuple[str, str]]:
    """:func:`metadata` in key order (Flux iterates a Go map: its order is random)."""
    return sorted(metadata(event).items())


def object_id(event: Event, sep: str = ".") -> str:
    """``kustomization/apps.flux-system`` (Flux's chat heading; Telegram uses ``/`` for ``.``)."""
    return f"{event.kind.lower()}/{event.name}{sep}{event.namespace}"


def rfc3339(unix_s: float) -> str:
    """``2026-01-02T03:04:05Z`` (seconds, UTC)."""
    return datetime.datetime.fromtimestamp(unix_s, tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def split_camelcase(text: str) -> list[str]:
    """``HealthCheckFailed`` → ``["Health", "Check", "Failed"]``; ``ABCDef`` → ``["ABC", "Def"]``
    (runs of one character class; an upper-case run gives its last letter to a lower-case run
    that follows)."""

    def klass(ch: str) -> int:
        return 1 if ch.islower() else 2 if ch.isupper() else 3 if ch.isdigit() else 4

    runs: list[str] = []
    last = 0
    for ch in text:
        k = klass(ch)
        if runs and k == last:
            runs[-1] += ch
        else:
            runs.append(ch)
        last = k
    for i in range(len(runs) - 1):
        if runs[i][0].isupper() and runs[i + 1][0].islower():
            runs[i], runs[i + 1] = runs[i][:-1], runs[i][-1] + runs[i + 1]
    return [r for r in runs if r]


def name_and_description(event: Event) -> tuple[str, str]:
    """``("kustomization/apps", "reconciliation succeeded")``: Flux's commit-status name and
    description."""
    name = f"{event.kind}/{event.name}".lower()
    return name, " ".join(split_camelcase(event.reason)).lower()


def basic_auth(username: str, password: str) -> str:
    """The ``Authorization`` header value for HTTP basic authentication."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def json_bytes(payload: object) -> bytes:
    """Compact UTF-8 JSON (non-ASCII kept as is, as Go's encoder does)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def post_json(
    url: str,
    payload: object,
    headers: dict[str, str] | None = None,
    *,
    method: str = "POST",
    json_ok_field: str = "",
) -> Request:
    """One JSON request; ``headers`` come after ``Content-Type`` and may override it."""
    return Request(
        method,
        url,
        {"Content-Type": "application/json", **(headers or {})},
        json_bytes(payload),
        json_ok_field,
    )


def required(value: str, provider: ProviderConfig, where: str) -> str:
    """``value``, or :class:`InvalidProvider` when it is empty (``where`` says where a user sets
    it, e.g. :data:`ADDRESS`; the message never holds a value)."""
    if not value:
        raise InvalidProvider(f"Provider type {provider.type} needs {where}")
    return value


#: Where a user sets each ProviderConfig field (for :func:`required`'s message).
ADDRESS = "an address (spec.address or the secret's address key)"
TOKEN = "a token (the secret's token key)"  # noqa: S105 - where to set it, not a token
CHANNEL = "spec.channel"
