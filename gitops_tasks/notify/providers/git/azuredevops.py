"""``azuredevops``: a commit status (``POST <org>/<project>/_apis/git/repositories/<repo>/commits/
<sha>/statuses``) for ``https://dev.azure.com/<org>/<project>/_git/<repo>``, authenticated with a
personal access token (basic auth with an empty user). The genre is ``fluxcd``, or
``fluxcd:<summary>`` when the Alert has a summary."""

from __future__ import annotations

from urllib.parse import quote

from gitops_tasks.notify.message import Event, InvalidProvider, ProviderConfig, Request
from gitops_tasks.notify.providers.formatting import basic_auth, name_and_description, post_json
from gitops_tasks.notify.providers.git import (
    event_sha,
    parse_address,
    skip_progressing,
    state,
    status_key,
    token,
)

#: The REST API version of the requests.
API_VERSION = "6.0"


def build(provider: ProviderConfig, event: Event) -> list[Request]:
    skip_progressing(event)
    sha = event_sha(event)
    host, repo_id = parse_address(provider)
    parts = repo_id.split("/")
    if len(parts) != 4 or parts[2] != "_git" or not all(parts):
        raise InvalidProvider(
            "Provider type azuredevops needs the address https://dev.azure.com/<org>/<project>/_git/<repository>"
        )
    org, project, _, repo = (quote(p) for p in parts)
    summary = event.metadata.get("summary")
    _, description = name_and_description(event)
    payload = {
        "state": state(event, info="succeeded", error="error"),
        "description": description,
        "context": {
            "genre": f"fluxcd:{summary}" if summary else "fluxcd",
            "name": status_key(provider, event),
        },
    }
    url = (
        f"{host}/{org}/{project}/_apis/git/repositories/{repo}/commits/{sha}/statuses"
        f"?api-version={API_VERSION}"
    )
    return [post_json(url, payload, {"Authorization": basic_auth("", token(provider))})]
