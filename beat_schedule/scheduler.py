"""A Celery beat scheduler driven by the catalog's schedule in Redis.

Each tick takes the objects whose due time has passed (a sorted set scored by epoch seconds), claims
their enqueue guards, sends a task for each claimed one and moves every due object one interval on
(±jitter). Objects whose guard was already set are moved on without a new task: their previous task
is still queued, so a backlog never piles up copies. Applying, changing, suspending or deleting an
object edits the sorted set directly, so beat never needs a restart.

Several beats may run: a leader lock in Redis lets one schedule while the others stand by. The
lock outlives a short Redis outage (its TTL counts on Redis's clock, and a Redis that keeps its
data keeps it), so the leader leads again when Redis is back; after a longer one, or a Redis that
lost its data, whichever beat asks first leads.

Redis being unreachable does not stop beat: it waits with backoff (``outage``) and carries on. The
leader also watches the catalog's marker (``store.marker``): a catalog that vanished is logged at
ERROR and the start-up objects are applied again (``startup``).
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
import socket
import time
from typing import Any

from celery.beat import Scheduler

from beat_schedule.outage import UNREACHABLE, Outage
from beat_schedule.startup import apply_startup_paths
from gitops_tasks.metrics import health, instruments
from gitops_tasks.objects import LoadError
from gitops_tasks.objects.model import ObjectRef
from gitops_tasks.settings import Settings
from gitops_tasks.store import Catalog, EnqueueGuard, Keys, connect, marker
from gitops_tasks.tasks.enqueue import send

log = logging.getLogger(__name__)

#: Most due objects handled in one pass (the tick loops until none are due).
DEFAULT_BATCH = 500
#: An object sent more than this long after it was due counts as late (its next run is spread).
DEFAULT_LATE_S = 1.0
#: Lifetime of the leader lock; the leader renews it every tick.
DEFAULT_LEADER_TTL_S = 15.0
#: How often the leader checks the catalog's marker (a lost catalog is re-created this soon).
DEFAULT_MARKER_CHECK_S = 1.0

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
# next score if it still has the score read. Returns the keys moved.
_MOVE_ON = """
local moved = {}
for i = 1, #ARGV, 3 do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and math.abs(tonumber(score) - tonumber(ARGV[i + 1])) < 0.001 then
    redis.call('ZADD', KEYS[1], ARGV[i + 2], ARGV[i])
    moved[#moved + 1] = ARGV[i]
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
        # Names its holder (host and pid) for `gitops-tasks check`; the random part keeps it unique.
        self._token = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._lead = self._client.register_script(_LEAD)
        self._move_on = self._client.register_script(_MOVE_ON)
        self._rng = random.Random()
        self._catalog = Catalog(self._client, self._keys)
        self._where = marker.where(self._settings.effective_redis_url(), self._keys)
        self._watch = marker.CatalogWatch(self._client, self._keys, where=self._where, log=log)
        self._next_marker_check = 0.0
        self._outage = Outage()
        #: Object key → the guard value this beat claimed it with (or may have: the reply was lost),
        #: for objects whose task it could not send.
        self._unsent: dict[str, str] = {}
        self._closed = False
        self.sent = 0
        super().__init__(*args, **kwargs)

    def setup_schedule(self) -> None:
        self.data: dict[str, Any] = {}

    @property
    def schedule(self) -> dict[str, Any]:
        return self.data

    def tick(self, *args: Any, **kwargs: Any) -> float:
        """One pass; the seconds until the next. Redis being unreachable is waited out (see
        ``outage``): objects due meanwhile are sent once it is back, nothing is lost."""
        try:
            if self._unsent:
                self._release_unsent()
            delay = self._tick()
        except UNREACHABLE as exc:
            health.SCHEDULER.touch(role="unknown", redis="unreachable")
            return self._outage.failed(exc, where=self._where)
        self._outage.recovered(where=self._where)
        return delay

    def _tick(self) -> float:
        tick_s = self._settings.beat_tick_s
        leading = bool(
            self._lead(keys=[self._keys.beat_leader], args=[self._token, int(DEFAULT_LEADER_TTL_S * 1000)])
        )
        health.SCHEDULER.touch(role="leader" if leading else "standby", redis="ok")
        instruments.beat_leading(leading)
        if not leading:
            return min(DEFAULT_LEADER_TTL_S / 3, 5.0)
        if time.monotonic() >= self._next_marker_check:
            self._check_catalog()
        while self._dispatch_due() >= DEFAULT_BATCH:
            # A long backlog must not outlive the leader lock, or a standby would start sending too.
            self._lead(keys=[self._keys.beat_leader], args=[self._token, int(DEFAULT_LEADER_TTL_S * 1000)])
            health.SCHEDULER.touch()
        upcoming = self._client.zrange(self._keys.schedule, 0, 0, withscores=True)
        if not upcoming:
            return tick_s
        return max(0.0, min(tick_s, upcoming[0][1] - self._now()))

    def _check_catalog(self) -> None:
        """Create the catalog's marker on a fresh Redis; when the catalog is lost (its marker
        missing, or another epoch than the one seen), log it and re-apply the start-up objects."""
        first = self._watch.seen is None
        verdict = self._watch.check()
        self._next_marker_check = time.monotonic() + DEFAULT_MARKER_CHECK_S
        if verdict.state == "ok":
            return
        if verdict.lost:
            replaces = verdict.seen or ""
            try:
                applied = apply_startup_paths(
                    self._catalog, self._settings, created_by="beat", replaces=replaces
                )
            except LoadError as exc:
                log.error("could not re-apply the start-up objects:\n%s", "\n".join(exc.errors))
                applied = []
            if applied:
                log.warning(
                    "re-applied %d start-up object(s) from %s",
                    len(applied),
                    ", ".join(self._settings.catalog_paths),
                )
            else:
                log.error(
                    "no start-up objects to re-apply: apply the lost objects again (`gitops-tasks apply`)"
                )
            created_by = "beat"
        else:
            replaces, created_by = "", "beat start-up" if first else "beat"
        self._watch.adopt(marker.ensure(self._client, self._keys, created_by, replaces=replaces).epoch)

    def _release_unsent(self) -> None:
        """Release the guards claimed for objects whose task could not be sent (Redis went away
        between the claim and the send), so they are sent once they are due again. Only a guard
        still holding this beat's value is released: one set by a later send stays."""
        now = self._now()
        for key, value in sorted(self._unsent.items()):
            if self._guard.release_if(key, value):
                # The schedule may have moved on before the send failed: due now (never later).
                self._client.zadd(self._keys.schedule, {key: now}, xx=True, lt=True)
            del self._unsent[key]

    def _now(self) -> float:
        """Redis's clock (epoch s): the one run-lock leases are written on (``store.runstate``), so
        the hosts' clock skew cannot send a leased object early or late."""
        seconds, micros = self._client.time()
        return float(seconds) + micros / 1_000_000

    def _dispatch_due(self) -> int:
        now = self._now()
        due = self._client.zrangebyscore(
            self._keys.schedule, "-inf", now, start=0, num=DEFAULT_BATCH, withscores=True
        )
        if not due:
            return 0
        object_keys = [key for key, _score in due]
        metas = self._client.hmget(self._keys.schedule_meta, object_keys)
        # This tick's guard value: releasing after a failure deletes only a guard this tick set.
        value = f"beat:{secrets.token_hex(8)}"
        #: Keys whose guard this tick holds, or may hold (until the claims' replies say which).
        claimed: list[str] = object_keys
        sent_keys: set[str] = set()
        retry: dict[str | bytes, float] = {}
        try:
            claimed = [
                key
                for key, won in zip(
                    object_keys, self._guard.claim_many(object_keys, value=value), strict=True
                )
                if won
            ]
            to_send = self._move_on_due(due, metas, set(claimed), now=now)
            for key in set(claimed) - {key for key, _, _ in to_send}:
                # Deleted, or its entry changed since it was read (a task took its lease, a request
                # made it due): whoever changed it has the object in hand; no task from this tick.
                self._guard.release_if(key, value)
            claimed = [key for key, _, _ in to_send]
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
                        instruments.beat_sent(now - due_at)
                        sent_keys.add(key)
                    except UNREACHABLE:
                        raise
                    except Exception:
                        log.exception("could not enqueue %s; will retry next tick", key)
                        self._guard.release_if(key, value)
                        retry[key] = now + 1.0
        except UNREACHABLE:
            # Redis or the broker went away: every object claimed (or perhaps claimed: a reply may
            # be lost after Redis ran the command) and not sent yet is made due again, and its
            # guard released, once it is back.
            self._unsent.update({key: value for key in claimed if key not in sent_keys})
            raise
        if retry:
            self._client.zadd(self._keys.schedule, retry, xx=True)
        return len(due)

    def _move_on_due(
        self, due: list[tuple[str, float]], metas: list[str | None], claimed: set[str], *, now: float
    ) -> list[tuple[str, float, dict[str, Any]]]:
        """Move every due entry one interval on, where nobody moved it since it was read (a task
        that starts moves its own entry, the run lock's lease, see gitops_tasks.store.runstate,
        and that must stand); return the (key, due at, meta) to send: claimed and moved."""
        next_scores: dict[str, float] = {}
        read: dict[str, tuple[float, dict[str, Any]]] = {}
        for (key, due_at), meta_raw in zip(due, metas, strict=True):
            if meta_raw is None:
                continue
            meta = json.loads(meta_raw)
            next_scores[key] = now + self._next_in(float(meta["interval_s"]), late_s=now - due_at)
            read[key] = (due_at, meta)
        if not next_scores:
            return []
        pairs = [v for key, at in next_scores.items() for v in (key, repr(read[key][0]), repr(at))]
        moved = self._move_on(keys=[self._keys.schedule], args=pairs)
        return [(key, *read[key]) for key in moved if key in claimed]

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
        if self._closed:
            return
        self._closed = True
        try:
            if self._client.get(self._keys.beat_leader) == self._token:
                self._client.delete(self._keys.beat_leader)
        except UNREACHABLE as exc:
            log.warning("could not release the beat leader lock (Redis unreachable: %s); it expires", exc)
        super().close()

    @property
    def info(self) -> str:
        return f"    . catalog schedule -> {self._keys.schedule} (redis)"
