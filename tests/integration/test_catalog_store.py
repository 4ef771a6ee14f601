"""The catalog's schedule entries on a real Redis."""

from __future__ import annotations

import time

from beat_schedule import entry_for
from gitops_tasks.objects.model import Object
from gitops_tasks.store.catalog import DEFAULT_FIRST_RUN_RATE


def repo(name: str, interval: str = "1m") -> Object:
    return Object(
        api_version="source.toolkit.fluxcd.io/v1",
        kind="GitRepository",
        name=name,
        namespace="default",
        spec={"url": "https://example.test/r.git", "interval": interval},
    )


def test_a_single_new_object_is_due_at_once(ctx) -> None:
    before = time.time()
    ctx.catalog.apply([repo("one")], entry_for=entry_for)
    assert ctx.client.zscore(ctx.keys.schedule, "GitRepository/default/one") <= time.time()
    assert ctx.client.zscore(ctx.keys.schedule, "GitRepository/default/one") >= before


def test_a_bulk_apply_spreads_first_runs_within_the_interval(ctx) -> None:
    objects = [repo(f"r{i}") for i in range(1000)]
    now = time.time()
    ctx.catalog.apply(objects, entry_for=entry_for, now=now)
    scores = sorted(score for _key, score in ctx.client.zrange(ctx.keys.schedule, 0, -1, withscores=True))
    assert len(scores) == 1000
    assert scores[0] == now
    assert scores[-1] - now <= 1000 / DEFAULT_FIRST_RUN_RATE
    assert scores[-1] - now > 1000 / DEFAULT_FIRST_RUN_RATE * 0.9
    # and re-applying the same objects moves nothing
    ctx.catalog.apply(objects, entry_for=entry_for, now=now + 100)
    assert sorted(s for _k, s in ctx.client.zrange(ctx.keys.schedule, 0, -1, withscores=True)) == scores


def test_spread_never_exceeds_a_short_interval(ctx) -> None:
    objects = [repo(f"f{i}", interval="2s") for i in range(2000)]
    now = time.time()
    ctx.catalog.apply(objects, entry_for=entry_for, now=now)
    last = ctx.client.zrange(ctx.keys.schedule, -1, -1, withscores=True)[0][1]
    assert last - now <= 2.0
