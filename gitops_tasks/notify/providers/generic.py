"""``generic``: Flux's event JSON, POSTed to ``address`` with ``Gotk-Component``."""

from __future__ import annotations

from gitops_tasks.notify.message import Event, ProviderConfig, Request
from gitops_tasks.notify.providers.formatting import ADDRESS, metadata, post_json, required, rfc3339


def payload(event: Event) -> dict[str, object]:
    """Flux's ``eventv1.Event`` JSON for ``event``."""
    return {
        "involvedObject": {
            "kind": event.kind,
            "namespace": event.namespace,
            "name": event.name,
            "apiVersion": event.api_version,
        },
        "severity": event.severity,
        "timestamp": rfc3339(event.time),
        "message": event.message,
        "reason": event.reason,
        "metadata": metadata(event),
        "reportingController": event.controller,
        "reportingInstance": event.controller,
    }


def build(provider: ProviderConfig, event: Event) -> list[Request]:
    url = required(provider.address, provider, ADDRESS)
    return [post_json(url, payload(event), {"Gotk-Component": event.controller, **provider.headers})]
