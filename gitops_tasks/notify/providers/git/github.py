"""``github``: a commit status (``POST /repos/<owner>/<repo>/statuses/<sha>``) on github.com or
GitHub Enterprise (``<host>/api/v3``), authenticated with the secret's token."""

from __future__ import annotations

from urllib.parse import quote

from gitops_tasks.notify.message import Event, ProviderConfig, Request
from gitops_tasks.notify.providers.formatting import name_and_description, post_json
from gitops_tasks.notify.providers.git import (
    event_sha,
    owner_and_repo,
    parse_address,
    skip_progressing,
    state,
    status_key,
    token,
)

#: The REST API version the requests are written for.
API_VERSION = "2022-11-28"


def api(provider: ProviderConfig) -> tuple[str, dict[str, str]]:
    """``(https://api.github.com/repos/<owner>/<repo>, headers)`` for the Provider's address."""
    host, repo = parse_address(provider)
    owner, name = owner_and_repo(provider, repo)
    root = "https://api.github.com" if host.endswith("://github.com") else f"{host}/api/v3"
    headers = {
        "Authorization": f"Bearer {token(provider)}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": API_VERSION,
    }
    return f"{root}/repos/{quote(owner)}/{quote(name)}", headers


def build(provider: ProviderConfig, event: Event) -> list[Request]:
    skip_progressing(event)
    sha = event_sha(event)
    url, headers = api(provider)
    _, description = name_and_description(event)
    payload = {
        "state": state(event, info="success", error="failure"),
        "context": status_key(provider, event),
        "description": description,
    }
    return [post_json(f"{url}/statuses/{sha}", payload, headers)]
