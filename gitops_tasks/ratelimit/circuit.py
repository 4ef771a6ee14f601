"""A per-host circuit breaker with exponential backoff, shared by every worker (DESIGN §6).

A registry host that answers 5xx, times out or refuses connections gets backed off for everyone,
as a 429 does in the token bucket; after ``threshold`` failed requests in a row its circuit opens:
scans of it fail at once, without a request, until a cool-down ends, and then one probe request is
let through (half-open). A success anywhere closes the circuit. Rules, per host:

- :meth:`HostCircuit.failed` counts a failed request and keeps the error's text. A failure that
  arrives while the host is not blocked raises the backoff *level* and blocks the host for
  ``backoff_initial_s · 2^(level-1)`` (capped at ``backoff_max_s``); one that arrives during a block
  answers a request sent before it (the same outage seen by several threads), so it counts towards
  the threshold but does not double the block again.
- :meth:`HostCircuit.admit` asks whether a request may go now. ``clean`` (no failure recorded) and
  ``go`` (failures below the threshold, no block) let it go; ``blocked`` (below the threshold) and
  ``open`` (at or above it) say how long to wait; after the block of an open circuit the first caller
  gets ``probe``, a lease of ``lease_s`` during which every other caller gets ``open``.
- :meth:`HostCircuit.succeeded` forgets the host (closed, level 0); :meth:`HostCircuit.release_probe`
  gives back a probe lease whose request was never sent.

The state expires ``forget_after_s`` after the last block ends, so a host that failed once long ago
starts clean. ``RedisHostCircuit`` keeps the state in one hash per host, changed by one Lua script
on Redis's clock; ``MemoryHostCircuit`` is the in-process double with the same rules.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypedDict, Unpack

#: Failed requests in a row after which a host's circuit opens (one probe at a time after that).
DEFAULT_CIRCUIT_FAILURES = 3
#: The first block after a failure; doubled per failure outside a block.
DEFAULT_HOST_BACKOFF_INITIAL_S = 0.5
#: The longest block (the cool-down between probes of a host that stays down).
DEFAULT_HOST_BACKOFF_MAX_S = 300.0
#: A host's failures are forgotten this long after its last block ended without news.
DEFAULT_FORGET_AFTER_S = 900.0
#: Characters of an error kept as the host's last error.
MAX_ERROR_CHARS = 300

Verdict = Literal["clean", "go", "probe", "blocked", "open"]
Op = Literal["admit", "fail", "release"]


@dataclass(frozen=True)
class Ask:
    """What one operation carries: the probe lease (admit), the error and whether it was the
    probe's (fail)."""

    lease_s: float = 0.0
    error: str = ""
    probe: bool = False


class CircuitOptions(TypedDict, total=False):
    """The keyword arguments every :class:`HostCircuit` takes."""

    threshold: int
    backoff_initial_s: float
    backoff_max_s: float
    forget_after_s: float


@dataclass(frozen=True)
class HostHealth:
    """What :meth:`HostCircuit.admit` or :meth:`HostCircuit.failed` saw. Times on the backend's clock
    (Redis: Unix seconds); ``wait_s`` is the time until the caller may try (0 when it may go)."""

    verdict: Verdict
    wait_s: float
    failures: int
    blocked_until: float
    last_error: str
    now: float

    @property
    def allowed(self) -> bool:
        return self.verdict in ("clean", "go", "probe")

    @property
    def open(self) -> bool:
        return self.verdict in ("open", "probe")


class HostCircuit(ABC):
    """Per-host circuits. Subclasses supply :meth:`_apply`; see the module docstring for the rules.

    Raises ``ValueError`` for a threshold below 1 or non-positive backoff times.
    """

    def __init__(
        self,
        *,
        threshold: int = DEFAULT_CIRCUIT_FAILURES,
        backoff_initial_s: float = DEFAULT_HOST_BACKOFF_INITIAL_S,
        backoff_max_s: float = DEFAULT_HOST_BACKOFF_MAX_S,
        forget_after_s: float = DEFAULT_FORGET_AFTER_S,
    ) -> None:
        if threshold < 1:
            raise ValueError(f"circuit threshold={threshold!r}: expected a whole number >= 1")
        if not (backoff_initial_s > 0 and backoff_max_s > 0 and forget_after_s > 0):
            raise ValueError("circuit backoff and forget times must be positive")
        self.threshold = threshold
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = max(backoff_max_s, backoff_initial_s)
        self.forget_after_s = forget_after_s

    def admit(self, host: str, *, lease_s: float, now: float | None = None) -> HostHealth:
        """May a request to ``host`` go now? A ``probe`` verdict holds the probe lease for ``lease_s``."""
        return self._apply("admit", host, now=now, ask=Ask(lease_s=lease_s))

    def failed(self, host: str, error: str, *, probe: bool = False, now: float | None = None) -> HostHealth:
        """Record a failed request (5xx, timeout, connection error) whose text is ``error``.

        ``probe``: the request was the probe, whose lease ends with it (other failures leave the
        lease alone: they answer requests sent before the circuit opened)."""
        return self._apply("fail", host, now=now, ask=Ask(error=error[:MAX_ERROR_CHARS], probe=probe))

    def release_probe(self, host: str, *, now: float | None = None) -> None:
        """Give back a probe lease whose call ended without hearing from ``host`` (its request was
        never sent: no free slot, rate limited), so another caller may probe at once."""
        self._apply("release", host, now=now, ask=Ask())

    def succeeded(self, host: str) -> None:
        """Record an answer from ``host``: its circuit closes for everyone."""
        self._forget(host)

    @abstractmethod
    def _apply(self, op: Op, host: str, *, now: float | None, ask: Ask) -> HostHealth: ...

    @abstractmethod
    def _forget(self, host: str) -> None: ...


@dataclass
class _State:
    failures: int = 0
    level: int = 0
    blocked_until: float = 0.0
    probe_until: float = 0.0
    last_error: str = ""
    expires: float = 0.0


def decide(
    state: _State | None,
    op: Op,
    *,
    now: float,
    ask: Ask,
    circuit: HostCircuit,
) -> tuple[_State | None, HostHealth]:
    """The rules on one host's state (pure; the Lua script in :mod:`.circuit_redis` mirrors it).

    Returns the new state (None: nothing to keep) and what the caller learns."""
    if state is not None and state.expires <= now:
        state = None
    if op == "fail":
        s = state or _State()
        s.failures += 1
        s.last_error = ask.error
        if ask.probe:
            s.probe_until = 0.0
        if now >= s.blocked_until:
            s.level += 1
            block_s = min(circuit.backoff_max_s, circuit.backoff_initial_s * 2.0 ** (s.level - 1))
            s.blocked_until = now + block_s
        s.expires = s.blocked_until + circuit.forget_after_s
        verdict: Verdict = "open" if s.failures >= circuit.threshold else "blocked"
        return s, HostHealth(verdict, s.blocked_until - now, s.failures, s.blocked_until, s.last_error, now)
    if state is None:
        return None, HostHealth("clean", 0.0, 0, 0.0, "", now)
    s = state
    if op == "release":
        s.probe_until = 0.0
        return s, HostHealth("open", 0.0, s.failures, s.blocked_until, s.last_error, now)
    opened = s.failures >= circuit.threshold
    if now < s.blocked_until:
        verdict, wait = ("open" if opened else "blocked"), s.blocked_until - now
    elif not opened:
        verdict, wait = "go", 0.0
    elif now < s.probe_until:
        verdict, wait = "open", s.probe_until - now
    else:
        s.probe_until = now + ask.lease_s
        s.expires = max(s.expires, s.probe_until + circuit.forget_after_s)
        verdict, wait = "probe", 0.0
    return s, HostHealth(verdict, wait, s.failures, s.blocked_until, s.last_error, now)


class MemoryHostCircuit(HostCircuit):
    """Circuits in a dict guarded by a lock; ``clock`` (default ``time.time``) is its time."""

    def __init__(self, *, clock: Callable[[], float] = time.time, **options: Unpack[CircuitOptions]) -> None:
        super().__init__(**options)
        self._clock = clock
        self._lock = threading.Lock()
        self._states: dict[str, _State] = {}

    def _apply(self, op: Op, host: str, *, now: float | None, ask: Ask) -> HostHealth:
        with self._lock:
            now = self._clock() if now is None else now
            state, health = decide(self._states.get(host), op, now=now, ask=ask, circuit=self)
            if state is None:
                self._states.pop(host, None)
            else:
                self._states[host] = state
            return health

    def _forget(self, host: str) -> None:
        with self._lock:
            self._states.pop(host, None)
