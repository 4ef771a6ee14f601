"""The Redis side of one reconcile, batched: one round trip to start, one to finish.

Starting releases the enqueue guard, reads the object, takes the run lock and reads the request
token and previous status together; finishing stores the status (unless the object was deleted
meanwhile), moves the next run, releases the lock and reads the request token again, in one
transaction. Keeping these to two round trips matters when thousands of cheap polls run per minute.

A run that lasts longer than ``DEFAULT_RECONCILING_AFTER_S`` gets its ``Reconciling`` status from
:func:`mark_reconciling` (called by the lock's renewer thread); quicker runs, most polls and scans,
never write one. The mark is written only while the run still holds its lock, and ``finish``
stores the final status and releases the lock atomically, so a late mark can never overwrite it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import redis

from gitops_tasks.objects.model import Object, ObjectRef
from gitops_tasks.store.keys import Keys
from gitops_tasks.store.locks import RELEASE_SCRIPT
from gitops_tasks.store.status import PUT_IF_IN_CATALOG_SCRIPT

#: A run still going after this many seconds shows ``Reconciling`` in its status.
DEFAULT_RECONCILING_AFTER_S = 1.0

# KEYS[1] run lock, KEYS[2] catalog hash, KEYS[3] status hash; ARGV[1] lock token, ARGV[2] object
# key, ARGV[3] status JSON. Stores the status only while the lock is held by this token and the
# object is in the catalog; returns 1 when stored.
MARK_IF_HELD_SCRIPT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
return 1
"""


@dataclass
class Started:
    obj: Object | None
    locked: bool
    #: The latest ``reconcile`` request token (read before the run, see ``tasks.runner``).
    token: str | None
    previous: dict[str, Any]


def begin(client: redis.Redis, keys: Keys, ref: ObjectRef, *, lock_token: str, lock_ttl_s: float) -> Started:
    with client.pipeline(transaction=False) as pipe:
        pipe.delete(keys.guard(ref.key))
        pipe.hget(keys.catalog, ref.key)
        pipe.set(keys.run_lock(ref.key), lock_token, nx=True, px=int(lock_ttl_s * 1000))
        pipe.hget(keys.requests, ref.key)
        pipe.hget(keys.status, ref.key)
        _, raw, locked, token, status_raw = pipe.execute()
    return Started(
        obj=Object.from_json(raw) if raw else None,
        locked=bool(locked),
        token=token,
        previous=json.loads(status_raw) if status_raw else {},
    )


def finish(
    client: redis.Redis,
    keys: Keys,
    ref: ObjectRef,
    *,
    status: dict[str, Any] | None,
    next_run_in_s: float | None,
    lock_token: str,
) -> str | None:
    """Store ``status``, schedule the next run, release the lock; return the request token now."""
    # Plain EVAL: a Script object in a pipeline costs an extra SCRIPT EXISTS round trip. One
    # transaction, so a Reconciling mark (MARK_IF_HELD_SCRIPT) runs entirely before or after it.
    with client.pipeline(transaction=True) as pipe:
        if status is not None:
            pipe.eval(PUT_IF_IN_CATALOG_SCRIPT, 2, keys.catalog, keys.status, ref.key, json.dumps(status))
        if next_run_in_s is not None:
            pipe.zadd(keys.schedule, {ref.key: time.time() + next_run_in_s}, xx=True)
        pipe.eval(RELEASE_SCRIPT, 1, keys.run_lock(ref.key), lock_token)
        pipe.hget(keys.requests, ref.key)
        results = pipe.execute()
    token: str | None = results[-1]
    return token


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
