"""``slack``: an incoming webhook (``address`` is the webhook URL, a secret), or the Web API's
``chat.postMessage`` with a bot ``token`` (Bearer) and ``channel``.

The payload is Flux's: one attachment, green (``good``) or red (``danger``), authored by
``kind/name.namespace``, the metadata as fields. ``discord`` and ``rocket`` reuse it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from gitops_tasks.notify.message import Event, ProviderConfig, Request
from gitops_tasks.notify.providers.formatting import (
    ADDRESS,
    CHANNEL,
    object_id,
    post_json,
    required,
    sorted_metadata,
)

#: The Web API method a token posts to when no address is given.
POST_MESSAGE_URL = "https://slack.com/api/chat.postMessage"


def attachment(event: Event, *, color: str, fallback: bool) -> dict[str, object]:
    """Flux's Slack attachment; ``fallback`` adds the one-line plain-text summary."""
    author = object_id(event)
    fields = [{"title": k, "value": v, "short": False} for k, v in sorted_metadata(event)]
    out: dict[str, object] = {}
    if fallback:
        out["fallback"] = f"{author}: {event.message.split(chr(10))[0]}"
    out.update(
        {
            "color": color,
            "author_name": author,
            "text": event.message,
            "mrkdwn_in": ["text"],
            "fields": fields,
        }
    )
    return out


def message(event: Event, *, channel: str, username: str, color: str, fallback: bool) -> dict[str, object]:
    """The whole Slack-compatible message (Flux always sends the icon fields, empty)."""
    return {
        "channel": channel,
        "username": username,
        "icon_url": "",
        "icon_emoji": "",
        "attachments": [attachment(event, color=color, fallback=fallback)],
    }


def build(provider: ProviderConfig, event: Event) -> list[Request]:
    url = provider.address or (POST_MESSAGE_URL if provider.token else "")
    url = required(url, provider, ADDRESS)
    color = "danger" if event.severity == "error" else "good"
    payload = message(
        event,
        channel=provider.channel,
        username=provider.username or event.controller,
        color=color,
        fallback=True,
    )
    headers = {"Authorization": f"Bearer {provider.token}"} if provider.token else {}
    web_api = urlsplit(url).path.endswith("/api/chat.postMessage")
    if web_api:
        required(provider.channel, provider, f"{CHANNEL} with chat.postMessage")
    return [post_json(url, payload, headers, json_ok_field="ok" if web_api else "")]
