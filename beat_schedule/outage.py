"""Beat through a Redis outage: which errors mean "Redis is unreachable", backoff, two log lines.

Pure apart from logging: :class:`Outage` is told of each failed and each good tick and answers how
long to wait before the next try. It logs one line when an outage starts and one when it ends
(with its length), never one per tick.
"""

from __future__ import annotations

import logging
import time

import redis
from kombu.exceptions import OperationalError

log = logging.getLogger("beat_schedule.scheduler")

#: Errors that mean Redis (or the broker) cannot be used now: beat waits and tries again.
#: ``ReadOnlyError``: a replica that refuses writes, as during a failover.
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError, OperationalError, OSError)

#: First wait after a failed tick; doubled per consecutive failure up to ``DEFAULT_MAX_BACKOFF_S``.
DEFAULT_FIRST_BACKOFF_S = 0.5
#: Longest wait between two tries while Redis is unreachable.
DEFAULT_MAX_BACKOFF_S = 5.0


class Outage:
    def __init__(
        self, *, first_s: float = DEFAULT_FIRST_BACKOFF_S, max_s: float = DEFAULT_MAX_BACKOFF_S
    ) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self.failures = 0
        self.since: float | None = None

    @property
    def ongoing(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException, *, where: str, now: float | None = None) -> float:
        """Record a failed tick; return the seconds to wait before the next."""
        now = time.time() if now is None else now
        if self.since is None:
            self.since = now
            log.warning(
                "Redis at %s is unreachable (%s: %s); retrying with backoff until it is back",
                where,
                type(exc).__name__,
                exc,
            )
        delay = min(self.max_s, self.first_s * 2**self.failures)
        self.failures += 1
        return delay

    def recovered(self, *, where: str, now: float | None = None) -> None:
        """Record a good tick (logs the end of an outage, if one was going on)."""
        if self.since is None:
            return
        now = time.time() if now is None else now
        log.warning(
            "Redis at %s is reachable again after %.1f s; resuming the schedule", where, now - self.since
        )
        self.since = None
        self.failures = 0
