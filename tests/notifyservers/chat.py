"""Chat and webhook services: Slack, Discord, Rocket.Chat, Teams, Google Chat, Webex, Telegram,
Matrix, Lark and Zulip, as their API documentation describes the requests they accept."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import unquote

from tests.notifyservers.base import (
    MATRIX_TOKEN,
    SLACK_TOKEN,
    TELEGRAM_TOKEN,
    WEBEX_TOKEN,
    ZULIP_KEY,
    ZULIP_USER,
    Received,
    Reply,
    basic,
    bearer,
    json_body,
    need,
    route,
)

if TYPE_CHECKING:
    from tests.notifyservers.server import ServiceServer


# --- chat and webhook services -----------------------------------------------------------------


@route("POST", r"/services/T\w+/B\w+/\w+")
def slack_webhook(req: Received, m: re.Match[str], srv: ServiceServer) -> Reply:
    body = json_body(req, 400, "invalid_payload")
    need(body.get("text") or body.get("attachments"), 400, "no_text")
    return Reply(200, b"ok")


@route("POST", r"/api/chat\.postMessage")
def slack_post_message(req: Received, m: re.Match[str], srv: ServiceServer) -> Reply:
    # The Web API answers errors with 200 and ok: false.
    if req.headers.get("authorization") != f"Bearer {SLACK_TOKEN}":
        return Reply(200, {"ok": False, "error": "not_authed"})
    body = json_body(req)
    if body.get("channel") not in srv.slack_channels:
        return Reply(200, {"ok": False, "error": "channel_not_found"})
    if not (body.get("text") or body.get("attachments")):
        return Reply(200, {"ok": False, "error": "no_text"})
    return Reply(200, {"ok": True, "channel": body["channel"], "ts": "1700000000.000100"})


@route("POST", r"/api/webhooks/\d+/[\w-]+/slack")
def discord_slack(req: Received, m: re.Match[str], srv: ServiceServer) -> Reply:
    body = json_body(req, 400, {"message": "Cannot send an empty message", "code": 50006})
    need(body.get("text") or body.get("attachments"), 400, {"message": "Cannot send an empty message"})
    return Reply(200, b"ok")


@route("POST", r"/hooks/\w+/\w+")
def rocket_webhook(req: Received, m: re.Match[str], srv: ServiceServer) -> Reply:
    body = json_body(req)
    need(body.get("text") or body.get("attachments"), 400, {"success": False})
    return Reply(200, {"success": True})


@route("POST", r"/workflows/[\w-]+/triggers/manual/paths/invoke")
def teams_workflow(req: Received, m: re.Match[str], srv: ServiceServer) -> Reply:
    body = json_body(req)
    need(body.get("type") == "message", 400, "type must be message")
    cards = [
        a
        for a in body.get("attachments", [])
        if a.get("contentType") == "application/vnd.microsoft.card.adaptive"
    ]
    need(cards, 400, "no adaptive card attachment")
    content = cards[0].get("content", {})
    need(content.get("type") == "AdaptiveCard" and content.get("version"), 400, "not an AdaptiveCard")
    need(isinstance(content.get("body"), list) and content["body"], 400, "empty card body")
    return Reply(202)


@route("POST", r"/v1/spaces/[\w-]+/messages")
def googlechat_webhook(req: Received, m: re.Match[str], srv: ServiceServer) -> Reply:
    need(req.query.get("key") and req.query.get("token"), 401, {"error": {"code": 401}})
    body = json_body(req)
    need(body.get("text") or body.get("cards") or body.get("cardsV2"), 400, {"error": {"code": 400}})
    for card in body.get("cards", []):
        need(card.get("sections"), 400, {"error": {"message": "card has no sections"}})
    return Reply(200, {"name": "spaces/x/messages/1"})


@route("POST", r"/v1/messages")
def webex_messages(req: Received, m: re.Match[str], srv: ServiceServer) -> Reply:
    bearer(req, WEBEX_TOKEN, 401, {"message": "The request requires a valid access token"})
    body = json_body(req)
    need(body.get("roomId") or body.get("toPersonEmail"), 400, {"message": "roomId required"})
    need(body.get("text") or body.get("markdown"), 400, {"message": "text or markdown required"})
    return Reply(200, {"id": "msg-1", "roomId": body.get("roomId")})


_MARKDOWN_V2_SPECIAL = set("_*[]()~`>#+-=|{}.!")


def markdown_v2_problem(text: str) -> str:
    """Why Telegram would refuse ``text`` as MarkdownV2 (only bold is used here), or ""."""
    bold = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "*":
            bold += 1
        elif ch in _MARKDOWN_V2_SPECIAL:
            return f"Character '{ch}' is reserved and must be escaped with the preceding '\\'"
        i += 1
    return "can't find end of Bold entity" if bold % 2 else ""


@route("POST", r"/bot(?P<token>\d+:[\w-]+)/sendMessage")
def telegram_send(req: Received, m: re.Match[str], srv: ServiceServer) -> Reply:
    need(
        m.group("token") == TELEGRAM_TOKEN,
        401,
        {"ok": False, "error_code": 401, "description": "Unauthorized"},
    )
    body = json_body(req)
    need(
        body.get("chat_id") and body.get("text"),
        400,
        {"ok": False, "description": "Bad Request: message text is empty"},
    )
    if body.get("parse_mode") == "MarkdownV2":
        problem = markdown_v2_problem(body["text"])
        need(not problem, 400, {"ok": False, "description": f"Bad Request: can't parse entities: {problem}"})
    return Reply(200, {"ok": True, "result": {"message_id": len(srv.received)}})


@route("PUT", r"/_matrix/client/r0/rooms/(?P<room>[^/]+)/send/m\.room\.message/(?P<txn>[^/]+)")
def matrix_send(req: Received, m: re.Match[str], srv: ServiceServer) -> Reply:
    bearer(req, MATRIX_TOKEN, 401, {"errcode": "M_UNKNOWN_TOKEN"})
    need(unquote(m.group("room")).startswith("!"), 400, {"errcode": "M_INVALID_PARAM"})
    body = json_body(req, 400, {"errcode": "M_NOT_JSON"})
    need(body.get("msgtype") and isinstance(body.get("body"), str), 400, {"errcode": "M_BAD_JSON"})
    # Idempotent per transaction id, as the spec requires.
    event_id = srv.matrix_events.setdefault(m.group("txn"), f"$event{len(srv.matrix_events)}")
    return Reply(200, {"event_id": event_id})


@route("POST", r"/open-apis/bot/v2/hook/[\w-]+")
def lark_hook(req: Received, m: re.Match[str], srv: ServiceServer) -> Reply:
    body = json_body(req)
    kinds = {"text", "post", "image", "share_chat", "interactive"}
    need(body.get("msg_type") in kinds, 200, {"code": 19002, "msg": "params error, msg_type need"})
    if body["msg_type"] == "interactive":
        need(body.get("card", {}).get("elements"), 200, {"code": 11246, "msg": "card is empty"})
    return Reply(200, {"code": 0, "msg": "success", "data": {}})


@route("POST", r"/api/v1/messages")
def zulip_messages(req: Received, m: re.Match[str], srv: ServiceServer) -> Reply:
    basic(req, ZULIP_USER, ZULIP_KEY)
    need(req.headers.get("content-type") == "application/x-www-form-urlencoded", 400, {"result": "error"})
    form = req.form()
    need(form.get("type") in ("stream", "channel"), 400, {"result": "error", "msg": "Invalid message type"})
    need(form.get("to") and form.get("topic") and form.get("content"), 400, {"result": "error"})
    return Reply(200, {"result": "success", "msg": "", "id": len(srv.received)})
