"""``lark``: a Lark (Feishu) custom bot webhook (``address``, a secret) gets an interactive card,
turquoise or red, with the message and the metadata."""

from __future__ import annotations

from gitops_tasks.notify.message import Event, ProviderConfig, Request
from gitops_tasks.notify.providers.formatting import (
    ADDRESS,
    object_id,
    post_json,
    required,
    sorted_metadata,
)


def card(event: Event) -> dict[str, object]:
    error = event.severity == "error"
    content = f"**{event.message}**\n\n" + "".join(f"{k}: {v}\n" for k, v in sorted_metadata(event))
    title = f"{'🚨' if error else '💫'} {object_id(event)}"
    return {
        "config": {"wide_screen_mode": True},
        "header": {
            "title": {"tag": "plain_text", "content": title},
            "template": "red" if error else "turquoise",
        },
        "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": content}}],
    }


def build(provider: ProviderConfig, event: Event) -> list[Request]:
    url = required(provider.address, provider, ADDRESS)
    return [post_json(url, {"msg_type": "interactive", "card": card(event)})]
