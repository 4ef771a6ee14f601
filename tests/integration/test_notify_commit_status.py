"""Git commit statuses and repository_dispatch, sent to the tests' own forges on loopback: each
status must land on a real commit of a real Git repository, under Flux's key, and a forge refuses a
commit it does not have."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from gitops_tasks.notify import providers
from gitops_tasks.notify.message import NotSendable, ProviderConfig
from gitops_tasks.notify.providers.git import hashed_status_key, status_key
from tests import notifyservers as svc
from tests.notifyfixtures import Forge, deliver, deliver_one, send
from tests.notifyfixtures import sample_event as event


def forge_provider(provider_type: str, server: svc.ServiceServer, name: str = "forge") -> ProviderConfig:
    addresses = {
        "github": f"{server.url}/org/app",
        "githubdispatch": f"{server.url}/org/app.git",
        "gitlab": f"{server.url}/group/sub/app.git",
        "gitea": f"{server.url}/org/app",
        "bitbucket": f"{server.url}/org/app.git",
        "bitbucketserver": f"{server.url}/scm/PROJ/app.git",
        "azuredevops": f"{server.url}/org/project/_git/app",
    }
    token = (
        f"{svc.BITBUCKET_USER}:{svc.BITBUCKET_PASSWORD}" if provider_type == "bitbucket" else svc.FORGE_TOKEN
    )
    return ProviderConfig(
        type=provider_type,
        address=addresses[provider_type],
        token=token,
        provider_namespace="flux-system",
        provider_name=name,
    )


#: (type, forge repository id, the status's key as the forge stores it for a provider and event).
STATUS_KEYS = {
    "github": ("org/app", status_key),
    "gitlab": ("group/sub/app", status_key),
    "gitea": ("org/app", status_key),
    "bitbucket": ("org/app", hashed_status_key),
    "bitbucketserver": ("PROJ/app", hashed_status_key),
    "azuredevops": ("org/project/app", lambda p, e: "fluxcd:prod cluster/" + status_key(p, e)),
}

#: The state each forge stores for (info, error).
STATES = {
    "github": ("success", "failure"),
    "gitlab": ("success", "failed"),
    "gitea": ("success", "failure"),
    "bitbucket": ("SUCCESSFUL", "FAILED"),
    "bitbucketserver": ("SUCCESSFUL", "FAILED"),
    "azuredevops": ("succeeded", "error"),
}


@pytest.mark.parametrize("provider_type", sorted(STATUS_KEYS))
def test_commit_status_lands_on_the_revision_under_flux_key(
    provider_type: str, notify_forge: Forge, notify_server: svc.ServiceServer
) -> None:
    provider = forge_provider(provider_type, notify_server)
    repo, key_of = STATUS_KEYS[provider_type]
    failed = event(revision=f"main@sha1:{notify_forge.sha}")
    deliver(provider, failed, notify_server)
    status = notify_server.status_of(repo, notify_forge.sha)[key_of(provider, failed)]
    assert status["state"] == STATES[provider_type][1]
    assert status["description"] == "health check failed"
    # Recovery replaces the same status; another Provider (cluster) keeps its own.
    recovered = event(revision=f"main/{notify_forge.sha}", severity="info", reason="ReconciliationSucceeded")
    deliver(provider, recovered, notify_server)
    other = forge_provider(provider_type, notify_server, name="staging")
    deliver(other, failed, notify_server)
    statuses = notify_server.status_of(repo, notify_forge.sha)
    assert statuses[key_of(provider, failed)]["state"] == STATES[provider_type][0]
    assert statuses[key_of(other, failed)]["state"] == STATES[provider_type][1]
    assert key_of(provider, failed) != key_of(other, failed)


@pytest.mark.parametrize("provider_type", sorted(STATUS_KEYS))
def test_forge_refuses_a_commit_it_does_not_have(
    provider_type: str, notify_forge: Forge, notify_server: svc.ServiceServer
) -> None:
    (req,) = providers.build(
        forge_provider(provider_type, notify_server), event(revision=f"main@sha1:{notify_forge.unknown_sha}")
    )
    assert send(req).status_code in (404, 422)


def test_commit_status_needs_a_commit_in_the_revision(
    notify_forge: Forge, notify_server: svc.ServiceServer
) -> None:
    with pytest.raises(NotSendable):
        providers.build(forge_provider("github", notify_server), event(kind="HelmRelease", revision="6.5.0"))


def test_commit_status_for_a_helmrelease_revision(
    notify_forge: Forge, notify_server: svc.ServiceServer
) -> None:
    provider = forge_provider("github", notify_server)
    release = event(kind="HelmRelease", name="podinfo", revision=f"main@sha1:{notify_forge.sha}")
    deliver(provider, release, notify_server)
    assert status_key(provider, release).startswith("helmrelease/podinfo/")
    assert status_key(provider, release) in notify_server.status_of("org/app", notify_forge.sha)


def test_gitea_marks_progressing_as_pending(notify_forge: Forge, notify_server: svc.ServiceServer) -> None:
    provider = forge_provider("gitea", notify_server)
    progressing = event(revision=f"main@sha1:{notify_forge.sha}", severity="info", reason="Progressing")
    deliver(provider, progressing, notify_server)
    assert (
        notify_server.status_of("org/app", notify_forge.sha)[status_key(provider, progressing)]["state"]
        == "pending"
    )


def test_github_repository_dispatch(notify_forge: Forge, notify_server: svc.ServiceServer) -> None:
    got = deliver_one(forge_provider("githubdispatch", notify_server), event(), notify_server)
    body = got.json()
    assert got.path == "/api/v3/repos/org/app/dispatches"
    assert body["event_type"] == "Kustomization/apps.flux-system"
    assert body["client_payload"]["involvedObject"]["name"] == "apps"
    assert body["client_payload"]["metadata"]["summary"] == "prod cluster"


def test_every_supported_type_has_a_request_test() -> None:
    here = Path(__file__).parent
    text = "".join(
        (here / name).read_text() for name in ("test_notify_chat_requests.py", Path(__file__).name)
    )
    tested = set(re.findall(r"^def test_([a-z]+)_", text, re.M)) | set(STATUS_KEYS)
    tested |= {"generic-hmac"} if "def test_generic_hmac_" in text else set()
    tested |= {"githubdispatch"} if "def test_github_repository_dispatch" in text else set()
    assert set(providers.SUPPORTED) <= tested, set(providers.SUPPORTED) - tested


def test_service_answers_injected_failures_first(notify_server: svc.ServiceServer) -> None:
    provider = ProviderConfig(type="generic", address=f"{notify_server.url}/hook")
    (req,) = providers.build(provider, event())
    notify_server.fail(429, headers={"Retry-After": "3"})
    refused = send(req)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "3"
    assert send(req).ok


def test_service_requires_the_documented_auth(notify_server: svc.ServiceServer, notify_forge: Forge) -> None:
    cases = [
        ProviderConfig(type="webex", address=f"{notify_server.url}/v1/messages", channel="r", token="wrong"),
        ProviderConfig(type="grafana", address=f"{notify_server.url}/api/annotations", token="wrong"),
        ProviderConfig(type="opsgenie", address=f"{notify_server.url}/v2/alerts", token="wrong"),
        dataclasses.replace(forge_provider("gitlab", notify_server), token="wrong"),
    ]
    for provider in cases:
        (req,) = providers.build(provider, event(revision=f"main@sha1:{notify_forge.sha}"))
        assert send(req).status_code == 401, provider.type


def test_path_checks_catch_a_wrong_address(notify_server: svc.ServiceServer) -> None:
    provider = ProviderConfig(
        type="webex", address=f"{notify_server.url}/v1/message", channel="r", token=svc.WEBEX_TOKEN
    )
    (req,) = providers.build(provider, event())
    assert send(req).status_code == 404
