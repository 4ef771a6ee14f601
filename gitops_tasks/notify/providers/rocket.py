"""``rocket``: a Rocket.Chat incoming webhook (``address``) with Slack's payload in Rocket's
colours; ``channel`` and ``username`` as given."""

from __future__ import annotations

from gitops_tasks.notify.message import Event, ProviderConfig, Request
from gitops_tasks.notify.providers import slack
from gitops_tasks.notify.providers.formatting import ADDRESS, post_json, required


def build(provider: ProviderConfig, event: Event) -> list[Request]:
    url = required(provider.address, provider, ADDRESS)
    payload = slack.message(
        event,
        channel=provider.channel,
        username=provider.username,
        color="#FF0000" if event.severity == "error" else "#0076D7",
        fallback=False,
    )
    return [post_json(url, payload)]
