"""``bitbucketserver`` (Data Center): a build status (``POST <context>/rest/api/latest/projects/
<KEY>/repos/<slug>/commits/<sha>/builds``) for an HTTP clone address
``https://<host>[/<context>]/scm/<KEY>/<slug>.git``, with a Bearer token or basic auth."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from gitops_tasks.notify.message import Event, InvalidProvider, ProviderConfig, Request
from gitops_tasks.notify.providers.formatting import (
    ADDRESS,
    basic_auth,
    name_and_description,
    post_json,
    required,
)
from gitops_tasks.notify.providers.git import event_sha, hashed_status_key, skip_progressing, state


def commits_url(provider: ProviderConfig) -> str:
    """The REST ``.../commits`` URL for the clone address."""
    address = required(provider.address, provider, ADDRESS)
    parts = urlsplit(address)
    context, scm, repo_id = parts.path.removesuffix(".git").rpartition("/scm/")
    pieces = repo_id.split("/")
    if parts.scheme not in ("http", "https") or not scm or len(pieces) != 2 or not all(pieces):
        raise InvalidProvider(
            "Provider type bitbucketserver needs the HTTP clone address "
            "(https://<host>/scm/<project>/<repository>.git)"
        )
    key, slug = pieces
    return f"{parts.scheme}://{parts.netloc}{context}/rest/api/latest/projects/{quote(key)}/repos/{quote(slug)}/commits"


def build(provider: ProviderConfig, event: Event) -> list[Request]:
    skip_progressing(event)
    sha = event_sha(event)
    url = f"{commits_url(provider)}/{sha}/builds"
    if provider.token:
        auth = f"Bearer {provider.token}"
    elif provider.username and provider.password:
        auth = basic_auth(provider.username, provider.password)
    else:
        raise InvalidProvider("Provider type bitbucketserver needs a token or a username and password")
    title, description = name_and_description(event)
    payload = {
        "key": hashed_status_key(provider, event),
        "state": state(event, info="SUCCESSFUL", error="FAILED"),
        "url": provider.address,
        "description": description,
        "name": f"{title} [{description}]",
    }
    headers = {
        "Authorization": auth,
        "X-Atlassian-Token": "no-check",
        "X-Requested-With": "XMLHttpRequest",
    }
    return [post_json(url, payload, headers)]
