"""``generic``: Flux's event JSON, POSTed to ``address`` with ``Gotk-Component``."""

from __future__ import annotations

import datetime
import json

from gitops_tasks.notify.message import Event, ProviderConfig, Request


def payload(event: Event) -> dict[str, object]:
    """Flux's ``eventv1.Event`` JSON for ``event``."""
    stamp = datetime.datetime.fromtimestamp(event.time, tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    metadata = dict(event.metadata)
    if event.revision:
        metadata.setdefault("revision", event.revision)
    return {
        "involvedObject": {
            "kind": event.kind,
            "namespace": event.namespace,
            "name": event.name,
            "apiVersion": event.api_version,
        },
        "severity": event.severity,
        "timestamp": stamp,
        "message": event.message,
        "reason": event.reason,
        "metadata": metadata,
        "reportingController": event.controller,
        "reportingInstance": event.controller,
    }


def build(provider: ProviderConfig, event: Event) -> list[Request]:
    headers = {"Content-Type": "application/json", "Gotk-Component": event.controller, **provider.headers}
    body = json.dumps(payload(event), separators=(",", ":")).encode()
    return [Request("POST", provider.address, headers, body)]
