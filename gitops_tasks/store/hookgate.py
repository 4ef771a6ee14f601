"""Webhook floods: at most one webhook-triggered reconcile per object per window, none lost.

A public endpoint may be sent thousands of hooks for one repository (a retrying forge, a script, an
attacker who learnt the path). The enqueue guard already keeps one task queued per object, but a
fast reconcile frees it again within milliseconds, so a flood would still run the object back to
back. :class:`HookThrottle` shapes webhook requests per object, leading and trailing edge:

- the first hook in a quiet period reconciles now and opens a window of ``window_s``;
- hooks inside the window schedule one trailing reconcile at the window's end (and extend the
  window by ``window_s`` from then, since that run starts a window of its own); further hooks
  before it fires are absorbed, since the trailing run starts after them and sees what they saw.

So a single push is reconciled at once, a burst of any size costs two reconciles per window, and
the last hook of a burst is always served by a run that starts after it. One atomic script per
hook (Redis's clock).
"""

from __future__ import annotations

import redis

from gitops_tasks.store.keys import Keys

#: Seconds between two webhook-triggered reconciles of one object (the trailing one waits this long).
DEFAULT_HOOK_WINDOW_S = 10.0
#: How long a handled delivery id is remembered, so a replayed delivery does nothing.
DEFAULT_DELIVERY_TTL_S = 24 * 3600

# KEYS[1] window key, KEYS[2] trailing key; ARGV[1] window in ms.
# Returns 0 (reconcile now), the delay in ms of the trailing reconcile just scheduled, or -1
# (absorbed: a trailing reconcile is already scheduled).
ADMIT_SCRIPT = """
local window = tonumber(ARGV[1])
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', window) then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
local left = redis.call('PTTL', KEYS[1])
if left <= 0 then
  redis.call('SET', KEYS[1], '1', 'PX', window)
  return 0
end
redis.call('SET', KEYS[2], '1', 'PX', left)
redis.call('PEXPIRE', KEYS[1], left + window)
return left
"""


class HookThrottle:
    """The per-object webhook throttle of the module docstring, over ``keys.hook_window``."""

    def __init__(self, client: redis.Redis, keys: Keys, *, window_s: float = DEFAULT_HOOK_WINDOW_S) -> None:
        if window_s <= 0:
            raise ValueError(f"hook window {window_s!r}: expected a positive number of seconds")
        self.keys = keys
        self.window_ms = max(1, int(window_s * 1000))
        self._script = client.register_script(ADMIT_SCRIPT)

    def admit(self, object_key: str) -> float | None:
        """0.0: reconcile now; a positive number: schedule the trailing reconcile in that many
        seconds; None: absorbed by the trailing reconcile already scheduled."""
        keys = [self.keys.hook_window(object_key), self.keys.hook_trailing(object_key)]
        left = int(self._script(keys=keys, args=[self.window_ms]))
        if left < 0:
            return None
        return left / 1000.0


class Deliveries:
    """Delivery ids (``X-GitHub-Delivery``…) already handled per Receiver path, for ``ttl_s``."""

    def __init__(self, client: redis.Redis, keys: Keys, *, ttl_s: int = DEFAULT_DELIVERY_TTL_S) -> None:
        self.client = client
        self.keys = keys
        self.ttl_s = ttl_s

    def claim(self, path: str, delivery: str) -> bool:
        """True the first time ``delivery`` is seen for ``path`` (it is remembered from now on)."""
        return bool(self.client.set(self.keys.hook_delivery(path, delivery), "1", nx=True, ex=self.ttl_s))

    def forget(self, path: str, delivery: str) -> None:
        """Undo :meth:`claim` (the delivery failed; the forge's redelivery must be served)."""
        self.client.delete(self.keys.hook_delivery(path, delivery))
