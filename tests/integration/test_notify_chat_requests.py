"""Every chat, incident and webhook provider type's request, sent with ``requests`` to the tests'
own services on loopback (tests/notifyservers/), which answer as the real services do: a wrong
path, method, auth header or missing body field fails on the status."""

from __future__ import annotations

import dataclasses

from gitops_tasks.notify import providers
from gitops_tasks.notify.message import ProviderConfig
from tests import notifyservers as svc
from tests.notifyfixtures import deliver, deliver_one, send
from tests.notifyfixtures import sample_event as event

# --- chat ---------------------------------------------------------------------------------------


def test_slack_incoming_webhook(notify_server: svc.ServiceServer) -> None:
    provider = ProviderConfig(
        type="slack", address=f"{notify_server.url}/services/T000/B000/XXXX", channel="general"
    )
    got = deliver_one(provider, event(), notify_server)
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


def test_slack_chat_post_message_with_bot_token_and_channel(notify_server: svc.ServiceServer) -> None:
    provider = ProviderConfig(
        type="slack",
        address=f"{notify_server.url}/api/chat.postMessage",
        token=svc.SLACK_TOKEN,
        channel="C0123456789",
        username="flux",
    )
    got = deliver_one(provider, event(severity="info", reason="ReconciliationSucceeded"), notify_server)
    assert got.headers["authorization"] == f"Bearer {svc.SLACK_TOKEN}"
    assert got.json()["channel"] == "C0123456789" and got.json()["username"] == "flux"
    assert got.json()["attachments"][0]["color"] == "good"


def test_slack_web_api_error_answered_with_200_is_a_failure(notify_server: svc.ServiceServer) -> None:
    provider = ProviderConfig(
        type="slack",
        address=f"{notify_server.url}/api/chat.postMessage",
        token=svc.SLACK_TOKEN,
        channel="nope",
    )
    (req,) = providers.build(provider, event())
    resp = send(req)
    assert not resp.ok and resp.json() == {"ok": False, "error": "channel_not_found"}


def test_discord_posts_to_the_slack_compatible_endpoint(notify_server: svc.ServiceServer) -> None:
    provider = ProviderConfig(type="discord", address=f"{notify_server.url}/api/webhooks/123456/tok-en")
    got = deliver_one(provider, event(), notify_server)
    assert got.path == "/api/webhooks/123456/tok-en/slack"
    assert got.json()["attachments"][0]["author_name"] == "kustomization/apps.flux-system"
    # An address already ending in /slack is kept as is.
    again = deliver_one(
        dataclasses.replace(provider, address=f"{notify_server.url}/api/webhooks/123456/tok-en/slack"),
        event(),
        notify_server,
    )
    assert again.path == got.path


def test_rocket_chat_webhook(notify_server: svc.ServiceServer) -> None:
    provider = ProviderConfig(
        type="rocket", address=f"{notify_server.url}/hooks/abc/def", channel="#ops", username="flux"
    )
    body = deliver_one(provider, event(), notify_server).json()
    assert body["channel"] == "#ops" and body["attachments"][0]["color"] == "#FF0000"
    info = deliver_one(provider, event(severity="info"), notify_server).json()
    assert info["attachments"][0]["color"] == "#0076D7"


def test_msteams_workflow_webhook_gets_an_adaptive_card(notify_server: svc.ServiceServer) -> None:
    provider = ProviderConfig(
        type="msteams",
        address=f"{notify_server.url}/workflows/abc-123/triggers/manual/paths/invoke?api-version=1",
    )
    got = deliver_one(provider, event(), notify_server)
    assert got.query["api-version"] == ["1"]
    (att,) = got.json()["attachments"]
    (container,) = att["content"]["body"]
    heading, text, factset = container["items"]
    assert heading["text"] == "kustomization/apps.flux-system" and text["color"] == "attention"
    assert [f["title"] for f in factset["facts"]] == ["summary", "env", "revision"]


def test_googlechat_webhook_keeps_its_key_and_token(notify_server: svc.ServiceServer) -> None:
    provider = ProviderConfig(
        type="googlechat", address=f"{notify_server.url}/v1/spaces/AAAA/messages?{svc.GOOGLECHAT_QUERY}"
    )
    got = deliver_one(provider, event(), notify_server)
    (card,) = got.json()["cards"]
    assert card["header"] == {"title": "kustomization/apps.flux-system", "subtitle": "kustomize-controller"}
    assert card["sections"][0]["widgets"][0]["textParagraph"]["text"].startswith('<font color="#ff0000">')
    assert {w["keyValue"]["topLabel"] for w in card["sections"][1]["widgets"]} == {
        "env",
        "revision",
        "summary",
    }


def test_webex_messages_api(notify_server: svc.ServiceServer) -> None:
    provider = ProviderConfig(
        type="webex", address=f"{notify_server.url}/v1/messages", channel="room-1", token=svc.WEBEX_TOKEN
    )
    body = deliver_one(provider, event(), notify_server).json()
    assert body["roomId"] == "room-1"
    assert body["markdown"].startswith("💣 **kustomization/apps.flux-system**\n")
    assert ">**env**: prod" in body["markdown"]


def test_telegram_bot_api_accepts_the_escaped_markdown(notify_server: svc.ServiceServer) -> None:
    provider = ProviderConfig(
        type="telegram", address=notify_server.url, channel="@flux_ops", token=svc.TELEGRAM_TOKEN
    )
    got = deliver_one(provider, event(), notify_server)
    assert got.path == f"/bot{svc.TELEGRAM_TOKEN}/sendMessage"
    body = got.json()
    assert body["chat_id"] == "@flux_ops" and body["parse_mode"] == "MarkdownV2"
    assert body["text"].startswith("*🚨 kustomization/apps/flux\\-system*\n")
    assert "message_thread_id" not in body


def test_telegram_forum_topic_from_the_channel(notify_server: svc.ServiceServer) -> None:
    provider = ProviderConfig(
        type="telegram", address=notify_server.url, channel="-100123:42", token=svc.TELEGRAM_TOKEN
    )
    body = deliver_one(provider, event(), notify_server).json()
    assert (body["chat_id"], body["message_thread_id"]) == ("-100123", "42")


def test_matrix_room_message_is_idempotent_per_event(notify_server: svc.ServiceServer) -> None:
    provider = ProviderConfig(
        type="matrix", address=notify_server.url, channel="!room:matrix.example", token=svc.MATRIX_TOKEN
    )
    (req,) = providers.build(provider, event())
    first, second = send(req), send(req)
    assert first.ok and second.ok and first.json()["event_id"] == second.json()["event_id"]
    got = notify_server.take()[0]
    assert got.method == "PUT" and got.path.startswith(
        "/_matrix/client/r0/rooms/%21room%3Amatrix.example/send/m.room.message/"
    )
    assert got.json()["msgtype"] == "m.text" and got.json()["body"].startswith(
        "🚨 kustomization/apps.flux-system\n"
    )
    (other,) = providers.build(provider, event(message="another"))
    assert other.url != req.url


def test_lark_interactive_card(notify_server: svc.ServiceServer) -> None:
    provider = ProviderConfig(type="lark", address=f"{notify_server.url}/open-apis/bot/v2/hook/abc-123")
    (req,) = providers.build(provider, event())
    resp = send(req)
    assert resp.json() == {"code": 0, "msg": "success", "data": {}}
    card = notify_server.take()[0].json()["card"]
    assert card["header"]["template"] == "red" and card["elements"][0]["text"]["content"].startswith(
        "**Health check"
    )


def test_zulip_stream_message_with_basic_auth(notify_server: svc.ServiceServer) -> None:
    provider = ProviderConfig(
        type="zulip",
        address=f"{notify_server.url}/ignored/path",
        channel="ops/flux",
        username=svc.ZULIP_USER,
        password=svc.ZULIP_KEY,
    )
    got = deliver_one(provider, event(), notify_server)
    form = got.form()
    assert got.path == "/api/v1/messages"
    assert (form["type"], form["to"], form["topic"]) == ("stream", "ops", "flux")
    assert form["content"].startswith("## Flux Status\n\n⚠️ Kustomization/flux-system/apps\n")
    assert "* `env`: prod\n" in form["content"]


# --- incidents, metrics, webhooks ---------------------------------------------------------------


def test_opsgenie_alert(notify_server: svc.ServiceServer) -> None:
    provider = ProviderConfig(
        type="opsgenie",
        address=f"{notify_server.url}/v2/alerts",
        token=svc.OPSGENIE_KEY,
        provider_namespace="flux-system",
        provider_name="og",
    )
    body = deliver_one(provider, event(), notify_server).json()
    assert body["message"] == "Kustomization/apps" and body["description"] == event().message
    assert body["details"]["severity"] == "error" and body["details"]["env"] == "prod"
    # One alert per object and reason: repeats update it, another reason opens another.
    again = deliver_one(provider, event(message="again"), notify_server).json()
    other = deliver_one(provider, event(reason="BuildFailed"), notify_server).json()
    assert len(body["alias"]) == 64 and again["alias"] == body["alias"] != other["alias"]


def test_pagerduty_error_triggers_and_info_resolves_with_a_change_event(
    notify_server: svc.ServiceServer,
) -> None:
    provider = ProviderConfig(
        type="pagerduty", address=f"{notify_server.url}/ignored", channel=svc.PAGERDUTY_KEY
    )
    trigger = deliver_one(provider, event(), notify_server).json()
    assert trigger["event_action"] == "trigger" and trigger["payload"]["severity"] == "error"
    assert trigger["payload"]["summary"] == "health check failed: kustomization/apps"
    assert trigger["payload"]["timestamp"] == "2026-01-01T00:00:00Z"
    resolve, change = deliver(
        provider, event(severity="info", reason="ReconciliationSucceeded"), notify_server
    )
    assert (resolve.path, change.path) == ("/v2/enqueue", "/v2/change/enqueue")
    assert resolve.json()["event_action"] == "resolve" and resolve.json()["dedup_key"] == trigger["dedup_key"]
    assert change.json()["payload"]["source"] == "Flux kustomize-controller"


def test_alertmanager_alert(notify_server: svc.ServiceServer) -> None:
    provider = ProviderConfig(
        type="alertmanager", address=f"{notify_server.url}/api/v2/alerts", token=svc.ALERTMANAGER_TOKEN
    )
    (alert,) = deliver_one(provider, event(), notify_server).json()
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


def test_grafana_annotation(notify_server: svc.ServiceServer) -> None:
    provider = ProviderConfig(
        type="grafana", address=f"{notify_server.url}/api/annotations", token=svc.GRAFANA_TOKEN
    )
    body = deliver_one(provider, event(), notify_server).json()
    assert body["text"] == "kustomization/apps.flux-system" and body["when"] == 1_767_225_600
    assert body["time"] == 1_767_225_600_000
    assert body["tags"][:2] == ["flux", "kustomize-controller"]
    assert "revision: main@sha1|" + "0" * 40 in body["tags"] and "kind: Kustomization" in body["tags"]


def test_generic_webhook(notify_server: svc.ServiceServer) -> None:
    provider = ProviderConfig(type="generic", address=f"{notify_server.url}/hook", headers={"X-Team": "ops"})
    got = deliver_one(provider, event(), notify_server)
    assert got.headers["gotk-component"] == "kustomize-controller" and got.headers["x-team"] == "ops"
    assert got.json()["involvedObject"]["kind"] == "Kustomization"


def test_generic_hmac_signature_verifies_and_a_wrong_key_is_refused(notify_server: svc.ServiceServer) -> None:
    provider = ProviderConfig(
        type="generic-hmac", address=f"{notify_server.url}/hmac-hook", token=svc.HMAC_KEY
    )
    got = deliver_one(provider, event(), notify_server)
    assert got.headers["x-signature"].startswith("sha256=")
    (wrong,) = providers.build(dataclasses.replace(provider, token="other-key"), event())
    assert send(wrong).status_code == 401
