"""What every service route uses: the recorded request, refusals, auth checks, the route table."""

from __future__ import annotations

import base64
import hmac
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

if TYPE_CHECKING:
    from tests.notifyservers.server import ServiceServer

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
ROUTES: list[tuple[str, re.Pattern[str], Route]] = []


def route(method: str, pattern: str) -> Callable[[Route], Route]:
    def register(fn: Route) -> Route:
        ROUTES.append((method, re.compile(pattern + "$"), fn))
        return fn

    return register
