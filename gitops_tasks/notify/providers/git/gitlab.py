"""``gitlab``: a commit status (``POST /api/v4/projects/<path>/statuses/<sha>``) with the
secret's token as ``PRIVATE-TOKEN``; the project path may have subgroups."""

from __future__ import annotations

from urllib.parse import quote

from gitops_tasks.notify.message import Event, ProviderConfig, Request
from gitops_tasks.notify.providers.formatting import name_and_description, post_json
from gitops_tasks.notify.providers.git import (
    event_sha,
    parse_address,
    skip_progressing,
    state,
    status_key,
    token,
)


def build(provider: ProviderConfig, event: Event) -> list[Request]:
    skip_progressing(event)
    sha = event_sha(event)
    host, project = parse_address(provider)
    _, description = name_and_description(event)
    payload = {
        "state": state(event, info="success", error="failed"),
        "name": status_key(provider, event),
        "description": description,
    }
    url = f"{host}/api/v4/projects/{quote(project, safe='')}/statuses/{sha}"
    return [post_json(url, payload, {"PRIVATE-TOKEN": token(provider)})]
