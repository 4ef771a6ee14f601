"""``matrix``: the client-server API's ``PUT /_matrix/client/r0/rooms/<room>/send/m.room.message/<txn>``
on the homeserver ``address`` with an access ``token`` (Bearer) and the room id in ``channel``.

The transaction id is the SHA-1 of the event's JSON, so a retried send of the same event is
deduplicated by the homeserver."""

from __future__ import annotations

import hashlib
from urllib.parse import quote

from gitops_tasks.notify.message import Event, ProviderConfig, Request
from gitops_tasks.notify.providers import generic
from gitops_tasks.notify.providers.formatting import (
    ADDRESS,
    CHANNEL,
    TOKEN,
    json_bytes,
    object_id,
    post_json,
    required,
    sorted_metadata,
)


def body(event: Event) -> str:
    emoji = "🚨" if event.severity == "error" else "💫"
    fields = "".join(f"- {k}: {v}\n" for k, v in sorted_metadata(event))
    return f"{emoji} {object_id(event)}\n{event.message}\n{fields}"


def build(provider: ProviderConfig, event: Event) -> list[Request]:
    server = required(provider.address, provider, ADDRESS).rstrip("/")
    room = quote(required(provider.channel, provider, CHANNEL), safe="")
    token = required(provider.token, provider, TOKEN)
    txn = hashlib.sha1(json_bytes(generic.payload(event)), usedforsecurity=False).hexdigest()
    url = f"{server}/_matrix/client/r0/rooms/{room}/send/m.room.message/{txn}"
    payload = {"body": body(event), "msgtype": "m.text"}
    return [post_json(url, payload, {"Authorization": f"Bearer {token}"}, method="PUT")]
