"""``telegram``: the Bot API's ``sendMessage`` with the bot ``token`` in the URL path and
``channel`` as the chat id (``@channel`` or a number; ``<chat>:<thread>`` posts into a forum
topic); MarkdownV2 text. ``address`` is the API root (default ``https://api.telegram.org``)."""

from __future__ import annotations

from gitops_tasks.notify.message import Event, ProviderConfig, Request
from gitops_tasks.notify.providers.formatting import (
    CHANNEL,
    TOKEN,
    object_id,
    post_json,
    required,
    sorted_metadata,
)

#: The Bot API root when ``address`` is empty.
DEFAULT_API = "https://api.telegram.org"
#: Characters MarkdownV2 needs escaped outside entities (Telegram's list).
_SPECIAL = set("\\_*[]()~`>#+-=|{}.!")


def escape(text: str) -> str:
    """MarkdownV2-escape ``text``: a backslash before each special character."""
    return "".join("\\" + ch if ch in _SPECIAL else ch for ch in text)


def text(event: Event) -> str:
    emoji = "🚨" if event.severity == "error" else "💫"
    heading = f"{emoji} {object_id(event, '/')}"
    fields = "".join(f"\\- *{escape(k)}*: {escape(v)}\n" for k, v in sorted_metadata(event))
    return f"*{escape(heading)}*\n{escape(event.message)}\n{fields}"


def build(provider: ProviderConfig, event: Event) -> list[Request]:
    token = required(provider.token, provider, TOKEN)
    chat, sep, thread = required(provider.channel, provider, CHANNEL).partition(":")
    payload = {"chat_id": chat, "text": text(event), "parse_mode": "MarkdownV2"}
    if sep:
        payload["message_thread_id"] = thread
    root = (provider.address or DEFAULT_API).rstrip("/")
    return [post_json(f"{root}/bot{token}/sendMessage", payload)]
