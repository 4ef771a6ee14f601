"""``grafana``: an annotation via the HTTP API (``address`` is
``https://<grafana>/api/annotations``) with a service-account ``token`` (Bearer) or basic auth.

The text is ``kind/name.namespace``; tags are ``flux``, the controller, ``key: value`` for each
metadata entry (``:`` inside keys and values becomes ``|``) and the object's kind, name and
namespace."""

from __future__ import annotations

from gitops_tasks.notify.message import Event, ProviderConfig, Request
from gitops_tasks.notify.providers.formatting import (
    ADDRESS,
    basic_auth,
    object_id,
    post_json,
    required,
    sorted_metadata,
)


def annotation(event: Event) -> dict[str, object]:
    def tag(key: str, value: str) -> str:
        return f"{key.replace(':', '|')}: {value.replace(':', '|')}"

    tags = ["flux", event.controller] + [tag(k, v) for k, v in sorted_metadata(event)]
    tags += [f"kind: {event.kind}", f"name: {event.name}", f"namespace: {event.namespace}"]
    # ``when`` (seconds) is Flux's field, read by the Graphite-style endpoint; ``time`` (ms) places
    # the annotation at the event, not at the send, when delivery was delayed by an outage.
    return {"when": int(event.time), "time": int(event.time * 1000), "text": object_id(event), "tags": tags}


def build(provider: ProviderConfig, event: Event) -> list[Request]:
    url = required(provider.address, provider, ADDRESS)
    headers = {}
    if provider.token:
        headers["Authorization"] = f"Bearer {provider.token}"
    elif provider.username and provider.password:
        headers["Authorization"] = basic_auth(provider.username, provider.password)
    return [post_json(url, annotation(event), headers)]
