"""Beat's dispatch against a real Redis, the scheduler driven directly: only entries it both claimed
and moved on are sent, and guards it may have claimed before an outage are released afterwards,
only where they are still its own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from beat_schedule import entry_for
from beat_schedule.scheduler import CatalogScheduler
from gitops_tasks.app import make_app
from gitops_tasks.objects import load_text
from gitops_tasks.tasks.context import Context

REPOSITORY = """apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: app, namespace: default}
spec: {interval: 1m, url: "https://example.invalid/app.git"}
"""
KEY = "GitRepository/default/app"


@pytest.fixture
def beat(ctx: Context) -> Iterator[CatalogScheduler]:
    ctx.catalog.apply(load_text(REPOSITORY, filename="app.yaml"), entry_for=entry_for)
    scheduler = CatalogScheduler(app=make_app(ctx.settings, set_as_current=False), settings=ctx.settings)
    yield scheduler
    scheduler.close()


def make_due(ctx: Context) -> float:
    seconds, micros = ctx.client.time()
    due = seconds + micros / 1e6 - 1
    ctx.client.zadd(ctx.keys.schedule, {KEY: due}, xx=True)
    return due


def queued(ctx: Context) -> int:
    return int(ctx.client.llen(f"{ctx.keys.prefix}git"))


def test_an_entry_that_changed_after_beat_read_it_is_not_sent(
    beat: CatalogScheduler, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a due repository, whose entry a starting task moves to its lease just after beat read it
    make_due(ctx)
    lease = make_due(ctx) + 30
    read_meta = beat._client.hmget

    def a_task_takes_its_lease(*args: Any, **kwargs: Any) -> Any:
        found = read_meta(*args, **kwargs)
        ctx.client.zadd(ctx.keys.schedule, {KEY: lease}, xx=True)
        return found

    monkeypatch.setattr(beat._client, "hmget", a_task_takes_its_lease)

    # When beat ticks
    beat.tick()

    # Then it sends nothing (the task has the object in hand), leaves the lease, and frees the guard
    assert (beat.sent, queued(ctx)) == (0, 0)
    assert ctx.client.zscore(ctx.keys.schedule, KEY) == pytest.approx(lease)
    assert not ctx.guard.is_set(KEY)


def test_a_guard_claimed_as_the_reply_was_lost_is_released_once_redis_answers(
    beat: CatalogScheduler, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a due repository, and a connection that dies just after Redis ran beat's claims
    make_due(ctx)
    pipeline = beat._client.pipeline

    class ReplyLost:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.pipe = pipeline(*args, **kwargs)

        def __enter__(self) -> ReplyLost:
            return self

        def __exit__(self, *exc: object) -> None:
            self.pipe.reset()

        def __getattr__(self, name: str) -> Any:
            return getattr(self.pipe, name)

        def execute(self) -> Any:
            self.pipe.execute()
            raise redis.ConnectionError("Connection closed by server.")

    monkeypatch.setattr(beat._client, "pipeline", ReplyLost)

    # When beat ticks during that outage, then again once Redis answers
    beat.tick()
    assert ctx.guard.is_set(KEY) and queued(ctx) == 0
    monkeypatch.undo()
    beat.tick()

    # Then its guard was released and the repository is sent at once, not an hour later
    assert (beat.sent, queued(ctx)) == (1, 1)


def test_after_an_outage_beat_releases_only_a_guard_it_set(beat: CatalogScheduler, ctx: Context) -> None:
    # Given a guard beat could not confirm before an outage, that a send after it replaced
    beat._unsent[KEY] = "beat:0123456789abcdef"
    assert ctx.guard.claim(KEY, value="send:fedcba9876543210")

    # When beat releases what it left behind
    beat.tick()

    # Then the newer guard stands: its task is still queued
    assert ctx.client.get(ctx.keys.guard(KEY)) == "send:fedcba9876543210"
    assert not beat._unsent
