"""An in-process token bucket with the Redis one's semantics, for unit tests and parity checks.

Limits one process only; the production limiter is
:class:`~gitops_tasks.ratelimit.redis_bucket.RedisTokenBucket`. The arithmetic follows
``lua.py`` line for line, so the two answer the same to the same inputs.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Unpack

from gitops_tasks.ratelimit.base import (
    BucketOptions,
    Op,
    Outcome,
    TokenBucket,
)


@dataclass
class _Bucket:
    tokens: float
    ts: float
    base: float | None = None
    throttled_at: float | None = None
    blocked_until: float = 0.0


class MemoryTokenBucket(TokenBucket):
    """Token buckets in a dict guarded by a lock; ``clock`` (default ``time.monotonic``) is its time."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        **options: Unpack[BucketOptions],
    ) -> None:
        super().__init__(**options)
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}

    def _apply(
        self, op: Op, host: str, *, now: float | None, block_s: float = 0.0, max_wait_s: float = 0.0
    ) -> Outcome:
        cfg, burst = self.planned(host)
        floor, quiet, step = min(self.floor_rps, cfg), self.recovery_quiet_s, self.recovery_step
        with self._lock:
            now = self._clock() if now is None else now
            saved = self._buckets.get(host)
            b = _Bucket(float(burst), now) if saved is None else _Bucket(**vars(saved))
            rate = cfg
            if b.base is not None:
                periods = math.floor(max(0.0, now - b.blocked_until) / quiet)
                rate = min(cfg, b.base + periods * step * cfg)
            if now > b.ts:
                b.tokens = min(b.tokens + (now - b.ts) * rate, burst)
                b.ts = now

            wait, taken = 0.0, False
            if op == "throttle":
                if now >= b.blocked_until:
                    b.base = rate = max(floor, rate / 2)
                    b.throttled_at = now
                b.blocked_until = max(b.blocked_until, now + block_s)
                b.tokens, b.ts = 1.0, b.blocked_until
                wait = b.blocked_until - now
                self._buckets[host] = b
            else:
                wait = b.ts - now
                if (1 - b.tokens) / rate >= 1e-6:
                    wait += (1 - b.tokens) / rate
                if wait < 1e-6:
                    wait = 0.0
                allowed = max_wait_s if op == "reserve" else 0.0
                if op != "peek" and wait <= allowed:
                    b.tokens, taken = b.tokens - 1, True
                    self._buckets[host] = b
            return Outcome(wait, taken, rate, b.tokens, b.blocked_until, b.throttled_at, now)

    def _throttled_at(self, host: str) -> float | None:
        with self._lock:
            saved = self._buckets.get(host)
            return None if saved is None else saved.throttled_at
