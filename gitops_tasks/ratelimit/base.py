"""What every token-bucket backend shares: per-host configuration, waiting, the error and the state.

A backend implements one primitive, :meth:`TokenBucket._apply`, which runs one operation (take a
token, peek, or throttle) atomically on one host's bucket. The refill, penalty and recovery rules are
spelled out once in prose here and implemented twice: in Lua (``lua.py``) and in Python
(``memory.py``); the unit tests run the same behaviours on both.

Rules, per registry host:

- The bucket holds at most ``burst`` tokens and refills at the host's *current rate*; a request
  takes one token. A request that finds the bucket empty may *reserve* the next free slot instead
  (GCRA): the bucket goes into debt by one token, the caller learns when its slot comes and sleeps
  until then, and the next caller gets the slot after that. Waiters are served in order, with one
  round trip each, and the traffic admitted is the same as a plain bucket's: at most
  ``burst + rate × w`` requests in any window of ``w`` seconds. A reservation is refused (nothing
  taken) when its slot is further away than the caller may wait.
- The bucket plans with a safety margin (``margin``, default 2%): it spends at most
  ``(1 - margin)`` of the rate and keeps one token of the burst back (when the burst is 2 or more).
  The limit is kept where slots are handed out; a request reaches the registry a few ms after its
  slot, and those delays vary, which can bunch arrivals. The margin absorbs that, so the registry
  itself sees no more than the configured ``burst + rps × w``.
- A 429 (:meth:`TokenBucket.throttled`) halves the current rate, never below ``floor_rps``, and blocks
  everyone until ``now + Retry-After`` (``DEFAULT_THROTTLE_BACKOFF_S`` without the header). At the end
  of the block the bucket holds one token: one request may go at once, the rest follow at the
  reduced rate. Slots reserved before the 429 are void: a caller that wakes for its slot and finds
  the host throttled since it reserved asks again (:meth:`TokenBucket.acquire`). A 429 that
  arrives while the host is still blocked extends the block but does not halve again: it answers
  a request sent before the first 429, so it is the same signal.
- Recovery is additive (AIMD, as TCP): for every full ``recovery_quiet_s`` since the block ended, the
  rate regains ``recovery_step`` of the configured rate (default 10%), up to the configured rate.
  It is computed lazily from the stored rate and block end; nothing runs in the background.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Required, TypedDict

#: A throttled host's rate never drops below this (requests per second), so scans keep moving.
DEFAULT_FLOOR_RPS = 1.0
#: Seconds without a 429 (counted from the end of the block) before the rate climbs one step.
DEFAULT_RECOVERY_QUIET_S = 60.0
#: Fraction of the configured rate regained per quiet period (additive increase).
DEFAULT_RECOVERY_STEP = 0.1
#: How long a host is blocked after a 429 that carries no Retry-After.
DEFAULT_THROTTLE_BACKOFF_S = 10.0
#: Upper bound on an honoured Retry-After, so a bogus header cannot stall a host for days.
DEFAULT_MAX_RETRY_AFTER_S = 3600.0
#: Fraction of the configured rate the bucket leaves unused (see the module docstring); with a
#: margin above 0 one token of a burst of 2 or more is also kept back.
DEFAULT_MARGIN = 0.02

Op = Literal["take", "reserve", "peek", "throttle"]


class RateLimited(Exception):
    """A request to ``host`` would have to wait ``retry_after_s`` seconds, more than the caller allows.

    The caller should re-queue its work with that countdown rather than hold a worker slot.
    """

    def __init__(self, host: str, retry_after_s: float) -> None:
        super().__init__(f"registry host {host}: rate limited, next request allowed in {retry_after_s:.3f}s")
        self.host = host
        self.retry_after_s = retry_after_s


class BucketState(TypedDict):
    """A snapshot of one host's bucket (for status and debugging).

    Times are on the backend's clock (Redis: Unix seconds); ``blocked_until`` is 0 and
    ``throttled_at`` None for a host never throttled (or whose bucket has since expired).
    """

    host: str
    configured_rps: float
    burst: int
    rate: float
    tokens: float
    blocked_until: float
    blocked_for_s: float
    throttled_at: float | None
    now: float


@dataclass(frozen=True)
class Outcome:
    """What one atomic operation on a bucket saw and did.

    ``wait_s``: for ``take`` and ``peek``, 0 when a token is available now, else the time until one
    is; for ``reserve`` the time until the slot (taken or refused: see ``taken``); for ``throttle``
    the length of the block from ``now``. ``tokens`` is negative while slots are reserved ahead.
    """

    wait_s: float
    taken: bool
    rate: float
    tokens: float
    blocked_until: float
    throttled_at: float | None
    now: float


@dataclass(frozen=True)
class HostLimits:
    """The configured (unthrottled) limit of one host."""

    rps: float
    burst: int


class BucketOptions(TypedDict, total=False):
    """The keyword arguments every :class:`TokenBucket` takes (see its docstring)."""

    rps: Required[float]
    burst: Required[int]
    host_overrides: Mapping[str, Mapping[str, float]] | None
    floor_rps: float
    recovery_quiet_s: float
    recovery_step: float
    throttle_backoff_s: float
    max_retry_after_s: float
    margin: float
    sleep: Callable[[float], None]


class TokenBucket(ABC):
    """A per-host token bucket with a shared penalty after 429s. Subclasses supply :meth:`_apply`.

    ``rps``/``burst`` apply to every host without an entry in ``host_overrides``
    (``{"ghcr.io": {"rps": 20, "burst": 5}}``; a missing field falls back to the default).
    Raises ``ValueError`` naming the host and field when a value is out of range.
    """

    def __init__(
        self,
        *,
        rps: float,
        burst: int,
        host_overrides: Mapping[str, Mapping[str, float]] | None = None,
        floor_rps: float = DEFAULT_FLOOR_RPS,
        recovery_quiet_s: float = DEFAULT_RECOVERY_QUIET_S,
        recovery_step: float = DEFAULT_RECOVERY_STEP,
        throttle_backoff_s: float = DEFAULT_THROTTLE_BACKOFF_S,
        max_retry_after_s: float = DEFAULT_MAX_RETRY_AFTER_S,
        margin: float = DEFAULT_MARGIN,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.default_limits = _limits("registry", rps, burst)
        self.host_limits = {
            host: _overrides(host, fields, self.default_limits)
            for host, fields in (host_overrides or {}).items()
        }
        for name, value in (
            ("floor_rps", floor_rps),
            ("recovery_quiet_s", recovery_quiet_s),
            ("recovery_step", recovery_step),
        ):
            if not value > 0:
                raise ValueError(f"rate limiter {name}={value!r}: expected a positive number")
        if throttle_backoff_s < 0 or max_retry_after_s < 0:
            raise ValueError("rate limiter throttle_backoff_s and max_retry_after_s must be >= 0")
        if not 0 <= margin < 0.5:
            raise ValueError(f"rate limiter margin={margin!r}: expected a fraction from 0 to 0.5")
        self.floor_rps = floor_rps
        self.recovery_quiet_s = recovery_quiet_s
        self.recovery_step = recovery_step
        self.throttle_backoff_s = throttle_backoff_s
        self.max_retry_after_s = max_retry_after_s
        self.margin = margin
        self._sleep = sleep

    def configured(self, host: str) -> tuple[float, int]:
        """The host's configured ``(rps, burst)``, before any throttling."""
        limits = self.host_limits.get(host, self.default_limits)
        return limits.rps, limits.burst

    def planned(self, host: str) -> tuple[float, int]:
        """The ``(rate, burst)`` the bucket hands out for ``host``: the configured ones less the margin."""
        rps, burst = self.configured(host)
        if self.margin <= 0:
            return rps, burst
        return rps * (1.0 - self.margin), burst - 1 if burst >= 2 else burst

    def try_acquire(self, host: str, *, now: float | None = None) -> float:
        """Take one token for ``host`` if one is there now: 0.0 if taken, else the seconds until one is.

        Nothing is taken when the answer is positive (also while the host is blocked after a 429).
        ``now`` is for tests only (the backend's clock otherwise).
        """
        return self._apply("take", host, now=now).wait_s

    def reserve(self, host: str, *, max_wait_s: float, now: float | None = None) -> Outcome:
        """Reserve the next slot for ``host`` if it comes within ``max_wait_s``; see :class:`Outcome`."""
        return self._apply("reserve", host, now=now, max_wait_s=max(0.0, max_wait_s))

    def acquire(self, host: str, *, max_wait_s: float) -> float:
        """Take a slot for ``host`` and sleep until it comes, if that is within ``max_wait_s``.

        One round trip when a token is free; a caller that has to wait reserves its slot (first come,
        first served), sleeps once, and then checks that no 429 voided the reservation meanwhile (if
        one did, it reserves again within what is left of ``max_wait_s``). Returns the seconds slept.
        Raises :class:`RateLimited` (carrying the required wait) when the slot is further away than
        allowed; nothing is taken then.
        """
        slept = 0.0
        while True:
            seen = self.reserve(host, max_wait_s=max_wait_s - slept)
            if not seen.taken:
                raise RateLimited(host, seen.wait_s)
            if seen.wait_s <= 0:
                return slept
            self._sleep(seen.wait_s)
            slept += seen.wait_s
            if self._throttled_at(host) == seen.throttled_at:
                return slept

    def throttled(self, host: str, *, retry_after_s: float | None, now: float | None = None) -> None:
        """Record a 429 / TOOMANYREQUESTS from ``host``, for every worker at once.

        Halves the host's rate (not below ``floor_rps``) unless it is already blocked, and blocks it
        for ``retry_after_s`` (``throttle_backoff_s`` when None; capped at ``max_retry_after_s``).
        """
        block_s = self.throttle_backoff_s if retry_after_s is None else retry_after_s
        block_s = min(max(0.0, block_s), self.max_retry_after_s)
        self._apply("throttle", host, now=now, block_s=block_s)

    def state(self, host: str, *, now: float | None = None) -> BucketState:
        """The host's bucket as every worker sees it now; changes nothing."""
        seen = self._apply("peek", host, now=now)
        rps, burst = self.configured(host)
        return BucketState(
            host=host,
            configured_rps=rps,
            burst=burst,
            rate=seen.rate,
            tokens=seen.tokens,
            blocked_until=seen.blocked_until,
            blocked_for_s=max(0.0, seen.blocked_until - seen.now),
            throttled_at=seen.throttled_at,
            now=seen.now,
        )

    @abstractmethod
    def _apply(
        self, op: Op, host: str, *, now: float | None, block_s: float = 0.0, max_wait_s: float = 0.0
    ) -> Outcome:
        """Run ``op`` atomically on ``host``'s bucket following the module's rules."""

    @abstractmethod
    def _throttled_at(self, host: str) -> float | None:
        """When ``host`` was last throttled (as :attr:`Outcome.throttled_at`), read cheaply."""


def _limits(what: str, rps: float, burst: float) -> HostLimits:
    if not rps > 0:
        raise ValueError(f"{what} rps={rps!r}: expected a positive number of requests per second")
    if burst < 1 or int(burst) != burst:
        raise ValueError(f"{what} burst={burst!r}: expected a whole number >= 1")
    return HostLimits(float(rps), int(burst))


def _overrides(host: str, fields: Mapping[str, float], default: HostLimits) -> HostLimits:
    unknown = sorted(set(fields) - {"rps", "burst"})
    if unknown:
        raise ValueError(f"registry_hosts.{host}: unknown field(s) {', '.join(unknown)}; expected rps, burst")
    return _limits(
        f"registry_hosts.{host}", fields.get("rps", default.rps), fields.get("burst", default.burst)
    )
