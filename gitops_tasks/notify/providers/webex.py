"""``webex``: the Messages API (``address``, normally ``https://webexapis.com/v1/messages``)
with a bot ``token`` (Bearer) and the room id in ``channel``; the text is Markdown."""

from __future__ import annotations

from gitops_tasks.notify.message import Event, ProviderConfig, Request
from gitops_tasks.notify.providers.formatting import (
    ADDRESS,
    CHANNEL,
    TOKEN,
    object_id,
    post_json,
    required,
    sorted_metadata,
)


def markdown(event: Event) -> str:
    emoji = "💣" if event.severity == "error" else "✅"
    lines = [f"{emoji} **{object_id(event)}**", event.message]
    lines += [f">**{k}**: {v}" for k, v in sorted_metadata(event)]
    return "\n".join(lines) + "\n"


def build(provider: ProviderConfig, event: Event) -> list[Request]:
    url = required(provider.address, provider, ADDRESS)
    room = required(provider.channel, provider, CHANNEL)
    token = required(provider.token, provider, TOKEN)
    payload = {"roomId": room, "markdown": markdown(event)}
    return [post_json(url, payload, {"Authorization": f"Bearer {token}"})]
