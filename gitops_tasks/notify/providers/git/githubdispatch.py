"""``githubdispatch``: a ``repository_dispatch`` (``POST /repos/<owner>/<repo>/dispatches``) whose
``event_type`` is ``Kind/name.namespace`` and whose ``client_payload`` is the event's JSON (as
``generic`` sends it), for GitHub Actions workflows ``on: repository_dispatch``."""

from __future__ import annotations

from gitops_tasks.notify.message import Event, ProviderConfig, Request
from gitops_tasks.notify.providers import generic
from gitops_tasks.notify.providers.formatting import post_json
from gitops_tasks.notify.providers.git import github


def build(provider: ProviderConfig, event: Event) -> list[Request]:
    url, headers = github.api(provider)
    payload = {
        "event_type": f"{event.kind}/{event.name}.{event.namespace}",
        "client_payload": generic.payload(event),
    }
    return [post_json(f"{url}/dispatches", payload, headers)]
