"""The outbox's edges, driven in this process against a real Redis and the tests' webhook server:
a record past its age limit, a suspended Provider, a deleted Alert, a router that died mid-batch."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from beat_schedule import entry_for
from gitops_tasks.notify import dispatch
from gitops_tasks.notify.outbox import CONSUMER, GROUP, Outbox
from gitops_tasks.objects import load_text
from gitops_tasks.objects.model import ObjectRef
from gitops_tasks.tasks import notify as notify_tasks
from gitops_tasks.tasks.context import Context
from tests.notifyserver import NotifyServer, provider_and_alert
from tests.procs import wait_for

ALERT = ObjectRef("Alert", "default", "all")


@pytest.fixture
def hooks() -> Iterator[NotifyServer]:
    server = NotifyServer()
    yield server
    server.stop()


def _objects(address: str, *, suspend: bool = False) -> str:
    return provider_and_alert(address, suspend=suspend)


def _with(ctx: Context, **settings: float) -> Context:
    return Context(dataclasses.replace(ctx.settings, **settings))


def _run(ctx: Context) -> dict[str, int]:
    return dispatch.run_once(notify_tasks.router(ctx), notify_tasks.deliverer(ctx), concurrency=2, budget_s=5)


def _emit(ctx: Context, message: str) -> None:
    ctx.events.emit(
        ObjectRef("Kustomization", "default", "app"), severity="error", reason="Failed", message=message
    )


def _pending(ctx: Context) -> int:
    return int(ctx.client.hget(ctx.keys.notify_stats(ALERT.key), "pending") or 0)


def test_a_delivery_failing_past_its_age_limit_ends_with_an_event(ctx: Context, hooks: NotifyServer) -> None:
    hooks.set("/old", status=503)
    ctx = _with(ctx, notify_max_age_s=0.0)
    ctx.catalog.apply(load_text(_objects(hooks.url("/old")), filename="n.yaml"), entry_for=entry_for)
    _emit(ctx, "too late")

    assert _run(ctx) == {"routed": 1, "failed": 1}

    [event] = ctx.events.recent(ref=ALERT)
    assert event.reason == "NotificationDispatchFailed"
    assert "HTTP 503" in event.message and "gave up after 1 attempts" in event.message
    assert _pending(ctx) == 0


def test_a_suspended_provider_holds_its_deliveries_until_it_is_resumed(
    ctx: Context, hooks: NotifyServer
) -> None:
    ctx = _with(ctx, notify_backoff_max_s=0.2)
    ctx.catalog.apply(load_text(_objects(hooks.url("/held")), filename="n.yaml"), entry_for=entry_for)
    _emit(ctx, "wait for me")
    notify_tasks.router(ctx).route_all()
    ctx.catalog.apply(
        load_text(_objects(hooks.url("/held"), suspend=True), filename="n.yaml"), entry_for=entry_for
    )

    assert _run(ctx).get("held") == 1
    assert hooks.received("/held") == [] and _pending(ctx) == 1

    ctx.catalog.apply(load_text(_objects(hooks.url("/held")), filename="n.yaml"), entry_for=entry_for)
    wait_for(lambda: _run(ctx).get("delivered"), what="the held delivery to go")
    assert [r.json()["message"] for r in hooks.delivered("/held")] == ["wait for me"]


def test_the_deliveries_of_a_deleted_alert_are_dropped_quietly(ctx: Context, hooks: NotifyServer) -> None:
    ctx.catalog.apply(load_text(_objects(hooks.url("/deleted")), filename="n.yaml"), entry_for=entry_for)
    _emit(ctx, "nobody wants me")
    notify_tasks.router(ctx).route_all()
    ctx.catalog.delete(ALERT)

    assert _run(ctx).get("skipped") == 1
    assert hooks.received("/deleted") == [] and ctx.events.recent(ref=ALERT) == []


def test_events_a_dead_router_had_read_are_routed_once_by_the_next(ctx: Context, hooks: NotifyServer) -> None:
    ctx.catalog.apply(load_text(_objects(hooks.url("/again")), filename="n.yaml"), entry_for=entry_for)
    _emit(ctx, "first")
    _emit(ctx, "second")
    outbox = Outbox(ctx.client, ctx.keys)
    outbox.ensure_group()
    # A router reads both and dies before routing them: they stay pending in the group.
    ctx.client.xreadgroup(GROUP, CONSUMER, {ctx.keys.notify_inbox: ">"}, count=10)

    assert _run(ctx) == {"routed": 2, "delivered": 2}
    assert [r.json()["message"] for r in hooks.delivered("/again")] == ["first", "second"]
    assert ctx.client.xlen(ctx.keys.notify_inbox) == 0 and _pending(ctx) == 0


def test_the_catalog_collector_reports_the_backlog_per_provider(ctx: Context, hooks: NotifyServer) -> None:
    from prometheus_client.core import GaugeMetricFamily

    from gitops_tasks.metrics.catalog import CatalogCollector

    def backlog() -> dict[tuple[str, ...], float]:
        metrics = list(CatalogCollector(ctx.client, ctx.keys, queues=()).collect())
        family = next(m for m in metrics if m.name == "gitops_tasks_notification_backlog")
        assert isinstance(family, GaugeMetricFamily)
        return {tuple(s.labels.values()): s.value for s in family.samples}

    hooks.set("/backlog", status=503)
    ctx = _with(ctx, notify_backoff_max_s=0.2)
    ctx.catalog.apply(load_text(_objects(hooks.url("/backlog")), filename="n.yaml"), entry_for=entry_for)
    assert backlog() == {("default", "hook"): 0.0}
    _emit(ctx, "one")
    _emit(ctx, "two")
    notify_tasks.router(ctx).route_all()
    assert list(backlog().values()) == [2.0]
    hooks.set("/backlog", status=200)
    wait_for(
        lambda: _run(ctx).get("delivered") and list(backlog().values()) == [0.0], what="the backlog to drain"
    )
