"""``alertmanager``: one firing alert POSTed to ``address`` (``https://<host>/api/v2/alerts``),
with a Bearer ``token`` or basic auth (``username``/``password``).

Labels are the metadata plus ``alertname`` (``Flux<Kind><Reason>``), ``severity``, ``reason``,
``kind``, ``name``, ``namespace`` and ``reportingcontroller``; the message and ``summary`` are
annotations."""

from __future__ import annotations

from gitops_tasks.notify.message import Event, ProviderConfig, Request
from gitops_tasks.notify.providers.formatting import (
    ADDRESS,
    basic_auth,
    metadata,
    post_json,
    required,
    rfc3339,
)


def alert(event: Event) -> dict[str, object]:
    labels = metadata(event)
    annotations = {"message": event.message}
    if "summary" in labels:
        annotations["summary"] = labels.pop("summary")
    labels.update(
        {
            "alertname": f"Flux{event.kind}{event.reason.title()}",
            "severity": event.severity,
            "reason": event.reason,
            "kind": event.kind,
            "name": event.name,
            "namespace": event.namespace,
            "reportingcontroller": event.controller,
        }
    )
    return {
        "status": "firing",
        "labels": labels,
        "annotations": annotations,
        "startsAt": rfc3339(event.time),
    }


def build(provider: ProviderConfig, event: Event) -> list[Request]:
    url = required(provider.address, provider, ADDRESS)
    headers = {}
    if provider.username and provider.password:
        headers["Authorization"] = basic_auth(provider.username, provider.password)
    elif provider.token:
        headers["Authorization"] = f"Bearer {provider.token}"
    return [post_json(url, [alert(event)], headers)]
