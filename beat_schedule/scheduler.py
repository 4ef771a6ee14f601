"""A Celery beat scheduler driven by the catalog's schedule in Redis.

Each tick takes the objects whose due time has passed (a sorted set scored by epoch seconds), claims
their enqueue guards, sends a task for each claimed one and moves every due object one interval on
(±jitter). Objects whose guard was already set are moved on without a new task: their previous task
is still queued, so a backlog never piles up copies. Applying, changing, suspending or deleting an
object edits the sorted set directly, so beat never needs a restart.

Several beats may run: a leader lock in Redis lets one schedule while the others stand by.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import time
from typing import Any

from celery.beat import Scheduler

from gitops_tasks.objects.model import ObjectRef
from gitops_tasks.settings import Settings
from gitops_tasks.store import EnqueueGuard, Keys, connect
from gitops_tasks.tasks.enqueue import send

log = logging.getLogger(__name__)

#: Most due objects handled in one pass (the tick loops until none are due).
DEFAULT_BATCH = 500
#: An object sent more than this long after it was due counts as late (its next run is spread).
DEFAULT_LATE_S = 1.0
#: Lifetime of the leader lock; the leader renews it every tick.
DEFAULT_LEADER_TTL_S = 15.0

# KEYS[1] leader key; ARGV[1] our token; ARGV[2] ttl ms. Returns 1 if we lead (now or already).
_LEAD = """
local holder = redis.call('GET', KEYS[1])
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


# KEYS[1] schedule zset; ARGV: (object key, score read, next score) triples. Moves each entry to its
# next score if it still has the score read. Returns how many moved.
_MOVE_ON = """
local moved = 0
for i = 1, #ARGV, 3 do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and math.abs(tonumber(score) - tonumber(ARGV[i + 1])) < 0.001 then
    redis.call('ZADD', KEYS[1], ARGV[i + 2], ARGV[i])
    moved = moved + 1
  end
end
return moved
"""


class CatalogScheduler(Scheduler):
    """``celery beat -S beat_schedule.scheduler:CatalogScheduler``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._settings: Settings = kwargs.pop("settings", None) or Settings.from_env()
        self._client = connect(self._settings)
        self._keys = Keys(self._settings.key_prefix)
        self._guard = EnqueueGuard(self._client, self._keys, ttl_s=self._settings.enqueue_guard_ttl_s)
        self._token = secrets.token_hex(8)
        self._lead = self._client.register_script(_LEAD)
        self._move_on = self._client.register_script(_MOVE_ON)
        self._rng = random.Random()
        self.sent = 0
        super().__init__(*args, **kwargs)

    def setup_schedule(self) -> None:
        self.data: dict[str, Any] = {}

    @property
    def schedule(self) -> dict[str, Any]:
        return self.data

    def tick(self, *args: Any, **kwargs: Any) -> float:
        tick_s = self._settings.beat_tick_s
        if not self._lead(
            keys=[self._keys.beat_leader], args=[self._token, int(DEFAULT_LEADER_TTL_S * 1000)]
        ):
            return min(DEFAULT_LEADER_TTL_S / 3, 5.0)
        while self._dispatch_due() >= DEFAULT_BATCH:
            # A long backlog must not outlive the leader lock, or a standby would start sending too.
            self._lead(keys=[self._keys.beat_leader], args=[self._token, int(DEFAULT_LEADER_TTL_S * 1000)])
        upcoming = self._client.zrange(self._keys.schedule, 0, 0, withscores=True)
        if not upcoming:
            return tick_s
        return max(0.0, min(tick_s, upcoming[0][1] - time.time()))

    def _dispatch_due(self) -> int:
        now = time.time()
        due = self._client.zrangebyscore(
            self._keys.schedule, "-inf", now, start=0, num=DEFAULT_BATCH, withscores=True
        )
        if not due:
            return 0
        object_keys = [key for key, _score in due]
        metas = self._client.hmget(self._keys.schedule_meta, object_keys)
        claims = self._guard.claim_many(object_keys)
        next_scores: dict[str | bytes, float] = {}
        to_send: list[tuple[str, float, dict[str, Any]]] = []
        for (key, due_at), meta_raw, claimed in zip(due, metas, claims, strict=True):
            if meta_raw is None:
                continue
            meta = json.loads(meta_raw)
            next_scores[key] = now + self._next_in(float(meta["interval_s"]), late_s=now - due_at)
            if claimed:
                to_send.append((key, due_at, meta))
        # Moved on before sending, and only where nobody moved the entry since it was read: a
        # task that starts moves its own entry (the run lock's lease, see
        # gitops_tasks.store.runstate), and that must not be overwritten.
        if next_scores:
            scores = dict(due)
            pairs = [v for key, at in next_scores.items() for v in (key, repr(scores[key]), repr(at))]
            self._move_on(keys=[self._keys.schedule], args=pairs)
        retry: dict[str | bytes, float] = {}
        with self.app.producer_or_acquire() as producer:
            for key, due_at, meta in to_send:
                try:
                    send(
                        self.app,
                        ObjectRef.parse(key),
                        task=meta["task"],
                        queue=meta["queue"],
                        timeout_s=float(meta["timeout_s"]),
                        reason="schedule",
                        due=due_at,
                        producer=producer,
                    )
                    self.sent += 1
                except Exception:
                    log.exception("could not enqueue %s; will retry next tick", key)
                    self._guard.release(key)
                    retry[key] = now + 1.0
        if retry:
            self._client.zadd(self._keys.schedule, retry, xx=True)
        return len(due)

    def _next_in(self, interval_s: float, *, late_s: float) -> float:
        """Seconds until the next run of an object sent now, ``late_s`` after it was due.

        On time: the interval ±jitter. Late (a burst after a bulk apply or a beat outage): a random
        point in the second half of the interval, so a burst spreads out instead of coming back
        whole every interval; the object still never waits longer than its interval.
        """
        jitter = self._settings.jitter
        if late_s > DEFAULT_LATE_S:
            return interval_s * self._rng.uniform(0.5, 1.0)
        return interval_s * (1 + self._rng.uniform(-jitter, jitter))

    def sync(self) -> None:
        """Nothing to persist: the schedule lives in Redis."""

    def close(self) -> None:
        self._client.delete(self._keys.beat_leader) if self._client.get(
            self._keys.beat_leader
        ) == self._token else None
        super().close()

    @property
    def info(self) -> str:
        return f"    . catalog schedule -> {self._keys.schedule} (redis)"
