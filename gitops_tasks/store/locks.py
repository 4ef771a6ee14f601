"""The two guards of DESIGN §4: at most one queued and one running task per object.

- :class:`EnqueueGuard`: a key set (``SET NX EX``) when a task is queued and cleared when it starts,
  so beat does not pile up copies when workers fall behind.
- :class:`RunLock`: a token lock with a TTL, renewed by a background thread while the task runs and
  released only by its holder; a killed worker's lock simply expires. A renewal that finds the lock
  gone or taken marks it ``lost``: the holder must then write no result (``store.runstate.finish``
  checks the lock itself). A run lock may carry a *lease*, the object's schedule entry, which each
  renewal moves to just after the new expiry, so beat sends the object again soon after its holder
  dies (see ``store.runstate``).
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

import redis

from gitops_tasks.objects.outcome import LockLost
from gitops_tasks.store.keys import Keys
from gitops_tasks.store.runstate import REDIS_NOW_LUA

log = logging.getLogger(__name__)


class EnqueueGuard:
    def __init__(self, client: redis.Redis, keys: Keys, *, ttl_s: int) -> None:
        self.client = client
        self.keys = keys
        self.ttl_s = ttl_s

    def claim(self, object_key: str, *, value: str = "1") -> bool:
        """True if no task was queued for the object (and now one may be)."""
        return bool(self.client.set(self.keys.guard(object_key), value, nx=True, ex=self.ttl_s))

    def claim_many(self, object_keys: list[str], *, value: str = "1") -> list[bool]:
        with self.client.pipeline(transaction=False) as pipe:
            for key in object_keys:
                pipe.set(self.keys.guard(key), value, nx=True, ex=self.ttl_s)
            return [bool(r) for r in pipe.execute()]

    def release(self, object_key: str) -> None:
        self.client.delete(self.keys.guard(object_key))

    def release_if(self, object_key: str, value: str) -> bool:
        """Release the guard only if it still has ``value`` (the one its claimer set, a token
        unique to that claim): never one that a later send claimed. True if it was released."""
        return bool(self.client.eval(RELEASE_SCRIPT, 1, self.keys.guard(object_key), value))

    def is_set(self, object_key: str) -> bool:
        return bool(self.client.exists(self.keys.guard(object_key)))


# KEYS[1] lock key; ARGV[1] token; ARGV[2] ttl in ms. Returns 1 if renewed (still ours), else 0.
RENEW_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
# KEYS[1] lock key, KEYS[2] schedule zset; ARGV[1] token, ARGV[2] ttl in ms, ARGV[3] object key,
# ARGV[4] the lease last written (epoch s), ARGV[5] the lease margin (s). Returns the new lease
# (epoch s on Redis's clock, as text: the lock's new expiry plus the margin) if renewed (still
# ours), else 0. The schedule entry moves on only if nothing moved it earlier meanwhile (a request
# or a changed spec made it due: that must stand).
RENEW_LEASE_SCRIPT = (
    REDIS_NOW_LUA
    + """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local lease = now + tonumber(ARGV[2]) / 1000 + tonumber(ARGV[5])
local due = redis.call('ZSCORE', KEYS[2], ARGV[3])
if due and tonumber(due) >= tonumber(ARGV[4]) - 0.001 then
  redis.call('ZADD', KEYS[2], 'XX', lease, ARGV[3])
end
return string.format('%.17g', lease)
"""
)
# KEYS[1] lock key; ARGV[1] token. Returns 1 if deleted (was ours), else 0.
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class _Renewer:
    """One thread per process renews every held :class:`RunLock` (a thread per lock cost more CPU
    than the poll it guarded). Each lock is renewed once a third of its TTL has passed, and a lock's
    ``when_slow`` callback runs once the lock has been held that long."""

    def __init__(self) -> None:
        self._locks: dict[int, tuple[RunLock, float]] = {}
        #: id(lock) → (when the callback is due, on the monotonic clock; the callback).
        self._slow: dict[int, tuple[float, Callable[[], object]]] = {}
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def add(self, lock: RunLock) -> None:
        with self._wake:
            self._locks[id(lock)] = (lock, time.monotonic())
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._loop, name="run-lock renewer", daemon=True)
                self._thread.start()
            self._wake.notify()

    def when_slow(self, lock: RunLock, after_s: float, callback: Callable[[], object]) -> None:
        with self._wake:
            self._slow[id(lock)] = (time.monotonic() + after_s, callback)
            self._wake.notify()

    def retry_soon(self, lock: RunLock) -> None:
        """Renew ``lock`` again ``DEFAULT_RENEW_RETRY_S`` from now (a renewal failed to reach Redis)."""
        with self._wake:
            if id(lock) in self._locks:
                retry_at = time.monotonic() - lock.ttl_ms / 3000 + DEFAULT_RENEW_RETRY_S
                self._locks[id(lock)] = (lock, retry_at)
                self._wake.notify()

    def remove(self, lock: RunLock) -> None:
        with self._wake:
            self._locks.pop(id(lock), None)
            self._slow.pop(id(lock), None)

    def _due_callbacks(self, now: float) -> tuple[list[Callable[[], object]], float]:
        due, wait = [], DEFAULT_RENEWER_IDLE_S
        for key, (at, callback) in list(self._slow.items()):
            if now >= at:
                due.append(callback)
                del self._slow[key]
            else:
                wait = min(wait, at - now)
        return due, wait

    def _due(self) -> tuple[list[RunLock], float]:
        now = time.monotonic()
        due, wait = [], DEFAULT_RENEWER_IDLE_S
        for key, (lock, renewed) in list(self._locks.items()):
            period = lock.ttl_ms / 3000
            if now - renewed >= period:
                due.append(lock)
                self._locks[key] = (lock, now)
                wait = min(wait, period)
            else:
                wait = min(wait, period - (now - renewed))
        return due, wait

    def _loop(self) -> None:
        while True:
            with self._wake:
                due, wait = self._due()
                callbacks, callback_wait = self._due_callbacks(time.monotonic())
                if not due and not callbacks:
                    self._wake.wait(timeout=min(wait, callback_wait))
                    continue
            for lock in due:
                lock.renew_once()
            for callback in callbacks:
                try:
                    callback()
                except Exception:
                    log.exception("a run-lock callback failed")


#: Longest the renewer sleeps when it holds no lock (seconds).
DEFAULT_RENEWER_IDLE_S = 5.0
#: Delay before retrying a renewal that could not reach Redis (seconds; the TTL covers two periods).
DEFAULT_RENEW_RETRY_S = 0.5
_renewer = _Renewer()


@dataclass
class Lease:
    """A schedule entry kept just after a run lock's expiry while the lock is renewed."""

    schedule_key: str
    member: str
    #: The due time last written (epoch seconds on Redis's clock).
    due_at: float
    #: Seconds after the lock's expiry at which the entry is due.
    margin_s: float


class RunLock:
    """A renewable lock on one key. Use ``acquire()`` then ``release()``, or ``with lock:``."""

    def __init__(
        self,
        client: redis.Redis,
        key: str,
        *,
        ttl_s: float,
        owner: str = "",
        task_id: str | None = None,
        lease: Lease | None = None,
    ) -> None:
        self.client = client
        self.key = key
        self.ttl_ms = int(ttl_s * 1000)
        token = f"{owner}:{secrets.token_hex(8)}" if owner else secrets.token_hex(8)
        #: The token ends with ``:<task id>`` when given, so a redelivered copy of the same task
        #: can tell that it is already running (``store.runstate.begin``).
        self.token = f"{token}:{task_id}" if task_id else token
        self.lease = lease
        #: True once a renewal found the lock gone or taken (it expired: another holder may run).
        self.lost = False
        #: Until when (monotonic clock) the lock is known to stand: set before each successful
        #: write of its TTL, so it errs early.
        self._held_until = 0.0

    def acquire(self) -> bool:
        sent = time.monotonic()
        if not self.client.set(self.key, self.token, nx=True, px=self.ttl_ms):
            return False
        self._held_until = sent + self.ttl_ms / 1000
        self.keep_alive()
        return True

    def keep_alive(self) -> None:
        """Start renewing a lock this holder has just set (by ``acquire`` or in a pipeline)."""
        self._held_until = max(self._held_until, time.monotonic() + self.ttl_ms / 1000 / 2)
        _renewer.add(self)

    def ensure_held(self) -> None:
        """Raise :class:`~gitops_tasks.objects.outcome.LockLost` unless this holder still has the
        lock: call it before each side effect. Reads the lock (one round trip); when Redis cannot
        be reached, the lock counts as held only while its last written TTL surely stands."""
        if self.lost:
            raise LockLost(f"lock {self.key} was lost")
        try:
            holder = self.client.get(self.key)
        except redis.RedisError as exc:
            if time.monotonic() < self._held_until:
                return
            raise LockLost(f"lock {self.key} could not be confirmed: {type(exc).__name__}") from exc
        if holder != self.token:
            self.lost = True
            _renewer.remove(self)
            raise LockLost(f"lock {self.key} is {'held by ' + holder if holder else 'gone'}")

    def when_slow(self, after_s: float, callback: Callable[[], object]) -> None:
        """Call ``callback`` (from the renewer thread) if this lock is still kept alive ``after_s``
        from now. It may run just as the holder finishes: make it check that the lock is still held."""
        _renewer.when_slow(self, after_s, callback)

    def stop_renewing(self) -> None:
        _renewer.remove(self)

    def renew_once(self) -> None:
        sent = time.monotonic()
        try:
            if self.lease is None:
                renewed = self.client.eval(RENEW_SCRIPT, 1, self.key, self.token, self.ttl_ms)
            else:
                lease = self.lease
                renewed = self.client.eval(
                    RENEW_LEASE_SCRIPT,
                    2,
                    self.key,
                    lease.schedule_key,
                    self.token,
                    self.ttl_ms,
                    lease.member,
                    repr(lease.due_at),
                    lease.margin_s,
                )
                if renewed:
                    lease.due_at = float(renewed)
        except redis.RedisError:
            # Redis unreachable for a moment: try again shortly (the TTL covers two periods).
            log.warning("could not renew lock %s; retrying in %gs", self.key, DEFAULT_RENEW_RETRY_S)
            _renewer.retry_soon(self)
            return
        if renewed:
            self._held_until = sent + self.ttl_ms / 1000
            return
        self.lost = True
        _renewer.remove(self)
        log.warning("lock %s expired or was taken while held; its holder must write nothing", self.key)

    def release(self) -> None:
        self.stop_renewing()
        self.client.eval(RELEASE_SCRIPT, 1, self.key, self.token)

    def holder(self) -> str | None:
        return self.client.get(self.key)

    def __enter__(self) -> RunLock:
        if not self.acquire():
            raise RuntimeError(f"lock {self.key} is held by {self.holder()}")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
