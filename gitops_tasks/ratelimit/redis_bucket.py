"""The global rate limiter: one token bucket per registry host in Redis, shared by every worker."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, Unpack

from gitops_tasks.ratelimit.base import (
    BucketOptions,
    Op,
    Outcome,
    TokenBucket,
)
from gitops_tasks.ratelimit.lua import BUCKET_SCRIPT

if TYPE_CHECKING:
    import redis


class BucketKeys(Protocol):
    """What the bucket needs of :class:`gitops_tasks.store.keys.Keys` (so this concern need not import it)."""

    def rate_bucket(self, host: str) -> str: ...


class RedisTokenBucket(TokenBucket):
    """Token buckets in the hashes ``keys.rate_bucket(host)``, on Redis's clock.

    Every operation is one ``EVALSHA`` of :data:`~gitops_tasks.ratelimit.lua.BUCKET_SCRIPT` (the
    script is loaded on first use, and again if Redis forgot it), so the limit, the 429 penalty and
    the recovery hold across every process on every machine that shares the Redis. Raises
    ``redis.RedisError`` when Redis is unreachable. ``client`` may decode responses or not.
    """

    def __init__(
        self,
        client: redis.Redis[Any],
        keys: BucketKeys,
        **options: Unpack[BucketOptions],
    ) -> None:
        super().__init__(**options)
        self.client = client
        self.keys = keys
        self._script = client.register_script(BUCKET_SCRIPT)

    def _apply(
        self, op: Op, host: str, *, now: float | None, block_s: float = 0.0, max_wait_s: float = 0.0
    ) -> Outcome:
        rps, burst = self.planned(host)
        clock = "" if now is None else repr(float(now))
        extra = block_s if op == "throttle" else max_wait_s
        limits = [rps, burst, self.floor_rps, self.recovery_quiet_s, self.recovery_step, extra]
        args: list[str | float] = [op, *limits, clock]
        wait, taken, rate, tokens, blocked, throttled_at, seen = self._script(
            keys=[self.keys.rate_bucket(host)], args=args
        )
        return Outcome(
            wait_s=float(wait),
            taken=int(taken) == 1,
            rate=float(rate),
            tokens=float(tokens),
            blocked_until=float(blocked),
            throttled_at=float(throttled_at) if throttled_at else None,
            now=float(seen),
        )

    def _throttled_at(self, host: str) -> float | None:
        raw = self.client.hget(self.keys.rate_bucket(host), "throttled_at")
        return float(raw) if raw else None
