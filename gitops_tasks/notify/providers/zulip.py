"""``zulip``: ``POST /api/v1/messages`` on the server in ``address`` (its path is replaced), a
stream message to ``channel`` given as ``<stream>/<topic>``, form-encoded, with the bot's email
and API key as basic auth (``username``/``password``)."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

from gitops_tasks.notify.message import Event, InvalidProvider, ProviderConfig, Request
from gitops_tasks.notify.providers.formatting import (
    ADDRESS,
    basic_auth,
    required,
    sorted_metadata,
)


def content(event: Event) -> str:
    """Flux's Markdown status post."""
    emoji = "⚠️" if event.severity == "error" else "ℹ️"
    fields = "".join(f"* `{k}`: {v}\n" for k, v in sorted_metadata(event))
    object_ref = f"{event.kind}/{event.namespace}/{event.name}"
    return f"## Flux Status\n\n{emoji} {object_ref}\n\n{event.message}\n\nMetadata:\n{fields}"


def build(provider: ProviderConfig, event: Event) -> list[Request]:
    parts = urlsplit(required(provider.address, provider, ADDRESS))
    stream, _, topic = provider.channel.partition("/")
    if not stream or not topic:
        raise InvalidProvider("Provider type zulip needs spec.channel as <stream>/<topic>")
    url = urlunsplit((parts.scheme, parts.netloc, "/api/v1/messages", "", ""))
    form = {"type": "stream", "to": stream, "topic": topic, "content": content(event)}
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if provider.username or provider.password:
        headers["Authorization"] = basic_auth(provider.username, provider.password)
    return [Request("POST", url, headers, urlencode(form).encode())]
