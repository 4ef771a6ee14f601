"""The delivery outbox in Redis: records, per-(alert, object) lanes in order, and when each is due.

A matched event becomes a record in the same atomic script that acknowledges it in the inbox, so
an event is either still in the inbox or in the outbox, never lost and never routed twice. Each
(alert, object) pair is a *lane*: a sorted set of record members (zero-padded event ids, so
members sort oldest first); only a lane's head is ever sent, so messages about one object reach
the provider in the order they happened. ``due`` holds each non-empty lane with the time its head
may be tried. A sender *claims* due lanes by moving them a lease ahead; a sender that dies
(worker killed mid-send) leaves its lane to come due again when the lease runs out, and the head
is sent again: delivery is at-least-once.

Every operation is one Lua script (atomic); each script's header names its KEYS and ARGV.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import redis

from gitops_tasks.store.keys import Keys

#: The consumer group (and its one consumer) that routes the inbox.
GROUP = "notify"
CONSUMER = "router"

_ROUTE = """
-- KEYS: 1 inbox stream, 2 due zset, 3 dedupe key, then per matched alert 5 keys:
--       lane zset, record hash, transitions state hash, alert stats hash, provider stats hash
-- ARGV: 1 group, 2 inbox entry id, 3 dedupe window ms (0: none), 4 now (s), 5 severity,
--       6 revision, then per matched alert 6 values: lane id, member, transitions ("1"/"0"),
--       alert key, provider key, event JSON
-- Returns: records created; -1 when the event repeats one sent within the dedupe window.
-- The inbox entry is acknowledged and deleted in every case.
local function ack()
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
  redis.call('XDEL', KEYS[1], ARGV[2])
end
local n = (#KEYS - 3) / 5
if n == 0 then ack() return 0 end
if tonumber(ARGV[3]) > 0 then
  if not redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3], 'NX') then ack() return -1 end
end
local failing = '0'
if ARGV[5] == 'error' then failing = '1' end
local revision = ARGV[6]
local created = 0
for i = 1, n do
  local k = 3 + (i - 1) * 5
  local a = 6 + (i - 1) * 6
  local send = true
  if ARGV[a + 3] == '1' then
    local state = redis.call('HMGET', KEYS[k + 3], 'failing', 'revision')
    local was, seen = state[1], state[2]
    send = (failing == '1' and was ~= '1') or (failing == '0' and was == '1')
      or (failing == '0' and revision ~= '' and revision ~= seen)
    redis.call('HSET', KEYS[k + 3], 'failing', failing)
    if revision ~= '' then redis.call('HSET', KEYS[k + 3], 'revision', revision) end
  end
  if send and redis.call('EXISTS', KEYS[k + 2]) == 0 then
    redis.call('HSET', KEYS[k + 2], 'event', ARGV[a + 6], 'alert', ARGV[a + 4],
      'provider', ARGV[a + 5], 'created', ARGV[4], 'attempts', 0)
    redis.call('ZADD', KEYS[k + 1], 0, ARGV[a + 2])
    redis.call('ZADD', KEYS[2], 'NX', ARGV[4], ARGV[a + 1])
    redis.call('HINCRBY', KEYS[k + 4], 'pending', 1)
    redis.call('HINCRBY', KEYS[k + 5], 'pending', 1)
    created = created + 1
  end
end
ack()
return created
"""

_CLAIM = """
-- KEYS: 1 due zset
-- ARGV: 1 now (s), 2 lease (s), 3 most lanes to claim
-- Returns: the lanes due by now, each moved a lease ahead (claimed by the caller until then).
local lanes = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
local until_ = tonumber(ARGV[1]) + tonumber(ARGV[2])
for _, lane in ipairs(lanes) do redis.call('ZADD', KEYS[1], until_, lane) end
return lanes
"""

_FINISH = """
-- KEYS: 1 due zset, 2 lane zset, 3 record hash, 4 alert stats hash, 5 provider stats hash
-- ARGV: 1 lane id, 2 member, 3 "delivered" or "failed", 4 now (s), 5 error text
-- Ends the record and makes the lane's next record due now (or drops the empty lane).
-- Returns: 1, or 0 when the record was already gone (a second sender after a lease ran out).
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('DEL', KEYS[3])
  for _, stats in ipairs({KEYS[4], KEYS[5]}) do
    redis.call('HINCRBY', stats, 'pending', -1)
    redis.call('HINCRBY', stats, ARGV[3], 1)
    if ARGV[3] == 'delivered' then
      redis.call('HSET', stats, 'lastDelivery', ARGV[4])
    else
      redis.call('HSET', stats, 'lastError', ARGV[5], 'lastErrorTime', ARGV[4])
    end
  end
end
local removed = redis.call('ZREM', KEYS[2], ARGV[2])
if redis.call('ZCARD', KEYS[2]) > 0 then
  redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
else
  redis.call('ZREM', KEYS[1], ARGV[1])
end
return removed
"""

_RETRY = """
-- KEYS: 1 due zset, 2 record hash, 3 alert stats hash, 4 provider stats hash
-- ARGV: 1 lane id, 2 when to try again (s), 3 error text ("" for a rate-limit wait),
--       4 now (s), 5 reserved rate-limit slot (s, "" for none)
-- Returns: 1, or 0 when the record is gone.
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
if ARGV[3] ~= '' then
  redis.call('HINCRBY', KEYS[2], 'attempts', 1)
  redis.call('HSET', KEYS[2], 'lastError', ARGV[3])
  redis.call('HSET', KEYS[3], 'lastError', ARGV[3], 'lastErrorTime', ARGV[4])
  redis.call('HSET', KEYS[4], 'lastError', ARGV[3], 'lastErrorTime', ARGV[4])
end
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[2], 'slot', ARGV[5])
else
  redis.call('HDEL', KEYS[2], 'slot')
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
"""


_DROP_IF_EMPTY = """
-- KEYS: 1 due zset, 2 lane zset
-- ARGV: 1 lane id, 2 now (s)
-- Drops the lane from due when it holds no record; one routed meanwhile makes it due now.
-- Returns: 1 when dropped.
if redis.call('ZCARD', KEYS[2]) == 0 then return redis.call('ZREM', KEYS[1], ARGV[1]) end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 0
"""


def member_of(entry_id: str) -> str:
    """A stream id (``1700000000000-3``) as a member that sorts in time order as text."""
    ms, _, seq = entry_id.partition("-")
    return f"{int(ms):015d}-{int(seq or 0):08d}"


def lane_of(alert_key: str, object_key: str) -> str:
    return f"{alert_key}|{object_key}"


@dataclass(frozen=True)
class Match:
    """One Alert an event goes to, with the event as that Alert sends it (JSON)."""

    alert_key: str
    provider_key: str
    transitions: bool
    event_json: str


@dataclass(frozen=True)
class Record:
    """A lane's head delivery, as read by the sender that claimed the lane."""

    lane: str
    member: str
    event: dict[str, Any]
    alert_key: str
    provider_key: str
    created: float
    attempts: int
    slot: float | None


class Outbox:
    """The outbox's operations; one round trip each (``client`` decodes responses)."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._route = client.register_script(_ROUTE)
        self._claim = client.register_script(_CLAIM)
        self._finish = client.register_script(_FINISH)
        self._retry = client.register_script(_RETRY)
        self._drop_if_empty = client.register_script(_DROP_IF_EMPTY)

    def ensure_group(self) -> None:
        try:
            self.client.xgroup_create(self.keys.notify_inbox, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read_inbox(self, *, count: int) -> list[tuple[str, dict[str, str]]]:
        """Entries delivered to the router earlier and not yet routed (a router that died), else
        new ones; oldest first."""
        for start in ("0", ">"):
            reply = self.client.xreadgroup(GROUP, CONSUMER, {self.keys.notify_inbox: start}, count=count)
            entries = [(i, f) for _stream, batch in reply or [] for i, f in batch if f]
            if entries:
                return entries
        return []

    def inbox_waiting(self) -> bool:
        """Whether the inbox holds entries not yet routed (cheap: one XLEN)."""
        return int(self.client.xlen(self.keys.notify_inbox)) > 0

    def route(
        self,
        entry_id: str,
        *,
        severity: str,
        revision: str,
        object_key: str,
        dedupe_digest: str,
        dedupe_ms: int,
        matches: list[Match],
        now: float,
        pipe: Any = None,
    ) -> int:
        """Store a record per match and acknowledge the inbox entry, atomically. Returns records
        created, or -1 for an event deduplicated (sent within the window). With ``pipe`` (a
        pipeline) the script is only queued on it, and its answer comes from ``pipe.execute()``."""
        member = member_of(entry_id)
        keys = [self.keys.notify_inbox, self.keys.notify_due, self.keys.notify_dedupe(dedupe_digest)]
        args: list[str | int | float] = [GROUP, entry_id, dedupe_ms, repr(now), severity, revision]
        for m in matches:
            lane = lane_of(m.alert_key, object_key)
            keys += [
                self.keys.notify_lane(lane),
                self.keys.notify_record(lane, member),
                self.keys.notify_state(lane),
                self.keys.notify_stats(m.alert_key),
                self.keys.notify_stats(m.provider_key),
            ]
            args += [lane, member, "1" if m.transitions else "0", m.alert_key, m.provider_key, m.event_json]
        if pipe is not None:
            self._route(keys=keys, args=args, client=pipe)
            return 0
        return int(self._route(keys=keys, args=args))

    def claim(self, *, now: float, lease_s: float, limit: int) -> list[str]:
        return [str(x) for x in self._claim(keys=[self.keys.notify_due], args=[repr(now), lease_s, limit])]

    def head(self, lane: str) -> Record | None:
        """The oldest record of ``lane``; None (and the lane dropped from ``due``) when empty."""
        members = self.client.zrange(self.keys.notify_lane(lane), 0, 0)
        if not members:
            keys = [self.keys.notify_due, self.keys.notify_lane(lane)]
            self._drop_if_empty(keys=keys, args=[lane, repr(time.time())])
            return None
        member = str(members[0])
        raw = self.client.hgetall(self.keys.notify_record(lane, member))
        if not raw:
            # A member without a record (cannot happen through these scripts): skip it.
            self.client.zrem(self.keys.notify_lane(lane), member)
            self.client.zadd(self.keys.notify_due, {lane: 0})
            return None
        return Record(
            lane=lane,
            member=member,
            event=json.loads(raw["event"]),
            alert_key=raw.get("alert", ""),
            provider_key=raw.get("provider", ""),
            created=float(raw.get("created", "0")),
            attempts=int(raw.get("attempts", "0")),
            slot=float(raw["slot"]) if raw.get("slot") else None,
        )

    def finish(self, record: Record, *, delivered: bool, now: float, error: str = "") -> bool:
        keys = [
            self.keys.notify_due,
            self.keys.notify_lane(record.lane),
            self.keys.notify_record(record.lane, record.member),
            self.keys.notify_stats(record.alert_key),
            self.keys.notify_stats(record.provider_key),
        ]
        outcome = "delivered" if delivered else "failed"
        return bool(self._finish(keys=keys, args=[record.lane, record.member, outcome, repr(now), error]))

    def retry(
        self, record: Record, *, at: float, now: float, error: str = "", slot: float | None = None
    ) -> bool:
        """Try ``record`` again at ``at``: after a failed attempt (``error`` set) or a rate-limit
        wait (``error`` empty; ``slot`` the reserved send time)."""
        keys = [
            self.keys.notify_due,
            self.keys.notify_record(record.lane, record.member),
            self.keys.notify_stats(record.alert_key),
            self.keys.notify_stats(record.provider_key),
        ]
        args = [record.lane, repr(at), error, repr(now), "" if slot is None else repr(slot)]
        return bool(self._retry(keys=keys, args=args))

    def next_due(self) -> float | None:
        """When the earliest lane comes due (None: nothing pending)."""
        first = self.client.zrange(self.keys.notify_due, 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    def stats(self, object_key: str) -> dict[str, str]:
        return {str(k): str(v) for k, v in self.client.hgetall(self.keys.notify_stats(object_key)).items()}
