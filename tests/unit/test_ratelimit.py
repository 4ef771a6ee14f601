"""The per-host token bucket, run on the real Redis and on the in-process double alike.

Most tests pass ``now`` explicitly (a clock of their own), so counts are exact on both backends;
the few that use the real clock assert bounds that hold however slow the machine is.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis

from gitops_tasks.ratelimit import BucketState, MemoryTokenBucket, RateLimited, RedisTokenBucket, TokenBucket
from gitops_tasks.tasks.context import Context

T0 = 1_700_000_000.0


def approx(expected: Any) -> Any:
    """Equal to the microsecond: not relatively (1e-6 of T0 is half an hour), and a double holds a
    Unix time only to 0.24 µs."""
    return pytest.approx(expected, rel=1e-12, abs=1e-6)


@dataclass
class Backend:
    """Builds buckets of one kind; ``peer`` is the same limiter as another worker sees it."""

    name: str
    make: Callable[..., TokenBucket]
    peer: Callable[[TokenBucket], TokenBucket]
    clients: list[redis.Redis[Any]] = field(default_factory=list)


@pytest.fixture(params=["redis", "memory"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        yield Backend("memory", lambda **kw: MemoryTokenBucket(**{"margin": 0, **kw}), lambda bucket: bucket)
        return
    ctx: Context = request.getfixturevalue("ctx")
    url = ctx.settings.effective_redis_url()
    clients: list[redis.Redis[Any]] = []

    def peer(bucket: TokenBucket) -> TokenBucket:
        assert isinstance(bucket, RedisTokenBucket)
        client = redis.Redis.from_url(url, decode_responses=True)
        clients.append(client)
        return RedisTokenBucket(
            client,
            ctx.keys,
            rps=bucket.default_limits.rps,
            burst=bucket.default_limits.burst,
            floor_rps=bucket.floor_rps,
            recovery_quiet_s=bucket.recovery_quiet_s,
            recovery_step=bucket.recovery_step,
            margin=bucket.margin,
        )

    def make(**kw: Any) -> TokenBucket:
        return RedisTokenBucket(ctx.client, ctx.keys, **{"margin": 0, **kw})

    yield Backend("redis", make, peer, clients)
    for client in clients:
        client.close()


def grants_over(bucket: TokenBucket, host: str, *, start: float, seconds: float, step_s: float) -> int:
    """Try as often as possible at every tick of a fake clock; count the tokens taken."""
    granted = 0
    for tick in range(round(seconds / step_s) + 1):
        while bucket.try_acquire(host, now=start + tick * step_s) == 0:
            granted += 1
    return granted


def test_full_bucket_gives_the_burst_then_the_steady_rate(backend: Backend) -> None:
    bucket = backend.make(rps=20, burst=5)
    assert grants_over(bucket, "ghcr.io", start=T0, seconds=1.0, step_s=0.001) == 5 + 20


def test_empty_bucket_answers_the_wait_for_the_next_token_and_takes_nothing(backend: Backend) -> None:
    bucket = backend.make(rps=20, burst=2)
    assert [bucket.try_acquire("ghcr.io", now=T0) for _ in range(3)] == [0, 0, approx(0.05)]
    assert bucket.try_acquire("ghcr.io", now=T0 + 0.02) == approx(0.03)
    assert bucket.try_acquire("ghcr.io", now=T0 + 0.02) == approx(0.03)
    assert bucket.state("ghcr.io", now=T0 + 0.02)["tokens"] == approx(0.4)
    assert bucket.try_acquire("ghcr.io", now=T0 + 0.05) == 0


def test_burst_then_steady_rate_on_the_real_clock(backend: Backend) -> None:
    bucket = backend.make(rps=20, burst=5)
    granted, start = 0, time.monotonic()
    while time.monotonic() - start < 1.0:
        granted += bucket.try_acquire("ghcr.io") == 0
    elapsed = time.monotonic() - start
    # Never more than the bucket allows; missing a few only if this process was descheduled.
    assert granted <= 5 + 20 * elapsed + 1
    assert granted >= 0.8 * (5 + 20 * 1.0)


def test_acquire_sleeps_once_until_its_reserved_slot(backend: Backend) -> None:
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(seconds)

    bucket = backend.make(rps=4, burst=1, sleep=sleep)
    assert bucket.acquire("ghcr.io", max_wait_s=1) == 0
    start = time.monotonic()
    waited = bucket.acquire("ghcr.io", max_wait_s=1)
    # One sleep of the time to the slot (at most 1/4 s), not a polling loop
    assert len(sleeps) == 1
    assert waited == sleeps[0]
    assert 0 < waited <= 0.25
    assert time.monotonic() - start >= waited
    assert bucket.try_acquire("ghcr.io") > 0, "the slot was used"


def test_acquire_raises_rate_limited_instead_of_waiting_longer_than_allowed(backend: Backend) -> None:
    sleeps: list[float] = []
    bucket = backend.make(rps=0.1, burst=1, sleep=sleeps.append)
    bucket.acquire("ghcr.io", max_wait_s=0)
    with pytest.raises(RateLimited) as raised:
        bucket.acquire("ghcr.io", max_wait_s=5)
    assert sleeps == [], "gave up without sleeping"
    assert raised.value.host == "ghcr.io"
    assert 5 < raised.value.retry_after_s <= 10
    assert "registry host ghcr.io: rate limited" in str(raised.value)
    assert bucket.state("ghcr.io")["tokens"] > -1, "a refused reservation takes nothing"


def test_acquire_with_a_fake_sleep_counts_the_seconds_waited() -> None:
    clock = [T0]
    bucket = MemoryTokenBucket(
        rps=4, burst=1, margin=0, clock=lambda: clock[0], sleep=lambda s: clock.__setitem__(0, clock[0] + s)
    )
    assert [bucket.acquire("quay.io", max_wait_s=1) for _ in range(3)] == [0, 0.25, 0.25]


def test_reservations_hand_out_consecutive_slots_first_come_first_served(backend: Backend) -> None:
    bucket = backend.make(rps=10, burst=2)
    seen = [bucket.reserve("ghcr.io", max_wait_s=1, now=T0) for _ in range(5)]
    assert [s.taken for s in seen] == [True] * 5
    assert [s.wait_s for s in seen] == [0, 0, approx(0.1), approx(0.2), approx(0.3)]
    assert seen[-1].tokens == approx(-3), "three slots reserved ahead"
    # A reservation too far away is refused and takes nothing; the queue is unchanged
    refused = bucket.reserve("ghcr.io", max_wait_s=0.35, now=T0)
    assert not refused.taken and refused.wait_s == approx(0.4)
    assert bucket.reserve("ghcr.io", max_wait_s=1, now=T0 + 0.1).wait_s == approx(0.3)
    # A plain take never reserves
    assert bucket.try_acquire("ghcr.io", now=T0 + 0.1) == approx(0.4)


def test_reserved_slots_admit_no_more_than_burst_plus_rate_per_window(backend: Backend) -> None:
    bucket = backend.make(rps=20, burst=5)
    rng = random.Random(3)
    now, slots = T0, []
    for _ in range(400):
        now += rng.choice([0, 0, 0.001, 0.01, 0.05])
        seen = bucket.reserve("ghcr.io", max_wait_s=0.5, now=now)
        if seen.taken:
            slots.append(now + seen.wait_s)
    slots.sort()
    for w in (0.05, 0.1, 0.5, 1, 3):
        most = max(sum(1 for t in slots[i:] if t <= start + w + 1e-9) for i, start in enumerate(slots))
        assert most <= 5 + 20 * w + 1e-6, f"window {w}s: {most} slots"


def test_a_429_voids_slots_reserved_before_it(backend: Backend) -> None:
    bucket = backend.make(rps=20, burst=1)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 1:  # while the first waiter sleeps, another worker hits a 429
            other.throttled("ghcr.io", retry_after_s=0.3)
        time.sleep(seconds)

    bucket = backend.make(rps=20, burst=1, sleep=sleep)
    other = backend.peer(bucket)
    assert bucket.acquire("ghcr.io", max_wait_s=2) == 0
    start = time.monotonic()
    bucket.acquire("ghcr.io", max_wait_s=2)
    assert len(slept) == 2, "woke for a void slot, reserved again, slept until after the block"
    assert time.monotonic() - start >= 0.3 - 0.01


def test_margin_plans_below_the_configured_rate_and_burst(backend: Backend) -> None:
    bucket = backend.make(rps=50, burst=10, margin=0.02)
    assert bucket.planned("ghcr.io") == (approx(49.0), 9)
    assert grants_over(bucket, "ghcr.io", start=T0, seconds=10, step_s=0.001) == 9 + 490
    assert bucket.state("ghcr.io", now=T0)["configured_rps"] == 50, "status shows what was configured"
    assert backend.make(rps=5, burst=1, margin=0.1).planned("quay.io") == (approx(4.5), 1)
    with pytest.raises(ValueError, match="margin"):
        backend.make(rps=5, burst=1, margin=0.7)


def test_throttle_halves_the_rate_but_not_below_the_floor(backend: Backend) -> None:
    bucket = backend.make(rps=40, burst=5, floor_rps=6)
    rates = []
    for i in range(4):
        bucket.throttled("docker.io", retry_after_s=0, now=T0 + i)
        rates.append(bucket.state("docker.io", now=T0 + i)["rate"])
    assert rates == [20, 10, 6, 6]


def test_the_reduced_rate_paces_requests_after_a_throttle(backend: Backend) -> None:
    bucket = backend.make(rps=20, burst=5)
    bucket.throttled("docker.io", retry_after_s=0, now=T0)
    # One request may go at once, then one per 1/10 s.
    assert grants_over(bucket, "docker.io", start=T0, seconds=1.0, step_s=0.001) == 1 + 10


def test_retry_after_blocks_every_worker_until_it_ends(backend: Backend) -> None:
    bucket = backend.make(rps=20, burst=5)
    other = backend.peer(bucket)
    # Given a full bucket, when one worker gets a 429 with Retry-After: 2
    bucket.throttled("docker.io", retry_after_s=2, now=T0)
    # Then nobody may send for 2 s, whatever tokens there were
    assert other.try_acquire("docker.io", now=T0 + 0.5) == approx(1.5)
    assert other.try_acquire("docker.io", now=T0 + 1.999) == approx(0.001)
    assert other.state("docker.io", now=T0 + 1)["blocked_for_s"] == approx(1)
    # And afterwards one request goes, the next after 1/10 s (the halved rate)
    assert other.try_acquire("docker.io", now=T0 + 2) == 0
    assert bucket.try_acquire("docker.io", now=T0 + 2) == approx(0.1)


def test_429_without_retry_after_blocks_for_the_default_backoff_and_long_ones_are_capped(
    backend: Backend,
) -> None:
    bucket = backend.make(rps=20, burst=5, throttle_backoff_s=3, max_retry_after_s=30)
    bucket.throttled("docker.io", retry_after_s=None, now=T0)
    assert bucket.state("docker.io", now=T0)["blocked_until"] == approx(T0 + 3)
    bucket.throttled("quay.io", retry_after_s=86400, now=T0)
    assert bucket.try_acquire("quay.io", now=T0) == approx(30)


def test_429s_answering_requests_sent_before_the_block_do_not_halve_again(backend: Backend) -> None:
    bucket = backend.make(rps=40, burst=5)
    bucket.throttled("docker.io", retry_after_s=1, now=T0)
    bucket.throttled("docker.io", retry_after_s=2, now=T0 + 0.5)
    state = bucket.state("docker.io", now=T0 + 0.5)
    assert (state["rate"], state["blocked_until"], state["throttled_at"]) == (20, T0 + 2.5, T0)


def test_rate_recovers_one_step_per_quiet_period_after_the_block(backend: Backend) -> None:
    bucket = backend.make(rps=40, burst=5, recovery_quiet_s=10, recovery_step=0.1)
    bucket.throttled("docker.io", retry_after_s=1, now=T0)

    def rate(at: float) -> float:
        return bucket.state("docker.io", now=T0 + at)["rate"]

    assert [rate(1), rate(10.9), rate(11), rate(21), rate(41)] == [20, 20, 24, 28, 36]
    assert [rate(51), rate(1000)] == [40, 40]
    # A new 429 halves the rate as recovered so far.
    bucket.throttled("docker.io", retry_after_s=0, now=T0 + 21)
    assert rate(21) == 14


def test_per_host_overrides_replace_the_defaults_field_by_field(backend: Backend) -> None:
    bucket = backend.make(
        rps=20, burst=5, host_overrides={"ghcr.io": {"rps": 2, "burst": 3}, "quay.io": {"burst": 1}}
    )
    assert [bucket.configured(h) for h in ("ghcr.io", "quay.io", "docker.io")] == [(2, 3), (20, 1), (20, 5)]
    assert [bucket.try_acquire("ghcr.io", now=T0) for _ in range(4)] == [0, 0, 0, approx(0.5)]
    assert [bucket.try_acquire("quay.io", now=T0) for _ in range(2)] == [0, approx(0.05)]


def test_invalid_limits_are_rejected_naming_the_host_and_field(backend: Backend) -> None:
    with pytest.raises(ValueError, match=r"registry_hosts\.ghcr\.io: unknown field\(s\) rate"):
        backend.make(rps=20, burst=5, host_overrides={"ghcr.io": {"rate": 2}})
    with pytest.raises(ValueError, match=r"registry_hosts\.ghcr\.io rps=0"):
        backend.make(rps=20, burst=5, host_overrides={"ghcr.io": {"rps": 0}})
    with pytest.raises(ValueError, match=r"registry burst=0\.5"):
        backend.make(rps=20, burst=0.5)


def test_one_hosts_throttling_leaves_other_hosts_alone(backend: Backend) -> None:
    bucket = backend.make(rps=20, burst=5)
    bucket.throttled("docker.io", retry_after_s=60, now=T0)
    assert [bucket.try_acquire("ghcr.io", now=T0) for _ in range(5)] == [0] * 5
    assert bucket.state("ghcr.io", now=T0)["rate"] == 20
    assert bucket.state("ghcr.io", now=T0)["throttled_at"] is None


def test_state_changes_nothing(backend: Backend) -> None:
    bucket = backend.make(rps=20, burst=2)
    for _ in range(5):
        assert bucket.state("ghcr.io", now=T0)["tokens"] == 2
    assert bucket.state("ghcr.io", now=T0) == {
        "host": "ghcr.io",
        "configured_rps": 20,
        "burst": 2,
        "rate": 20,
        "tokens": 2,
        "blocked_until": 0,
        "blocked_for_s": 0,
        "throttled_at": None,
        "now": T0,
    }


# --- Redis only -------------------------------------------------------------------------------


def test_each_try_acquire_is_a_single_evalsha(ctx: Context) -> None:
    bucket = RedisTokenBucket(ctx.client, ctx.keys, rps=1000, burst=1000)
    bucket.try_acquire("ghcr.io")  # loads the script
    ctx.client.config_resetstat()
    for _ in range(20):
        bucket.try_acquire("ghcr.io")
    stats = ctx.client.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] == 20
    assert not {"cmdstat_eval", "cmdstat_script|load", "cmdstat_hget", "cmdstat_hgetall"} & set(stats)


def test_a_waiting_acquire_costs_one_evalsha_and_one_hget(ctx: Context) -> None:
    bucket = RedisTokenBucket(ctx.client, ctx.keys, rps=50, burst=1, margin=0)
    bucket.acquire("ghcr.io", max_wait_s=1)  # loads the script, takes the burst
    ctx.client.config_resetstat()
    # An acquire descheduled for longer than a slot (20 ms) finds a token free and does not wait:
    # count the ones that waited rather than assume all ten did.
    waited = sum(bucket.acquire("ghcr.io", max_wait_s=1) > 0 for _ in range(10))
    stats = ctx.client.info("commandstats")
    assert waited > 0
    assert stats["cmdstat_evalsha"]["calls"] == 10
    assert stats.get("cmdstat_hget", {"calls": 0})["calls"] == waited


def test_bucket_key_expires_only_once_full_unblocked_and_recovered(ctx: Context) -> None:
    bucket = RedisTokenBucket(
        ctx.client, ctx.keys, rps=10, burst=5, recovery_quiet_s=60, recovery_step=0.5, margin=0
    )
    key = ctx.keys.rate_bucket("ghcr.io")
    bucket.try_acquire("ghcr.io")
    assert 0 < ctx.client.pttl(key) <= 1100  # refilled in 0.1 s, plus a second's margin
    bucket.throttled("ghcr.io", retry_after_s=5)
    # Blocked 5 s, then one quiet period (60 s) to climb from 5 back to 10 rps.
    assert 65_000 < ctx.client.pttl(key) <= 66_100
    assert bucket.state("quay.io")["tokens"] == 5
    assert not ctx.client.exists(ctx.keys.rate_bucket("quay.io")), "peeking writes nothing"


def test_works_on_a_client_that_does_not_decode_responses(ctx: Context) -> None:
    raw = redis.Redis.from_url(ctx.settings.effective_redis_url())
    try:
        bucket = RedisTokenBucket(raw, ctx.keys, rps=20, burst=1)
        bucket.throttled("ghcr.io", retry_after_s=0.5)
        assert 0.4 < bucket.try_acquire("ghcr.io") <= 0.5
        assert bucket.state("ghcr.io")["throttled_at"] is not None
    finally:
        raw.close()


def numbers(state: BucketState) -> list[float]:
    fields = ("rate", "tokens", "blocked_until", "blocked_for_s", "throttled_at", "now")
    return [-1.0 if state[f] is None else float(state[f]) for f in fields]  # type: ignore[literal-required]


def test_redis_and_memory_answer_the_same_to_the_same_history(ctx: Context) -> None:
    options: dict[str, Any] = {
        "rps": 15,
        "burst": 4,
        "host_overrides": {"ghcr.io": {"rps": 3, "burst": 2}},
        "floor_rps": 2,
        "recovery_quiet_s": 1.5,
        "recovery_step": 0.25,
    }
    on_redis = RedisTokenBucket(ctx.client, ctx.keys, **options)
    in_memory = MemoryTokenBucket(**options)
    rng = random.Random(7)
    now = T0
    for _ in range(600):
        now += rng.choice([0, 0.001, 0.03, 0.2, 0.7])
        host = rng.choice(["ghcr.io", "docker.io", "quay.io"])
        if rng.random() < 0.04:
            retry_after = rng.choice([None, 0, 0.5, 2])
            on_redis.throttled(host, retry_after_s=retry_after, now=now)
            in_memory.throttled(host, retry_after_s=retry_after, now=now)
        else:
            assert on_redis.try_acquire(host, now=now) == approx(in_memory.try_acquire(host, now=now))
        assert numbers(on_redis.state(host, now=now)) == approx(numbers(in_memory.state(host, now=now)))
