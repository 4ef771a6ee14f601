"""``bitbucket`` (Cloud): a build status (``POST /2.0/repositories/<owner>/<repo>/commit/<sha>/
statuses/build``) with basic auth from the secret's token written ``<user>:<app password>``.

Addresses on ``bitbucket.org`` go to ``https://api.bitbucket.org``; any other host is used as
the API host itself (``<host>/2.0``)."""

from __future__ import annotations

from urllib.parse import quote

from gitops_tasks.notify.message import Event, InvalidProvider, ProviderConfig, Request
from gitops_tasks.notify.providers.formatting import basic_auth, name_and_description, post_json
from gitops_tasks.notify.providers.git import (
    event_sha,
    hashed_status_key,
    owner_and_repo,
    parse_address,
    skip_progressing,
    state,
    token,
)


def build(provider: ProviderConfig, event: Event) -> list[Request]:
    skip_progressing(event)
    sha = event_sha(event)
    host, repo = parse_address(provider)
    owner, name = owner_and_repo(provider, repo)
    user, sep, password = token(provider).partition(":")
    if not sep or not user or ":" in password:
        raise InvalidProvider("Provider type bitbucket needs the secret's token as <user>:<app password>")
    root = "https://api.bitbucket.org" if host.endswith("://bitbucket.org") else host
    title, description = name_and_description(event)
    payload = {
        "state": state(event, info="SUCCESSFUL", error="FAILED"),
        "key": hashed_status_key(provider, event),
        "name": title,
        "description": description,
        "url": "https://bitbucket.org",
    }
    url = f"{root}/2.0/repositories/{quote(owner)}/{quote(name)}/commit/{sha}/statuses/build"
    return [post_json(url, payload, {"Authorization": basic_auth(user, password)})]
