"""The one Lua script behind :class:`~gitops_tasks.ratelimit.redis_bucket.RedisTokenBucket`.

It runs on Redis's clock (``TIME``), so workers on machines with skewed clocks still agree. Redis 5
and later replicate scripts by their effects, so writing after ``TIME`` needs no
``redis.replicate_commands()`` (tested on 6.2 and 7.0). It touches one key, so Cluster can run it.
Numbers are stored with ``%.17g``: Lua's default ``%.14g`` would round Unix times to 0.1 ms. A wait
under a microsecond (``TIME``'s resolution; a double holds a Unix time to 0.24 µs) counts as none.
The rules it implements are described in :mod:`gitops_tasks.ratelimit.base`; ``memory.py`` mirrors it.
"""

from __future__ import annotations


def clock_lua(argv_index: int) -> str:
    """Lua defining ``num`` (a number as text, ``%.17g``) and ``now``: ``ARGV[argv_index]`` in
    seconds, or Redis's ``TIME`` when that argument is empty (tests pass their own clock)."""
    return (
        "local function num(x) return string.format('%.17g', x) end\n"
        "local now\n"
        f"if ARGV[{argv_index}] == '' then\n"
        "  local t = redis.call('TIME')\n"
        "  now = tonumber(t[1]) + tonumber(t[2]) / 1000000\n"
        "else\n"
        f"  now = tonumber(ARGV[{argv_index}])\n"
        "end\n"
    )


BUCKET_SCRIPT = """
-- KEYS[1]  the host's bucket, a hash: tokens (negative while slots are reserved ahead), ts (the
--          time the tokens are counted at; in the future during a block), rate (right after the
--          last throttle), throttled_at, blocked_until (seconds)
-- ARGV[1]  operation: "take" a token available now, "reserve" the next slot, "peek" (writes
--          nothing) or "throttle"
-- ARGV[2]  planned rate (tokens per second)      ARGV[3] planned burst (capacity, >= 1)
-- ARGV[4]  floor of a throttled rate             ARGV[5] recovery quiet period (s, > 0)
-- ARGV[6]  recovery step: fraction of the planned rate regained per quiet period (> 0)
-- ARGV[7]  "throttle": seconds nobody may send (the Retry-After); "reserve": the longest wait
-- ARGV[8]  now in seconds, or "" for Redis's TIME (tests pass their own clock)
-- Returns  {wait_s, taken, rate, tokens, blocked_until, throttled_at or "", now} as strings: the
--          seconds until the caller's (or the next) slot, and "1" when a token or slot was taken.
"""
BUCKET_SCRIPT += clock_lua(8)
BUCKET_SCRIPT += """local op, cfg, burst = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local floor, quiet, step = math.min(tonumber(ARGV[4]), cfg), tonumber(ARGV[5]), tonumber(ARGV[6])
local h = redis.call('HMGET', KEYS[1], 'tokens', 'ts', 'rate', 'throttled_at', 'blocked_until')
local tokens, ts = tonumber(h[1]) or burst, tonumber(h[2]) or now
local base, throttled_at, blocked = tonumber(h[3]), tonumber(h[4]), tonumber(h[5]) or 0

local rate = cfg
if base then
  rate = math.min(cfg, base + math.floor(math.max(0, now - blocked) / quiet) * step * cfg)
end
if now > ts then
  tokens = math.min(tokens + (now - ts) * rate, burst)
  ts = now
end

local wait, taken, write = 0, 0, false
if op == 'throttle' then
  if now >= blocked then
    base = math.max(floor, rate / 2)
    rate = base
    throttled_at = now
  end
  blocked = math.max(blocked, now + tonumber(ARGV[7]))
  tokens, ts = 1, blocked
  wait, write = blocked - now, true
else
  -- The next slot: ts (now, or the end of a block) once the bucket holds a whole token.
  wait = ts - now
  if (1 - tokens) / rate >= 1e-6 then
    wait = wait + (1 - tokens) / rate
  end
  if wait < 1e-6 then wait = 0 end
  local allowed = 0
  if op == 'reserve' then allowed = tonumber(ARGV[7]) end
  if op ~= 'peek' and wait <= allowed then
    tokens, taken, write = tokens - 1, 1, true
  end
end

if write then
  -- Keep the hash until it would be indistinguishable from a fresh one: full, unblocked, recovered.
  local ttl = math.max(ts - now + (burst - tokens) / rate, blocked - now)
  if base then
    ttl = math.max(ttl, blocked + math.ceil((cfg - base) / (step * cfg)) * quiet - now)
  end
  if op == 'throttle' then
    redis.call('HSET', KEYS[1], 'tokens', num(tokens), 'ts', num(ts), 'rate', num(base),
      'throttled_at', num(throttled_at), 'blocked_until', num(blocked))
  else
    redis.call('HSET', KEYS[1], 'tokens', num(tokens), 'ts', num(ts))
  end
  redis.call('PEXPIRE', KEYS[1], math.ceil((ttl + 1) * 1000))
end
local thr = ''
if throttled_at then thr = num(throttled_at) end
return {num(wait), tostring(taken), num(rate), num(tokens), num(blocked), thr, num(now)}
"""
