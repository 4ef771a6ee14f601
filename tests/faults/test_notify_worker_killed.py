"""A worker killed (SIGKILL) while its notification is in flight loses nothing: another worker
sends it once the claim's lease runs out (at-least-once: the provider saw the first attempt too)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from beat_schedule import entry_for
from gitops_tasks.objects import load_text
from gitops_tasks.objects.model import ObjectRef
from gitops_tasks.tasks.context import Context
from tests.notifyserver import STALLED, NotifyServer, provider_and_alert
from tests.procs import Proc, wait_for


@pytest.fixture
def hooks() -> Iterator[NotifyServer]:
    server = NotifyServer()
    yield server
    server.stop()


def test_a_notification_in_flight_when_its_worker_dies_is_sent_by_another(
    ctx: Context, procs: Callable[..., Proc], hooks: NotifyServer
) -> None:
    # Given a provider that holds the first request for longer than the test takes to kill
    hooks.set("/killed", script=["stall"], stall_s=20.0)
    ctx.catalog.apply(
        load_text(provider_and_alert(hooks.url("/killed"), timeout="30s"), filename="notify.yaml"),
        entry_for=entry_for,
    )
    env = {"GITOPS_TASKS_NOTIFY_LEASE_S": "4", "GITOPS_TASKS_NOTIFY_TICK_S": "0.2"}
    first = procs("worker", "-c", "2", env=env, name="worker-a")
    wait_for(lambda: " ready." in first.log(), timeout_s=60, what="worker-a to be ready")
    ctx.events.emit(
        ObjectRef("Kustomization", "default", "app"), severity="error", reason="Failed", message="boom"
    )

    # When the worker dies with the request in flight
    wait_for(lambda: hooks.received("/killed"), what="the first attempt")
    first.kill()
    second = procs("worker", "-c", "2", env=env, name="worker-b")

    # Then the other worker sends it once the lease is over, and the outbox is empty
    wait_for(lambda: hooks.delivered("/killed"), timeout_s=60, what="the second attempt")
    assert [r.status for r in hooks.received("/killed")] == [STALLED, 200]
    assert [r.json()["message"] for r in hooks.received("/killed")] == ["boom", "boom"]
    stats = ctx.client.hgetall(ctx.keys.notify_stats("Alert/default/all"))
    wait_for(lambda: ctx.client.hget(ctx.keys.notify_stats("Alert/default/all"), "pending") == "0")
    assert " ready." in second.log() and stats.get("failed") is None
