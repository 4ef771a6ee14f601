"""``msteams``: a Teams Workflows webhook (Power Automate "post to a channel when a webhook
request is received") gets an Adaptive Card 1.4 message; a legacy Office 365 connector
(``*.webhook.office.com``) gets the old ``MessageCard``, as Flux chooses by host."""

from __future__ import annotations

from urllib.parse import urlsplit

from gitops_tasks.notify.message import Event, ProviderConfig, Request
from gitops_tasks.notify.providers.formatting import (
    ADDRESS,
    metadata,
    object_id,
    post_json,
    required,
    sorted_metadata,
)

#: The Adaptive Card schema version Flux sends.
ADAPTIVE_CARD_VERSION = "1.4"


def is_legacy_connector(address: str) -> bool:
    """True for the retired Office 365 connector hosts (``*.webhook.office.com``)."""
    return (urlsplit(address).hostname or "").endswith(".webhook.office.com")


def message_card(event: Event) -> dict[str, object]:
    """The legacy connector's ``MessageCard``."""
    name = object_id(event)
    return {
        "@type": "MessageCard",
        "@context": "http://schema.org/extensions",
        "themeColor": "FF0000" if event.severity == "error" else "0076D7",
        "summary": name,
        "sections": [
            {
                "activityTitle": event.message,
                "activitySubtitle": name,
                "facts": [{"name": k, "value": v} for k, v in sorted_metadata(event)],
            }
        ],
    }


def adaptive_card(event: Event) -> dict[str, object]:
    """The Workflows message: one Adaptive Card with a heading, the message (red on error) and
    the metadata as facts, ``summary`` first."""
    text: dict[str, object] = {"type": "TextBlock", "text": event.message, "wrap": True}
    if event.severity == "error":
        text["color"] = "attention"
    fields = metadata(event)
    facts = [{"title": "summary", "value": fields["summary"]}] if "summary" in fields else []
    facts += [{"title": k, "value": v} for k, v in sorted(fields.items()) if k != "summary"]
    heading = {
        "type": "TextBlock",
        "text": object_id(event),
        "size": "large",
        "weight": "bolder",
        "wrap": True,
    }
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": ADAPTIVE_CARD_VERSION,
        "body": [{"type": "Container", "items": [heading, text, {"type": "FactSet", "facts": facts}]}],
        "msteams": {"width": "Full"},
    }
    return {
        "type": "message",
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}],
    }


def build(provider: ProviderConfig, event: Event) -> list[Request]:
    url = required(provider.address, provider, ADDRESS)
    payload = message_card(event) if is_legacy_connector(url) else adaptive_card(event)
    return [post_json(url, payload)]
