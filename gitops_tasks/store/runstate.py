"""The Redis side of one reconcile, batched: one round trip to start, one to finish.

Starting (:func:`begin`, one script) releases the enqueue guard, reads the object, takes the run
lock and reads the request token and previous status. Finishing (:func:`finish`, one script) stores
the status, moves the next run and releases the lock, all only while the run still holds its lock:
a run whose lock expired (its worker stalled and another may have taken over) writes nothing.
Keeping these to two round trips matters when thousands of cheap polls run per minute.

**No request is lost.** A run that finds the lock held records a *pending* request (its reason) in
the same script; the holder's :func:`finish` reads and clears it atomically with the release, and
then owes a run that starts after it: the object's schedule entry is made due at once (so beat
serves it even if the holder dies right after) and the holder re-queues it. Because taking the lock
and recording the request are one script, and releasing and reading it another, every request
either finds the lock free and runs, or is seen by the holder's finish.

**A dead worker's objects come back quickly.** While a run holds its lock, the object's schedule
entry is a *lease*: due just after the lock would expire (on Redis's clock), pushed on by each renewal.
A worker that dies stops renewing; its locks expire within ``run_lock_ttl_s`` and beat then sends
the object again, without waiting for the broker's visibility timeout.

A run that lasts longer than ``DEFAULT_RECONCILING_AFTER_S`` gets its ``Reconciling`` status from
:func:`mark_reconciling` (called by the lock's renewer thread); quicker runs, most polls and scans,
never write one. The mark is written only while the run still holds its lock, and ``finish``
stores the final status and releases the lock atomically, so a late mark can never overwrite it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import redis

from gitops_tasks.objects.model import Object, ObjectRef
from gitops_tasks.store.keys import Keys

#: A run still going after this many seconds shows ``Reconciling`` in its status.
DEFAULT_RECONCILING_AFTER_S = 1.0
#: A held lock's object is due this long after the lock would expire (a copy sent too early finds
#: the lock held and moves the entry again). Leases count on Redis's clock (``TIME``), as beat does,
#: so a worker's clock skew does not eat this margin.
DEFAULT_LEASE_MARGIN_S = 1.0

#: Lua defining ``now``: Redis's clock in epoch seconds (the one every lease and beat count on).
REDIS_NOW_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

# KEYS[1] run lock, KEYS[2] catalog hash, KEYS[3] status hash; ARGV[1] lock token, ARGV[2] object
# key, ARGV[3] status JSON. Stores the status only while the lock is held by this token and the
# object is in the catalog; returns 1 when stored.
MARK_IF_HELD_SCRIPT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
return 1
"""

# KEYS[1] enqueue guard, KEYS[2] catalog hash, KEYS[3] run lock, KEYS[4] requests hash, KEYS[5]
# status hash, KEYS[6] pending hash, KEYS[7] schedule zset; ARGV[1] object key, ARGV[2] lock token,
# ARGV[3] lock TTL ms, ARGV[4] request reason, ARGV[5] unused, ARGV[6] unused, ARGV[7] lease
# margin s, ARGV[8] task id or ''.
# Returns {object JSON or false, state, request token or false, status JSON or false, lease}, state
# being 'locked' (this run goes ahead), 'held' (another run holds the lock; the request is pending)
# or 'duplicate' (the holder runs this very task: a broker redelivery, nothing to record); lease is
# the due time written while locked (epoch s on Redis's clock, as text).
BEGIN_SCRIPT = (
    REDIS_NOW_LUA
    + """
local lease = now + tonumber(ARGV[3]) / 1000 + tonumber(ARGV[7])
redis.call('DEL', KEYS[1])
local obj = redis.call('HGET', KEYS[2], ARGV[1])
local state = 'locked'
if redis.call('SET', KEYS[3], ARGV[2], 'NX', 'PX', ARGV[3]) then
  redis.call('HDEL', KEYS[6], ARGV[1])
  redis.call('ZADD', KEYS[7], 'XX', lease, ARGV[1])
else
  local holder = redis.call('GET', KEYS[3])
  local tid = ':' .. ARGV[8]
  if ARGV[8] ~= '' and holder and string.sub(holder, -#tid) == tid then
    state = 'duplicate'
  else
    state = 'held'
    if obj then
      redis.call('HSET', KEYS[6], ARGV[1], ARGV[4])
      local left_ms = redis.call('PTTL', KEYS[3])
      if left_ms < 0 then left_ms = 0 end
      local due = now + left_ms / 1000 + tonumber(ARGV[7])
      redis.call('ZADD', KEYS[7], 'XX', 'LT', due, ARGV[1])
    end
  end
end
local token, status = redis.call('HGET', KEYS[4], ARGV[1]), redis.call('HGET', KEYS[5], ARGV[1])
return {obj, state, token, status, string.format('%.17g', lease)}
"""
)

# KEYS[1] run lock, KEYS[2] catalog hash, KEYS[3] status hash, KEYS[4] schedule zset, KEYS[5]
# pending hash, KEYS[6] requests hash; ARGV[1] lock token, ARGV[2] object key, ARGV[3] status JSON
# or '', ARGV[4] seconds to the next run or '' (counted on Redis's clock), ARGV[5] unused.
# Returns {1, pending reason or false, request token or false} when this run still held the lock
# (status stored unless the object left the catalog, next run moved, lock released), {0} when it
# did not (nothing written).
FINISH_SCRIPT = (
    REDIS_NOW_LUA
    + """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0} end
if ARGV[3] ~= '' and redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
end
local pending = redis.call('HGET', KEYS[5], ARGV[2])
if pending then
  redis.call('HDEL', KEYS[5], ARGV[2])
  redis.call('ZADD', KEYS[4], 'XX', now, ARGV[2])
elseif ARGV[4] ~= '' then
  redis.call('ZADD', KEYS[4], 'XX', now + tonumber(ARGV[4]), ARGV[2])
end
redis.call('DEL', KEYS[1])
return {1, pending, redis.call('HGET', KEYS[6], ARGV[2])}
"""
)


@dataclass
class Started:
    obj: Object | None
    state: Literal["locked", "held", "duplicate"]
    #: The latest ``reconcile`` request token (read before the run, see ``tasks.runner``).
    token: str | None
    previous: dict[str, Any]
    #: The object's schedule entry while this run holds the lock (epoch s, Redis's clock).
    lease: float = 0.0

    @property
    def locked(self) -> bool:
        return self.state == "locked"


@dataclass
class Finished:
    #: False when the run's lock had expired or been taken: nothing was written.
    held: bool
    #: Reason of a request that arrived while the run held the lock (the run owes another).
    pending: str | None = None
    #: The latest ``reconcile`` request token, read as the lock was released.
    token: str | None = None


def begin(
    client: redis.Redis,
    keys: Keys,
    ref: ObjectRef,
    *,
    lock_token: str,
    lock_ttl_s: float,
    reason: str,
    task_id: str | None = None,
) -> Started:
    """Start a run of ``ref``: see the module docstring."""
    raw, state, token, status_raw, lease = client.eval(
        BEGIN_SCRIPT,
        7,
        keys.guard(ref.key),
        keys.catalog,
        keys.run_lock(ref.key),
        keys.requests,
        keys.status,
        keys.pending,
        keys.schedule,
        ref.key,
        lock_token,
        int(lock_ttl_s * 1000),
        reason,
        "",
        "",
        DEFAULT_LEASE_MARGIN_S,
        task_id or "",
    )
    return Started(
        obj=Object.from_json(raw) if raw else None,
        state=state,
        token=token,
        previous=json.loads(status_raw) if status_raw else {},
        lease=float(lease),
    )


def finish(
    client: redis.Redis,
    keys: Keys,
    ref: ObjectRef,
    *,
    status: dict[str, Any] | None,
    next_run_in_s: float | None,
    lock_token: str,
) -> Finished:
    """Store ``status``, schedule the next run and release the lock, if the lock is still ours."""
    # Plain EVAL: a Script object costs an extra SCRIPT EXISTS round trip. A script runs entirely
    # before or after a Reconciling mark (MARK_IF_HELD_SCRIPT).
    result = client.eval(
        FINISH_SCRIPT,
        6,
        keys.run_lock(ref.key),
        keys.catalog,
        keys.status,
        keys.schedule,
        keys.pending,
        keys.requests,
        lock_token,
        ref.key,
        "" if status is None else json.dumps(status),
        "" if next_run_in_s is None else repr(next_run_in_s),
        "",
    )
    if not result[0]:
        return Finished(held=False)
    return Finished(held=True, pending=result[1], token=result[2])


def mark_reconciling(
    client: redis.Redis, keys: Keys, ref: ObjectRef, *, status: dict[str, Any], lock_token: str
) -> bool:
    """Store the in-progress ``status`` if the run holding ``lock_token`` still runs; True if stored."""
    stored = client.eval(
        MARK_IF_HELD_SCRIPT,
        3,
        keys.run_lock(ref.key),
        keys.catalog,
        keys.status,
        lock_token,
        ref.key,
        json.dumps(status),
    )
    return bool(stored)
