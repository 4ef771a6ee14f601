"""``pagerduty``: Events API v2 on the host of ``address`` (normally
``https://events.pagerduty.com``), the integration's routing key in ``channel``.

An error triggers an incident keyed by the object; an info event resolves it and also records a
change event (two requests). ``Progressing`` events are not sent, as in Flux."""

from __future__ import annotations

from urllib.parse import urlsplit

from gitops_tasks.notify.message import Event, NotSendable, ProviderConfig, Request
from gitops_tasks.notify.providers.formatting import (
    ADDRESS,
    CHANNEL,
    PROGRESSING_REASON,
    metadata,
    name_and_description,
    post_json,
    required,
    rfc3339,
)


def dedup_key(event: Event) -> str:
    """One incident per object: ``Kind/namespace/name``."""
    return f"{event.kind}/{event.namespace}/{event.name}"


def alert_event(event: Event, routing_key: str) -> dict[str, object]:
    out: dict[str, object] = {
        "routing_key": routing_key,
        "event_action": "resolve",
        "dedup_key": dedup_key(event),
    }
    if event.severity == "error":
        name, desc = name_and_description(event)
        out["event_action"] = "trigger"
        out["payload"] = {
            "summary": f"{desc}: {name}",
            "source": f"Flux {event.controller}",
            "severity": "error",
            "timestamp": rfc3339(event.time),
            "component": event.name,
            "group": event.kind,
            "custom_details": {"message": event.message, "metadata": metadata(event)},
        }
    return out


def change_event(event: Event, routing_key: str) -> dict[str, object]:
    name, desc = name_and_description(event)
    return {
        "routing_key": routing_key,
        "payload": {
            "summary": f"{desc}: {name}",
            "source": f"Flux {event.controller}",
            "timestamp": rfc3339(event.time),
            "custom_details": {"message": event.message, "metadata": metadata(event)},
        },
    }


def build(provider: ProviderConfig, event: Event) -> list[Request]:
    if event.reason == PROGRESSING_REASON:
        raise NotSendable("PagerDuty gets no Progressing events")
    parts = urlsplit(required(provider.address, provider, ADDRESS))
    root = f"{parts.scheme}://{parts.netloc}"
    key = required(provider.channel, provider, f"the routing key in {CHANNEL}")
    requests = [post_json(f"{root}/v2/enqueue", alert_event(event, key))]
    if event.severity != "error":
        requests.append(post_json(f"{root}/v2/change/enqueue", change_event(event, key)))
    return requests
