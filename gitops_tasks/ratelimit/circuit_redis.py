"""Per-host circuits in Redis: one hash per host, changed by one Lua script on Redis's clock.

The rules are :func:`gitops_tasks.ratelimit.circuit.decide`'s, line for line; the unit tests run the
same behaviours on both implementations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, Unpack

from gitops_tasks.ratelimit.circuit import Ask, CircuitOptions, HostCircuit, HostHealth, Op, Verdict
from gitops_tasks.ratelimit.lua import clock_lua

if TYPE_CHECKING:
    import redis

CIRCUIT_SCRIPT = """
-- KEYS[1]  the host's circuit, a hash: failures, level, blocked_until, probe_until, last_error
-- ARGV[1]  "admit" (may a request go now?), "fail" (record a failed request) or "release" (give
--          back the probe lease)
-- ARGV[2]  threshold (failures that open the circuit)   ARGV[3] first block (s)
-- ARGV[4]  longest block (s)                            ARGV[5] forget after (s)
-- ARGV[6]  "admit": the probe lease (s); "fail": the error text
-- ARGV[7]  now in seconds, or "" for Redis's TIME (tests pass their own clock)
-- ARGV[8]  "fail": "1" when the failed request was the probe (its lease ends), else "0"
-- Returns  {verdict, wait_s, failures, blocked_until, last_error, now} as strings; verdict is one
--          of clean, go, probe, blocked, open. The hash expires forget-after past its last block.
"""
CIRCUIT_SCRIPT += clock_lua(7)
CIRCUIT_SCRIPT += """local threshold, first, longest = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local forget = tonumber(ARGV[5])
local h = redis.call('HMGET', KEYS[1], 'failures', 'level', 'blocked_until', 'probe_until', 'last_error')
local exists = h[1] ~= false
local failures, level = tonumber(h[1]) or 0, tonumber(h[2]) or 0
local blocked, probe, last = tonumber(h[3]) or 0, tonumber(h[4]) or 0, h[5] or ''

if ARGV[1] == 'fail' then
  failures = failures + 1
  last = ARGV[6]
  if now >= blocked then
    level = level + 1
    blocked = now + math.min(longest, first * 2 ^ (level - 1))
  end
  if ARGV[8] == '1' then probe = 0 end
  redis.call('HSET', KEYS[1], 'failures', failures, 'level', level, 'blocked_until', num(blocked),
    'probe_until', num(probe), 'last_error', last)
  redis.call('PEXPIRE', KEYS[1], math.ceil((blocked - now + forget) * 1000))
  local verdict = 'blocked'
  if failures >= threshold then verdict = 'open' end
  return {verdict, num(blocked - now), tostring(failures), num(blocked), last, num(now)}
end

if not exists then
  return {'clean', '0', '0', '0', '', num(now)}
end
if ARGV[1] == 'release' then
  redis.call('HSET', KEYS[1], 'probe_until', '0')
  return {'open', '0', tostring(failures), num(blocked), last, num(now)}
end
local verdict, wait = 'go', 0
local opened = failures >= threshold
if now < blocked then
  verdict, wait = 'blocked', blocked - now
  if opened then verdict = 'open' end
elseif opened then
  if now < probe then
    verdict, wait = 'open', probe - now
  else
    verdict = 'probe'
    probe = now + tonumber(ARGV[6])
    redis.call('HSET', KEYS[1], 'probe_until', num(probe))
    local ttl = redis.call('PTTL', KEYS[1])
    local wanted = math.ceil((probe - now + forget) * 1000)
    if ttl < wanted then redis.call('PEXPIRE', KEYS[1], wanted) end
  end
end
return {verdict, num(wait), tostring(failures), num(blocked), last, num(now)}
"""


class CircuitKeys(Protocol):
    """What the circuit needs of :class:`gitops_tasks.store.keys.Keys`."""

    def host_circuit(self, host: str) -> str: ...


class RedisHostCircuit(HostCircuit):
    """Circuits in the hashes ``keys.host_circuit(host)``; one ``EVALSHA`` per admit or failure.

    Raises ``redis.RedisError`` when Redis is unreachable. ``client`` may decode responses or not.
    Times are Redis's clock unless ``clock`` (Unix seconds) is given, as tests do.
    """

    def __init__(
        self,
        client: redis.Redis[Any],
        keys: CircuitKeys,
        *,
        clock: Callable[[], float] | None = None,
        **options: Unpack[CircuitOptions],
    ) -> None:
        super().__init__(**options)
        self.client = client
        self.keys = keys
        self._clock = clock
        self._script = client.register_script(CIRCUIT_SCRIPT)

    def _apply(self, op: Op, host: str, *, now: float | None, ask: Ask) -> HostHealth:
        if now is None and self._clock is not None:
            now = self._clock()
        extra: str | float = ask.error if op == "fail" else ask.lease_s
        args: list[str | float] = [
            op,
            self.threshold,
            self.backoff_initial_s,
            self.backoff_max_s,
            self.forget_after_s,
            extra,
            "" if now is None else repr(float(now)),
            "1" if ask.probe else "0",
        ]
        verdict, wait, failures, blocked, last, seen = (
            v.decode() if isinstance(v, bytes) else str(v)
            for v in self._script(keys=[self.keys.host_circuit(host)], args=args)
        )
        state: Verdict = verdict  # type: ignore[assignment]
        return HostHealth(state, float(wait), int(failures), float(blocked), last, float(seen))

    def _forget(self, host: str) -> None:
        self.client.delete(self.keys.host_circuit(host))
