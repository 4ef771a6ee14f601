"""``gitea``: a commit status (``POST /api/v1/repos/<owner>/<repo>/statuses/<sha>``) with
``Authorization: token <token>``; also Forgejo. ``Progressing`` events set ``pending``."""

from __future__ import annotations

from urllib.parse import quote

from gitops_tasks.notify.message import Event, ProviderConfig, Request
from gitops_tasks.notify.providers.formatting import (
    PROGRESSING_REASON,
    name_and_description,
    post_json,
)
from gitops_tasks.notify.providers.git import (
    event_sha,
    owner_and_repo,
    parse_address,
    state,
    status_key,
    token,
)


def build(provider: ProviderConfig, event: Event) -> list[Request]:
    sha = event_sha(event)
    host, repo = parse_address(provider)
    owner, name = owner_and_repo(provider, repo)
    _, description = name_and_description(event)
    status = state(event, info="success", error="failure")
    if event.reason == PROGRESSING_REASON:
        status = "pending"
    payload = {
        "state": status,
        "target_url": "",
        "description": description,
        "context": status_key(provider, event),
    }
    url = f"{host}/api/v1/repos/{quote(owner)}/{quote(name)}/statuses/{sha}"
    return [post_json(url, payload, {"Authorization": f"token {token(provider)}"})]
