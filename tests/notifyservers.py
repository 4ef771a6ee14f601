"""The tests' own notification services: one loopback HTTP server answering as each provider's real
service does (paths, methods, auth headers and the body fields its documentation requires), and
recording every request.

A request the real service would refuse gets the status and error body that service answers, so a
provider type that builds a wrong request fails its test on the status, not on a snapshot. The
forge routes (GitHub, GitLab, Gitea, Bitbucket, Bitbucket Server, Azure DevOps) also check the SHA
is a commit of a real Git repository (``repos``) and keep statuses per (repository, SHA, key).

``fail(status, times, headers)`` makes the next requests fail (500, 429 with ``Retry-After``...)
for delivery tests. No pytest here: benchmarks can import it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.httpserve import QuietHandler, QuietThreadingServer

#: Keys the services accept (tests configure Providers with them).
SLACK_TOKEN = "xoxb-1234-5678-secretbot"
WEBEX_TOKEN = "webex-bot-token-secret"
TELEGRAM_TOKEN = "123456789:AAH-telegram_secret"
MATRIX_TOKEN = "syt_matrix_secret"
ZULIP_USER, ZULIP_KEY = "flux-bot@zulip.example", "zulip-api-key-secret"
OPSGENIE_KEY = "opsgenie-api-key-secret"
PAGERDUTY_KEY = "0123456789abcdef0123456789abcdef"
ALERTMANAGER_TOKEN = "am-token-secret"
GRAFANA_TOKEN = "glsa_grafana_secret"
HMAC_KEY = "hmac-key-secret"
FORGE_TOKEN = "forge-token-secret"
BITBUCKET_USER, BITBUCKET_PASSWORD = "flux", "app-password-secret"
#: Google Chat webhooks carry their credentials in the query.
GOOGLECHAT_QUERY = "key=AIza-chat-key&token=chat-token-secret"


@dataclass
class Received:
    """One request as the server saw it (header names lower-case)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}


class Refused(Exception):
    """Answer with ``status`` and ``body`` (what the real service says for this mistake)."""

    def __init__(self, status: int, body: object) -> None:
        super().__init__(status)
        self.status, self.body = status, body


def need(condition: object, status: int, body: object) -> None:
    if not condition:
        raise Refused(status, body)


def json_body(req: Received, status: int = 400, error: object = "invalid_payload") -> Any:
    need(req.headers.get("content-type", "").startswith("application/json"), 415, "Content-Type")
    try:
        return req.json()
    except ValueError:
        raise Refused(status, error) from None


def bearer(req: Received, token: str, status: int = 401, error: object = "unauthorized") -> None:
    given = req.headers.get("authorization", "")
    need(hmac.compare_digest(given, f"Bearer {token}"), status, error)


def basic(req: Received, user: str, password: str) -> None:
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    need(
        hmac.compare_digest(req.headers.get("authorization", ""), expected), 401, {"message": "Unauthorized"}
    )


@dataclass
class Reply:
    status: int = 200
    body: object = b""
    headers: dict[str, str] = field(default_factory=dict)


#: A route's handler: the request, the path match and the server (for forge state).
Route = Callable[[Received, "re.Match[str]", "ServiceServer"], Reply]
_ROUTES: list[tuple[str, re.Pattern[str], Route]] = []


def route(method: str, pattern: str) -> Callable[[Route], Route]:
    def register(fn: Route) -> Route:
        _ROUTES.append((method, re.compile(pattern + "$"), fn))
        return fn

    return register


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


# --- forges: commit statuses and repository_dispatch --------------------------------------------

_SHA = r"(?P<sha>[0-9a-f]{40})"


def _commit(srv: ServiceServer, repo: str, sha: str, status: int, body: object) -> None:
    need(srv.has_commit(repo, sha), status, body)


@route("POST", r"/api/v3/repos/(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+)/statuses/" + _SHA)
def github_status(req: Received, m: re.Match[str], srv: ServiceServer) -> Reply:
    need(
        req.headers.get("authorization") in (f"Bearer {FORGE_TOKEN}", f"token {FORGE_TOKEN}"),
        401,
        {"message": "Bad credentials"},
    )
    repo = f"{m['owner']}/{m['repo']}"
    _commit(srv, repo, m["sha"], 422, {"message": f"No commit found for SHA: {m['sha']}"})
    body = json_body(req)
    need(
        body.get("state") in ("error", "failure", "pending", "success"), 422, {"message": "Validation Failed"}
    )
    srv.set_status(repo, m["sha"], body.get("context") or "default", body)
    return Reply(201, {"id": 1, **body})


@route("POST", r"/api/v3/repos/(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+)/dispatches")
def github_dispatch(req: Received, m: re.Match[str], srv: ServiceServer) -> Reply:
    need(req.headers.get("authorization") == f"Bearer {FORGE_TOKEN}", 401, {"message": "Bad credentials"})
    need(srv.has_repo(f"{m['owner']}/{m['repo']}"), 404, {"message": "Not Found"})
    body = json_body(req)
    need(0 < len(body.get("event_type", "")) <= 100, 422, {"message": "event_type"})
    payload = body.get("client_payload", {})
    need(isinstance(payload, dict) and len(payload) <= 10, 422, {"message": "client_payload"})
    return Reply(204)


@route("POST", r"/api/v4/projects/(?P<project>[^/]+)/statuses/" + _SHA)
def gitlab_status(req: Received, m: re.Match[str], srv: ServiceServer) -> Reply:
    need(req.headers.get("private-token") == FORGE_TOKEN, 401, {"message": "401 Unauthorized"})
    project = unquote(m["project"])
    need("/" in project and srv.has_repo(project), 404, {"message": "404 Project Not Found"})
    _commit(srv, project, m["sha"], 404, {"message": "404 Commit Not Found"})
    body = json_body(req)
    need(
        body.get("state") in ("pending", "running", "success", "failed", "canceled", "skipped"),
        400,
        {"error": "state does not have a valid value"},
    )
    srv.set_status(project, m["sha"], body.get("name") or "default", body)
    return Reply(201, {"id": 1, "sha": m["sha"], "status": body["state"], "name": body.get("name")})


@route("POST", r"/api/v1/repos/(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+)/statuses/" + _SHA)
def gitea_status(req: Received, m: re.Match[str], srv: ServiceServer) -> Reply:
    need(req.headers.get("authorization") == f"token {FORGE_TOKEN}", 401, {"message": "token is required"})
    repo = f"{m['owner']}/{m['repo']}"
    _commit(srv, repo, m["sha"], 404, {"message": "commit not found"})
    body = json_body(req)
    need(
        body.get("state") in ("pending", "success", "error", "failure", "warning"), 422, {"message": "state"}
    )
    srv.set_status(repo, m["sha"], body.get("context") or "default", body)
    return Reply(201, {"id": 1, "status": body["state"], "context": body.get("context")})


@route("POST", r"/2\.0/repositories/(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+)/commit/" + _SHA + r"/statuses/build")
def bitbucket_status(req: Received, m: re.Match[str], srv: ServiceServer) -> Reply:
    basic(req, BITBUCKET_USER, BITBUCKET_PASSWORD)
    repo = f"{m['owner']}/{m['repo']}"
    _commit(srv, repo, m["sha"], 404, {"type": "error", "error": {"message": "Commit not found"}})
    body = json_body(req)
    need(body.get("state") in ("SUCCESSFUL", "FAILED", "INPROGRESS", "STOPPED"), 400, {"type": "error"})
    need(
        0 < len(body.get("key", "")) <= 40 and body.get("url"),
        400,
        {"type": "error", "error": {"message": "key and url are required"}},
    )
    srv.set_status(repo, m["sha"], body["key"], body)
    return Reply(201, {"type": "commitstatus", **body})


@route(
    "POST", r"/rest/api/latest/projects/(?P<key>[\w-]+)/repos/(?P<slug>[\w.-]+)/commits/" + _SHA + r"/builds"
)
def bitbucketserver_build(req: Received, m: re.Match[str], srv: ServiceServer) -> Reply:
    need(
        req.headers.get("authorization") == f"Bearer {FORGE_TOKEN}",
        401,
        {"errors": [{"message": "Authentication failed"}]},
    )
    need(
        req.headers.get("x-atlassian-token") == "no-check",
        403,
        {"errors": [{"message": "XSRF check failed"}]},
    )
    repo = f"{m['key']}/{m['slug']}"
    _commit(srv, repo, m["sha"], 404, {"errors": [{"message": "commit does not exist"}]})
    body = json_body(req)
    need(body.get("key") and body.get("url"), 400, {"errors": [{"message": "key and url are required"}]})
    need(
        body.get("state") in ("SUCCESSFUL", "FAILED", "INPROGRESS", "CANCELLED", "UNKNOWN"),
        400,
        {"errors": [{"message": "state"}]},
    )
    srv.set_status(repo, m["sha"], body["key"], body)
    return Reply(204)


@route(
    "POST",
    r"/(?P<org>[\w.-]+)/(?P<project>[\w.-]+)/_apis/git/repositories/(?P<repo>[\w.-]+)/commits/"
    + _SHA
    + r"/statuses",
)
def azuredevops_status(req: Received, m: re.Match[str], srv: ServiceServer) -> Reply:
    basic(req, "", FORGE_TOKEN)
    need(req.query.get("api-version"), 400, {"message": "No api-version was supplied"})
    repo = f"{m['org']}/{m['project']}/{m['repo']}"
    _commit(srv, repo, m["sha"], 404, {"message": "TF401175: The commit was not found"})
    body = json_body(req)
    states = ("notSet", "pending", "succeeded", "failed", "error", "notApplicable")
    need(body.get("state") in states, 400, {"message": "state"})
    context = body.get("context") or {}
    need(context.get("name"), 400, {"message": "context.name is required"})
    srv.set_status(repo, m["sha"], f"{context.get('genre', '')}/{context['name']}", body)
    return Reply(201, {"id": 1, **body})


class _Handler(QuietHandler):
    server: _HTTPd

    def do_PUT(self) -> None:
        self._serve()

    def _serve(self) -> None:
        srv = self.server.owner
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        req = Received(
            self.command,
            parts.path,
            parse_qs(parts.query),
            {k.lower(): v for k, v in self.headers.items()},
            self.rfile.read(length),
        )
        reply = srv.answer(req)
        body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        ctype = "text/plain" if isinstance(reply.body, bytes) else "application/json"
        self.send_header("Content-Type", ctype)
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _HTTPd(QuietThreadingServer):
    owner: ServiceServer


class ServiceServer:
    """Every provider's service on one loopback port (``with ServiceServer() as srv``).

    ``repos`` maps a forge repository id (``org/app``, ``group/sub/app``, ``PROJ/app``,
    ``org/project/app``) to a Git repository whose commits the forge routes accept."""

    def __init__(self, repos: dict[str, Path] | None = None) -> None:
        self.repos: dict[str, Path] = dict(repos or {})
        self.slack_channels = {"general", "C0123456789"}
        self.received: list[Received] = []
        self.statuses: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.matrix_events: dict[str, str] = {}
        self._failures: list[Reply] = []
        self._lock = threading.Lock()
        self._httpd = _HTTPd(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> ServiceServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def fail(self, status: int, times: int = 1, headers: dict[str, str] | None = None) -> None:
        """Answer the next ``times`` requests with ``status`` (and ``headers``) before checking."""
        with self._lock:
            self._failures += [Reply(status, {"error": "injected"}, dict(headers or {}))] * times

    def take(self) -> list[Received]:
        """The requests received so far, clearing the record."""
        with self._lock:
            out, self.received = self.received, []
        return out

    def has_repo(self, repo: str) -> bool:
        return repo in self.repos

    def has_commit(self, repo: str, sha: str) -> bool:
        path = self.repos.get(repo)
        if path is None:
            return False
        proc = subprocess.run(
            ["git", "-C", str(path), "cat-file", "-e", f"{sha}^{{commit}}"], capture_output=True, check=False
        )
        return proc.returncode == 0

    def set_status(self, repo: str, sha: str, key: str, body: dict[str, Any]) -> None:
        with self._lock:
            self.statuses.setdefault((repo, sha), {})[key] = body

    def status_of(self, repo: str, sha: str) -> dict[str, dict[str, Any]]:
        """The statuses on a commit, by context/key."""
        with self._lock:
            return dict(self.statuses.get((repo, sha), {}))

    def answer(self, req: Received) -> Reply:
        with self._lock:
            self.received.append(req)
            if self._failures:
                return self._failures.pop(0)
        matched_path = False
        for method, pattern, fn in _ROUTES:
            m = pattern.match(req.path)
            if not m:
                continue
            matched_path = True
            if method != req.method:
                continue
            try:
                return fn(req, m, self)
            except Refused as refused:
                body = refused.body if isinstance(refused.body, dict | list) else str(refused.body).encode()
                return Reply(refused.status, body)
        return Reply(405 if matched_path else 404, b"no such endpoint")
