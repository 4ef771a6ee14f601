"""``discord``: the channel webhook's Slack-compatible endpoint (``/slack`` appended to
``address`` unless present), with Slack's payload."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from gitops_tasks.notify.message import Event, ProviderConfig, Request
from gitops_tasks.notify.providers import slack
from gitops_tasks.notify.providers.formatting import ADDRESS, post_json, required


def slack_url(address: str) -> str:
    """``https://discord.com/api/webhooks/1/x`` → ``.../1/x/slack`` (query kept)."""
    if address.endswith("/slack"):
        return address
    parts = urlsplit(address)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/slack"))


def build(provider: ProviderConfig, event: Event) -> list[Request]:
    url = slack_url(required(provider.address, provider, ADDRESS))
    payload = slack.message(
        event,
        channel="",
        username=provider.username or event.controller,
        color="danger" if event.severity == "error" else "good",
        fallback=False,
    )
    return [post_json(url, payload)]
