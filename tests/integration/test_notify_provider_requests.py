"""Every provider type's request, sent with ``requests`` to the tests' own services on loopback
(tests/notifyservers.py), which answer as the real services do: a wrong path, method, auth header
or missing body field fails on the status. Commit statuses land on real commits of a real Git
repository, under Flux's key."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from gitops_tasks.notify import providers
from gitops_tasks.notify.message import Event, NotSendable, ProviderConfig, Request
from gitops_tasks.notify.providers.git import hashed_status_key, status_key
from tests import notifyservers as svc
from tests.gitservers import commit_files, make_repo

#: Forge repository ids the service knows (each backed by the same real repository).
REPOS = ("org/app", "group/sub/app", "PROJ/app", "org/project/app")


@dataclasses.dataclass
class Forge:
    server: svc.ServiceServer
    #: A commit of the repository, and one the forge does not have.
    sha: str
    unknown_sha: str


@pytest.fixture(scope="module")
def forge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Forge]:
    work = tmp_path_factory.mktemp("forge") / "app"
    first = make_repo(work, {"README.md": "# app\n"})
    sha = commit_files(work, {"app.yaml": "kind: ConfigMap\n"})
    with svc.ServiceServer({repo: work for repo in REPOS}) as server:
        yield Forge(server, sha, hashlib.sha1(first.encode(), usedforsecurity=False).hexdigest())


@pytest.fixture
def server(forge: Forge) -> svc.ServiceServer:
    forge.server.take()
    return forge.server


def event(**changes: Any) -> Event:
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


def send(req: Request) -> requests.Response:
    """Send as delivery does; a Web API answer with ``ok: false`` counts as a failure."""
    resp = requests.request(req.method, req.url, headers=req.headers, data=req.body, timeout=5)
    if resp.ok and req.json_ok_field and resp.json().get(req.json_ok_field) is not True:
        resp.status_code = 400
    return resp


def deliver(provider: ProviderConfig, ev: Event, server: svc.ServiceServer) -> list[svc.Received]:
    """Build and send every request; assert each was accepted; return what the service got."""
    for req in providers.build(provider, ev):
        resp = send(req)
        assert resp.ok, (resp.status_code, resp.text)
    return server.take()


def only(provider: ProviderConfig, ev: Event, server: svc.ServiceServer) -> svc.Received:
    (got,) = deliver(provider, ev, server)
    return got


# --- chat ---------------------------------------------------------------------------------------


def test_slack_incoming_webhook(server: svc.ServiceServer) -> None:
    provider = ProviderConfig(
        type="slack", address=f"{server.url}/services/T000/B000/XXXX", channel="general"
    )
    got = only(provider, event(), server)
    body = got.json()
    (att,) = body["attachments"]
    assert (body["channel"], body["username"]) == ("general", "kustomize-controller")
    assert att["color"] == "danger" and att["author_name"] == "kustomization/apps.flux-system"
    assert att["fallback"] == "kustomization/apps.flux-system: " + event().message.splitlines()[0]
    assert {f["title"]: f["value"] for f in att["fields"]} == {
        "env": "prod",
        "revision": event().revision,
        "summary": "prod cluster",
    }
    assert "authorization" not in got.headers


def test_slack_chat_post_message_with_bot_token_and_channel(server: svc.ServiceServer) -> None:
    provider = ProviderConfig(
        type="slack",
        address=f"{server.url}/api/chat.postMessage",
        token=svc.SLACK_TOKEN,
        channel="C0123456789",
        username="flux",
    )
    got = only(provider, event(severity="info", reason="ReconciliationSucceeded"), server)
    assert got.headers["authorization"] == f"Bearer {svc.SLACK_TOKEN}"
    assert got.json()["channel"] == "C0123456789" and got.json()["username"] == "flux"
    assert got.json()["attachments"][0]["color"] == "good"


def test_slack_web_api_error_answered_with_200_is_a_failure(server: svc.ServiceServer) -> None:
    provider = ProviderConfig(
        type="slack", address=f"{server.url}/api/chat.postMessage", token=svc.SLACK_TOKEN, channel="nope"
    )
    (req,) = providers.build(provider, event())
    resp = send(req)
    assert not resp.ok and resp.json() == {"ok": False, "error": "channel_not_found"}


def test_discord_posts_to_the_slack_compatible_endpoint(server: svc.ServiceServer) -> None:
    provider = ProviderConfig(type="discord", address=f"{server.url}/api/webhooks/123456/tok-en")
    got = only(provider, event(), server)
    assert got.path == "/api/webhooks/123456/tok-en/slack"
    assert got.json()["attachments"][0]["author_name"] == "kustomization/apps.flux-system"
    # An address already ending in /slack is kept as is.
    again = only(
        dataclasses.replace(provider, address=f"{server.url}/api/webhooks/123456/tok-en/slack"),
        event(),
        server,
    )
    assert again.path == got.path


def test_rocket_chat_webhook(server: svc.ServiceServer) -> None:
    provider = ProviderConfig(
        type="rocket", address=f"{server.url}/hooks/abc/def", channel="#ops", username="flux"
    )
    body = only(provider, event(), server).json()
    assert body["channel"] == "#ops" and body["attachments"][0]["color"] == "#FF0000"
    info = only(provider, event(severity="info"), server).json()
    assert info["attachments"][0]["color"] == "#0076D7"


def test_msteams_workflow_webhook_gets_an_adaptive_card(server: svc.ServiceServer) -> None:
    provider = ProviderConfig(
        type="msteams", address=f"{server.url}/workflows/abc-123/triggers/manual/paths/invoke?api-version=1"
    )
    got = only(provider, event(), server)
    assert got.query["api-version"] == ["1"]
    (att,) = got.json()["attachments"]
    (container,) = att["content"]["body"]
    heading, text, factset = container["items"]
    assert heading["text"] == "kustomization/apps.flux-system" and text["color"] == "attention"
    assert [f["title"] for f in factset["facts"]] == ["summary", "env", "revision"]


def test_googlechat_webhook_keeps_its_key_and_token(server: svc.ServiceServer) -> None:
    provider = ProviderConfig(
        type="googlechat", address=f"{server.url}/v1/spaces/AAAA/messages?{svc.GOOGLECHAT_QUERY}"
    )
    got = only(provider, event(), server)
    (card,) = got.json()["cards"]
    assert card["header"] == {"title": "kustomization/apps.flux-system", "subtitle": "kustomize-controller"}
    assert card["sections"][0]["widgets"][0]["textParagraph"]["text"].startswith('<font color="#ff0000">')
    assert {w["keyValue"]["topLabel"] for w in card["sections"][1]["widgets"]} == {
        "env",
        "revision",
        "summary",
    }


def test_webex_messages_api(server: svc.ServiceServer) -> None:
    provider = ProviderConfig(
        type="webex", address=f"{server.url}/v1/messages", channel="room-1", token=svc.WEBEX_TOKEN
    )
    body = only(provider, event(), server).json()
    assert body["roomId"] == "room-1"
    assert body["markdown"].startswith("💣 **kustomization/apps.flux-system**\n")
    assert ">**env**: prod" in body["markdown"]


def test_telegram_bot_api_accepts_the_escaped_markdown(server: svc.ServiceServer) -> None:
    provider = ProviderConfig(
        type="telegram", address=server.url, channel="@flux_ops", token=svc.TELEGRAM_TOKEN
    )
    got = only(provider, event(), server)
    assert got.path == f"/bot{svc.TELEGRAM_TOKEN}/sendMessage"
    body = got.json()
    assert body["chat_id"] == "@flux_ops" and body["parse_mode"] == "MarkdownV2"
    assert body["text"].startswith("*🚨 kustomization/apps/flux\\-system*\n")
    assert "message_thread_id" not in body


def test_telegram_forum_topic_from_the_channel(server: svc.ServiceServer) -> None:
    provider = ProviderConfig(
        type="telegram", address=server.url, channel="-100123:42", token=svc.TELEGRAM_TOKEN
    )
    body = only(provider, event(), server).json()
    assert (body["chat_id"], body["message_thread_id"]) == ("-100123", "42")


def test_matrix_room_message_is_idempotent_per_event(server: svc.ServiceServer) -> None:
    provider = ProviderConfig(
        type="matrix", address=server.url, channel="!room:matrix.example", token=svc.MATRIX_TOKEN
    )
    (req,) = providers.build(provider, event())
    first, second = send(req), send(req)
    assert first.ok and second.ok and first.json()["event_id"] == second.json()["event_id"]
    got = server.take()[0]
    assert got.method == "PUT" and got.path.startswith(
        "/_matrix/client/r0/rooms/%21room%3Amatrix.example/send/m.room.message/"
    )
    assert got.json()["msgtype"] == "m.text" and got.json()["body"].startswith(
        "🚨 kustomization/apps.flux-system\n"
    )
    (other,) = providers.build(provider, event(message="another"))
    assert other.url != req.url


def test_lark_interactive_card(server: svc.ServiceServer) -> None:
    provider = ProviderConfig(type="lark", address=f"{server.url}/open-apis/bot/v2/hook/abc-123")
    (req,) = providers.build(provider, event())
    resp = send(req)
    assert resp.json() == {"code": 0, "msg": "success", "data": {}}
    card = server.take()[0].json()["card"]
    assert card["header"]["template"] == "red" and card["elements"][0]["text"]["content"].startswith(
        "**Health check"
    )


def test_zulip_stream_message_with_basic_auth(server: svc.ServiceServer) -> None:
    provider = ProviderConfig(
        type="zulip",
        address=f"{server.url}/ignored/path",
        channel="ops/flux",
        username=svc.ZULIP_USER,
        password=svc.ZULIP_KEY,
    )
    got = only(provider, event(), server)
    form = got.form()
    assert got.path == "/api/v1/messages"
    assert (form["type"], form["to"], form["topic"]) == ("stream", "ops", "flux")
    assert form["content"].startswith("## Flux Status\n\n⚠️ Kustomization/flux-system/apps\n")
    assert "* `env`: prod\n" in form["content"]


# --- incidents, metrics, webhooks ---------------------------------------------------------------


def test_opsgenie_alert(server: svc.ServiceServer) -> None:
    provider = ProviderConfig(
        type="opsgenie",
        address=f"{server.url}/v2/alerts",
        token=svc.OPSGENIE_KEY,
        provider_namespace="flux-system",
        provider_name="og",
    )
    body = only(provider, event(), server).json()
    assert body["message"] == "Kustomization/apps" and body["description"] == event().message
    assert body["details"]["severity"] == "error" and body["details"]["env"] == "prod"
    # One alert per object and reason: repeats update it, another reason opens another.
    again = only(provider, event(message="again"), server).json()
    other = only(provider, event(reason="BuildFailed"), server).json()
    assert len(body["alias"]) == 64 and again["alias"] == body["alias"] != other["alias"]


def test_pagerduty_error_triggers_and_info_resolves_with_a_change_event(server: svc.ServiceServer) -> None:
    provider = ProviderConfig(type="pagerduty", address=f"{server.url}/ignored", channel=svc.PAGERDUTY_KEY)
    trigger = only(provider, event(), server).json()
    assert trigger["event_action"] == "trigger" and trigger["payload"]["severity"] == "error"
    assert trigger["payload"]["summary"] == "health check failed: kustomization/apps"
    assert trigger["payload"]["timestamp"] == "2026-01-01T00:00:00Z"
    resolve, change = deliver(provider, event(severity="info", reason="ReconciliationSucceeded"), server)
    assert (resolve.path, change.path) == ("/v2/enqueue", "/v2/change/enqueue")
    assert resolve.json()["event_action"] == "resolve" and resolve.json()["dedup_key"] == trigger["dedup_key"]
    assert change.json()["payload"]["source"] == "Flux kustomize-controller"


def test_alertmanager_alert(server: svc.ServiceServer) -> None:
    provider = ProviderConfig(
        type="alertmanager", address=f"{server.url}/api/v2/alerts", token=svc.ALERTMANAGER_TOKEN
    )
    (alert,) = only(provider, event(), server).json()
    assert alert["status"] == "firing" and alert["startsAt"] == "2026-01-01T00:00:00Z"
    assert alert["annotations"] == {"message": event().message, "summary": "prod cluster"}
    labels = alert["labels"]
    assert labels["alertname"] == "FluxKustomizationHealthcheckfailed"
    assert (labels["severity"], labels["kind"], labels["namespace"], labels["env"]) == (
        "error",
        "Kustomization",
        "flux-system",
        "prod",
    )
    assert "summary" not in labels


def test_grafana_annotation(server: svc.ServiceServer) -> None:
    provider = ProviderConfig(
        type="grafana", address=f"{server.url}/api/annotations", token=svc.GRAFANA_TOKEN
    )
    body = only(provider, event(), server).json()
    assert body["text"] == "kustomization/apps.flux-system" and body["when"] == 1_767_225_600
    assert body["time"] == 1_767_225_600_000
    assert body["tags"][:2] == ["flux", "kustomize-controller"]
    assert "revision: main@sha1|" + "0" * 40 in body["tags"] and "kind: Kustomization" in body["tags"]


def test_generic_webhook(server: svc.ServiceServer) -> None:
    provider = ProviderConfig(type="generic", address=f"{server.url}/hook", headers={"X-Team": "ops"})
    got = only(provider, event(), server)
    assert got.headers["gotk-component"] == "kustomize-controller" and got.headers["x-team"] == "ops"
    assert got.json()["involvedObject"]["kind"] == "Kustomization"


def test_generic_hmac_signature_verifies_and_a_wrong_key_is_refused(server: svc.ServiceServer) -> None:
    provider = ProviderConfig(type="generic-hmac", address=f"{server.url}/hmac-hook", token=svc.HMAC_KEY)
    got = only(provider, event(), server)
    assert got.headers["x-signature"].startswith("sha256=")
    (wrong,) = providers.build(dataclasses.replace(provider, token="other-key"), event())
    assert send(wrong).status_code == 401


# --- forges ---------------------------------------------------------------------------------------


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
    provider_type: str, forge: Forge, server: svc.ServiceServer
) -> None:
    provider = forge_provider(provider_type, server)
    repo, key_of = STATUS_KEYS[provider_type]
    failed = event(revision=f"main@sha1:{forge.sha}")
    deliver(provider, failed, server)
    status = server.status_of(repo, forge.sha)[key_of(provider, failed)]
    assert status["state"] == STATES[provider_type][1]
    assert status["description"] == "health check failed"
    # Recovery replaces the same status; another Provider (cluster) keeps its own.
    recovered = event(revision=f"main/{forge.sha}", severity="info", reason="ReconciliationSucceeded")
    deliver(provider, recovered, server)
    other = forge_provider(provider_type, server, name="staging")
    deliver(other, failed, server)
    statuses = server.status_of(repo, forge.sha)
    assert statuses[key_of(provider, failed)]["state"] == STATES[provider_type][0]
    assert statuses[key_of(other, failed)]["state"] == STATES[provider_type][1]
    assert key_of(provider, failed) != key_of(other, failed)


@pytest.mark.parametrize("provider_type", sorted(STATUS_KEYS))
def test_forge_refuses_a_commit_it_does_not_have(
    provider_type: str, forge: Forge, server: svc.ServiceServer
) -> None:
    (req,) = providers.build(
        forge_provider(provider_type, server), event(revision=f"main@sha1:{forge.unknown_sha}")
    )
    assert send(req).status_code in (404, 422)


def test_commit_status_needs_a_commit_in_the_revision(forge: Forge, server: svc.ServiceServer) -> None:
    with pytest.raises(NotSendable):
        providers.build(forge_provider("github", server), event(kind="HelmRelease", revision="6.5.0"))


def test_commit_status_for_a_helmrelease_revision(forge: Forge, server: svc.ServiceServer) -> None:
    provider = forge_provider("github", server)
    release = event(kind="HelmRelease", name="podinfo", revision=f"main@sha1:{forge.sha}")
    deliver(provider, release, server)
    assert status_key(provider, release).startswith("helmrelease/podinfo/")
    assert status_key(provider, release) in server.status_of("org/app", forge.sha)


def test_gitea_marks_progressing_as_pending(forge: Forge, server: svc.ServiceServer) -> None:
    provider = forge_provider("gitea", server)
    progressing = event(revision=f"main@sha1:{forge.sha}", severity="info", reason="Progressing")
    deliver(provider, progressing, server)
    assert server.status_of("org/app", forge.sha)[status_key(provider, progressing)]["state"] == "pending"


def test_github_repository_dispatch(forge: Forge, server: svc.ServiceServer) -> None:
    got = only(forge_provider("githubdispatch", server), event(), server)
    body = got.json()
    assert got.path == "/api/v3/repos/org/app/dispatches"
    assert body["event_type"] == "Kustomization/apps.flux-system"
    assert body["client_payload"]["involvedObject"]["name"] == "apps"
    assert body["client_payload"]["metadata"]["summary"] == "prod cluster"


def test_every_supported_type_has_a_request_test() -> None:
    tested = {name.removeprefix("test_").split("_")[0] for name in globals() if name.startswith("test_")}
    tested |= set(STATUS_KEYS) | {"generic-hmac", "githubdispatch"}
    assert set(providers.SUPPORTED) <= tested, set(providers.SUPPORTED) - tested


def test_service_answers_injected_failures_first(server: svc.ServiceServer) -> None:
    provider = ProviderConfig(type="generic", address=f"{server.url}/hook")
    (req,) = providers.build(provider, event())
    server.fail(429, headers={"Retry-After": "3"})
    refused = send(req)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "3"
    assert send(req).ok


def test_service_requires_the_documented_auth(server: svc.ServiceServer, forge: Forge) -> None:
    cases = [
        ProviderConfig(type="webex", address=f"{server.url}/v1/messages", channel="r", token="wrong"),
        ProviderConfig(type="grafana", address=f"{server.url}/api/annotations", token="wrong"),
        ProviderConfig(type="opsgenie", address=f"{server.url}/v2/alerts", token="wrong"),
        dataclasses.replace(forge_provider("gitlab", server), token="wrong"),
    ]
    for provider in cases:
        (req,) = providers.build(provider, event(revision=f"main@sha1:{forge.sha}"))
        assert send(req).status_code == 401, provider.type


def test_path_checks_catch_a_wrong_address(server: svc.ServiceServer) -> None:
    provider = ProviderConfig(
        type="webex", address=f"{server.url}/v1/message", channel="r", token=svc.WEBEX_TOKEN
    )
    (req,) = providers.build(provider, event())
    assert send(req).status_code == 404
