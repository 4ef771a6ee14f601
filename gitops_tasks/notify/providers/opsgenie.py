"""``opsgenie``: the Alert API (``address``, normally ``https://api.opsgenie.com/v2/alerts``) with
the API key from ``token`` (``Authorization: GenieKey <key>``).

The alias (Opsgenie's dedupe key) is a SHA-256 of the Provider, the object and the reason, so
repeats of one failure update one alert."""

from __future__ import annotations

import hashlib

from gitops_tasks.notify.message import Event, ProviderConfig, Request
from gitops_tasks.notify.providers.formatting import ADDRESS, TOKEN, metadata, post_json, required


def alias(provider: ProviderConfig, event: Event) -> str:
    key = "/".join(
        (
            f"{provider.provider_namespace}/{provider.provider_name}",
            event.kind,
            event.namespace,
            event.name,
            event.reason,
        )
    )
    return hashlib.sha256(key.encode()).hexdigest()


def build(provider: ProviderConfig, event: Event) -> list[Request]:
    url = required(provider.address, provider, ADDRESS)
    key = required(provider.token, provider, TOKEN)
    payload = {
        "message": f"{event.kind}/{event.name}",
        "alias": alias(provider, event),
        "description": event.message,
        "details": {**metadata(event), "severity": event.severity},
    }
    return [post_json(url, payload, {"Authorization": f"GenieKey {key}"})]
