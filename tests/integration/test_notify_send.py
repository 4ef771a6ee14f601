"""How one send ends, by what the service answered: the tests' webhook server answering as told,
the requests built by the real provider types (``slack``'s Web API answers errors inside a 200)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests

from gitops_tasks.notify import providers
from gitops_tasks.notify.deliver import send_requests
from gitops_tasks.notify.message import Event, ProviderConfig
from tests.notifyserver import NotifyServer

EVENT = Event(
    kind="Kustomization", namespace="apps", name="web", severity="error", reason="Failed", message="boom"
)


@pytest.fixture
def hooks() -> Iterator[NotifyServer]:
    server = NotifyServer()
    yield server
    server.stop()


def _send(config: ProviderConfig) -> tuple[str, str]:
    with requests.Session() as session:
        sent = send_requests(
            session, providers.build(config, EVENT), config, take_slot=lambda host: None, timeout_s=5
        )
    return sent.result, sent.error


def _slack(hooks: NotifyServer, path: str) -> ProviderConfig:
    return ProviderConfig(type="slack", address=hooks.url(path), channel="C1", token="xoxb-secret-token-123")


def test_slacks_web_api_refusal_inside_a_200_ends_the_send(hooks: NotifyServer) -> None:
    hooks.set("/api/chat.postMessage", body=json.dumps({"ok": False, "error": "channel_not_found"}).encode())
    result, error = _send(_slack(hooks, "/api/chat.postMessage"))
    assert result == "failed" and "channel_not_found" in error
    assert "xoxb-secret-token-123" not in error and "/api/" not in error


def test_slacks_web_api_rate_limit_inside_a_200_is_retried(hooks: NotifyServer) -> None:
    hooks.set("/api/chat.postMessage", body=json.dumps({"ok": False, "error": "ratelimited"}).encode())
    assert _send(_slack(hooks, "/api/chat.postMessage"))[0] == "throttled"


def test_slacks_web_api_ok_is_delivered(hooks: NotifyServer) -> None:
    hooks.set("/api/chat.postMessage", body=json.dumps({"ok": True}).encode())
    assert _send(_slack(hooks, "/api/chat.postMessage")) == ("delivered", "")
    [seen] = hooks.received("/api/chat.postMessage")
    assert seen.headers["Authorization"] == "Bearer xoxb-secret-token-123"


@pytest.mark.parametrize(
    ("status", "result"),
    [(500, "retry"), (503, "retry"), (408, "retry"), (429, "throttled"), (400, "failed"), (404, "failed")],
)
def test_the_answer_decides_what_happens_next(hooks: NotifyServer, status: int, result: str) -> None:
    hooks.set("/hook", status=status)
    assert _send(ProviderConfig(type="generic", address=hooks.url("/hook")))[0] == result


def test_an_address_that_is_not_a_url_is_never_retried() -> None:
    result, error = _send(ProviderConfig(type="generic", address="not-a-url/T0KEN"))
    assert result == "failed" and "T0KEN" not in error
