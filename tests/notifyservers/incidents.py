"""Incident, observability and plain webhook services: Opsgenie, PagerDuty Events v2,
Alertmanager, Grafana annotations, and the generic (HMAC-signed) webhook."""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import TYPE_CHECKING

from tests.notifyservers.base import (
    ALERTMANAGER_TOKEN,
    GRAFANA_TOKEN,
    HMAC_KEY,
    OPSGENIE_KEY,
    PAGERDUTY_KEY,
    Received,
    Reply,
    bearer,
    json_body,
    need,
    route,
)

if TYPE_CHECKING:
    from tests.notifyservers.server import ServiceServer


# --- incident and observability services -------------------------------------------------------


@route("POST", r"/v2/alerts")
def opsgenie_alerts(req: Received, m: re.Match[str], srv: ServiceServer) -> Reply:
    need(
        req.headers.get("authorization") == f"GenieKey {OPSGENIE_KEY}",
        401,
        {"message": "Key format is not valid!"},
    )
    body = json_body(req)
    need(0 < len(body.get("message", "")) <= 130, 422, {"message": "Request body is not processable"})
    need(len(body.get("alias", "")) <= 512, 422, {"message": "alias too long"})
    need(all(isinstance(v, str) for v in body.get("details", {}).values()), 422, {"message": "details"})
    return Reply(202, {"result": "Request will be processed", "requestId": "r-1"})


@route("POST", r"/v2/enqueue")
def pagerduty_enqueue(req: Received, m: re.Match[str], srv: ServiceServer) -> Reply:
    body = json_body(req)
    need(
        body.get("routing_key") == PAGERDUTY_KEY, 400, {"status": "invalid event", "errors": ["routing_key"]}
    )
    action = body.get("event_action")
    need(action in ("trigger", "acknowledge", "resolve"), 400, {"status": "invalid event"})
    if action == "trigger":
        payload = body.get("payload") or {}
        need(payload.get("summary") and payload.get("source"), 400, {"status": "invalid event"})
        need(
            payload.get("severity") in ("critical", "error", "warning", "info"),
            400,
            {"status": "invalid event"},
        )
    else:
        need(body.get("dedup_key"), 400, {"status": "invalid event", "errors": ["dedup_key"]})
    return Reply(202, {"status": "success", "message": "Event processed", "dedup_key": body.get("dedup_key")})


@route("POST", r"/v2/change/enqueue")
def pagerduty_change(req: Received, m: re.Match[str], srv: ServiceServer) -> Reply:
    body = json_body(req)
    need(body.get("routing_key") == PAGERDUTY_KEY, 400, {"status": "invalid event"})
    need((body.get("payload") or {}).get("summary"), 400, {"status": "invalid event"})
    return Reply(202, {"status": "success", "message": "Change event processed"})


@route("POST", r"/api/v2/alerts")
def alertmanager_alerts(req: Received, m: re.Match[str], srv: ServiceServer) -> Reply:
    bearer(req, ALERTMANAGER_TOKEN)
    body = json_body(req)
    need(isinstance(body, list) and body, 400, "alerts must be a non-empty list")
    for alert in body:
        labels = alert.get("labels") or {}
        need(labels and all(isinstance(v, str) and v for v in labels.values()), 400, "invalid label set")
        need(
            re.fullmatch(
                r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", alert.get("startsAt", "")
            ),
            400,
            "startsAt",
        )
    return Reply(200)


@route("POST", r"/api/annotations")
def grafana_annotations(req: Received, m: re.Match[str], srv: ServiceServer) -> Reply:
    bearer(req, GRAFANA_TOKEN, 401, {"message": "Unauthorized"})
    body = json_body(req)
    need(
        isinstance(body.get("text"), str) and body["text"], 400, {"message": "text field should not be empty"}
    )
    need(all(isinstance(t, str) for t in body.get("tags", [])), 400, {"message": "bad tags"})
    need(isinstance(body.get("time", 0), int), 400, {"message": "time must be epoch milliseconds"})
    return Reply(200, {"message": "Annotation added", "id": len(srv.received)})


@route("POST", r"/hook")
def generic_hook(req: Received, m: re.Match[str], srv: ServiceServer) -> Reply:
    body = json_body(req)
    need(body.get("involvedObject") and req.headers.get("gotk-component"), 400, "not a Flux event")
    return Reply(200)


@route("POST", r"/hmac-hook")
def generic_hmac_hook(req: Received, m: re.Match[str], srv: ServiceServer) -> Reply:
    expected = "sha256=" + hmac.new(HMAC_KEY.encode(), req.body, hashlib.sha256).hexdigest()
    need(hmac.compare_digest(req.headers.get("x-signature", ""), expected), 401, "bad signature")
    return generic_hook(req, m, srv)
