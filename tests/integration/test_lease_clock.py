"""Run-lock leases count on Redis's clock, as beat does: a worker whose clock is off does not move
its objects' schedule entries early or late (the lease margin is only a second)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from beat_schedule import entry_for
from gitops_tasks.objects import load_text
from gitops_tasks.objects.model import Object
from gitops_tasks.objects.outcome import Outcome
from gitops_tasks.store import runstate
from gitops_tasks.store.locks import Lease, RunLock
from gitops_tasks.tasks import runner
from gitops_tasks.tasks.context import Context

REPOSITORY = """apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: app, namespace: default}
spec: {interval: 1m, url: "https://example.invalid/app.git"}
"""
#: How far this test's "worker" clock is behind Redis's.
SKEW_S = 3600.0


def redis_now(ctx: Context) -> float:
    seconds, micros = ctx.client.time()
    return seconds + micros / 1e6


def test_a_lease_is_written_on_redis_clock_whatever_the_worker_clock_says(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a repository, and a worker whose clock is an hour slow
    [obj] = load_text(REPOSITORY, filename="app.yaml")
    ctx.catalog.apply([obj], entry_for=entry_for)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() - SKEW_S)
    seen: dict[str, float] = {}

    def read_lease(obj: Object, previous: dict[str, Any], run_ctx: Context) -> Outcome:
        seen["lease"] = float(ctx.client.zscore(ctx.keys.schedule, obj.ref.key) or 0)
        seen["now"] = redis_now(ctx)
        return Outcome("success", "Succeeded", "ok")

    # When it runs the repository
    runner.run(obj.ref, reason="manual", ctx=ctx, reconciler=read_lease, enqueue_dependent=lambda _: False)

    # Then the lease it held was the lock's TTL and the margin past Redis's time
    expected = ctx.settings.run_lock_ttl_s + runstate.DEFAULT_LEASE_MARGIN_S
    assert seen["lease"] - seen["now"] == pytest.approx(expected, abs=1.0)
    # And its next run is an interval (±jitter) after Redis's time, not an hour early
    next_in = float(ctx.client.zscore(ctx.keys.schedule, obj.ref.key) or 0) - redis_now(ctx)
    assert 50 < next_in <= 63


def test_a_renewal_moves_the_lease_on_redis_clock(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a held lock with a lease, renewed by a worker whose clock is an hour slow
    [obj] = load_text(REPOSITORY, filename="app.yaml")
    ctx.catalog.apply([obj], entry_for=entry_for)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() - SKEW_S)
    started = runstate.begin(ctx.client, ctx.keys, obj.ref, lock_token="me", lock_ttl_s=10, reason="manual")

    lease = Lease(ctx.keys.schedule, obj.ref.key, started.lease, runstate.DEFAULT_LEASE_MARGIN_S)
    lock = RunLock(ctx.client, ctx.keys.run_lock(obj.ref.key), ttl_s=10, lease=lease)
    lock.token = "me"

    # When it renews
    lock.renew_once()

    # Then the entry is 10 s and the margin past Redis's time
    due = float(ctx.client.zscore(ctx.keys.schedule, obj.ref.key) or 0)
    assert due == pytest.approx(lease.due_at)
    assert due - redis_now(ctx) == pytest.approx(10 + runstate.DEFAULT_LEASE_MARGIN_S, abs=1.0)
