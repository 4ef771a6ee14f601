"""Pytest fixtures for the notification services (a plugin: ``pytest_plugins = ["tests.notifyfixtures"]``).

One :class:`~tests.notifyservers.ServiceServer` per session on 127.0.0.1 plays every provider's
service; ``notify_server`` hands it to a test with its record, failures and statuses cleared.
Its forge repositories (:data:`FORGE_REPOS`) are one real Git repository with two commits:
``notify_forge.sha`` (the head) is a commit the forges accept, ``notify_forge.unknown_sha`` is not.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from gitops_tasks.notify import providers
from gitops_tasks.notify.message import Event, ProviderConfig, Request
from tests.gitservers import commit_files, make_repo
from tests.notifyservers import Received, ServiceServer

#: Repository ids the forges know: GitHub/Gitea/Bitbucket, GitLab with subgroups, Bitbucket
#: Server's project and slug, Azure DevOps' organisation, project and repository.
FORGE_REPOS = ("org/app", "group/sub/app", "PROJ/app", "org/project/app")


@dataclass(frozen=True)
class Forge:
    sha: str
    unknown_sha: str


@pytest.fixture(scope="session")
def notify_forge_and_services(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Forge, ServiceServer]]:
    work = tmp_path_factory.mktemp("forge") / "app"
    first = make_repo(work, {"README.md": "# app\n"})
    sha = commit_files(work, {"app.yaml": "kind: ConfigMap\n"})
    unknown = hashlib.sha1(first.encode(), usedforsecurity=False).hexdigest()
    with ServiceServer({repo: work for repo in FORGE_REPOS}) as server:
        yield Forge(sha, unknown), server


@pytest.fixture
def notify_forge(notify_forge_and_services: tuple[Forge, ServiceServer]) -> Forge:
    return notify_forge_and_services[0]


@pytest.fixture
def notify_server(notify_forge_and_services: tuple[Forge, ServiceServer]) -> ServiceServer:
    server = notify_forge_and_services[1]
    server.reset()
    return server


def send(req: Request, timeout_s: float = 5.0) -> requests.Response:
    """Send one built request as delivery does; a Web API answer whose ``json_ok_field`` is not
    true (Slack's ``"ok": false`` with 200) gets status 400."""
    resp = requests.request(req.method, req.url, headers=req.headers, data=req.body, timeout=timeout_s)
    if resp.ok and req.json_ok_field and resp.json().get(req.json_ok_field) is not True:
        resp.status_code = 400
    return resp


def deliver(provider: ProviderConfig, event: Event, server: ServiceServer) -> list[Received]:
    """Build and send every request, asserting each is accepted; return what the service got."""
    for req in providers.build(provider, event):
        resp = send(req)
        assert resp.ok, (resp.status_code, resp.text)
    return server.take()


def sample_event(**changes: Any) -> Event:
    """A failed Kustomization health check with a summary and metadata; ``changes`` override fields."""
    base = Event(
        kind="Kustomization",
        namespace="flux-system",
        name="apps",
        severity="error",
        reason="HealthCheckFailed",
        message="Health check failed after 30s: Deployment/apps/web (not ready).\nsecond line",
        revision="main@sha1:" + "0" * 40,
        api_version="kustomize.toolkit.fluxcd.io/v1",
        time=1_767_225_600.0,
        metadata={"summary": "prod cluster", "env": "prod"},
        controller="kustomize-controller",
    )
    return dataclasses.replace(base, **changes)


def deliver_one(provider: ProviderConfig, event: Event, server: ServiceServer) -> Received:
    """:func:`deliver` for a type that sends one request."""
    (got,) = deliver(provider, event, server)
    return got
