"""The two guards of DESIGN §4: at most one queued and one running task per object.

- :class:`EnqueueGuard`: a key set (``SET NX EX``) when a task is queued and cleared when it starts,
  so beat does not pile up copies when workers fall behind.
- :class:`RunLock`: a token lock with a TTL, renewed by a background thread while the task runs and
  released only by its holder; a killed worker's lock simply expires.
"""

from __future__ import annotations

import secrets
import threading
from types import TracebackType

import redis

from gitops_tasks.store.keys import Keys


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

    def is_set(self, object_key: str) -> bool:
        return bool(self.client.exists(self.keys.guard(object_key)))


# KEYS[1] lock key; ARGV[1] token; ARGV[2] ttl in ms. Returns 1 if renewed (still ours), else 0.
RENEW_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
# KEYS[1] lock key; ARGV[1] token. Returns 1 if deleted (was ours), else 0.
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RunLock:
    """A renewable lock on one key. Use ``acquire()`` then ``release()``, or ``with lock:``."""

    def __init__(self, client: redis.Redis, key: str, *, ttl_s: float, owner: str = "") -> None:
        self.client = client
        self.key = key
        self.ttl_ms = int(ttl_s * 1000)
        self.token = f"{owner}:{secrets.token_hex(8)}" if owner else secrets.token_hex(8)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False

    def acquire(self) -> bool:
        if not self.client.set(self.key, self.token, nx=True, px=self.ttl_ms):
            return False
        self.keep_alive()
        return True

    def keep_alive(self) -> None:
        """Start renewing a lock this holder has just set (by ``acquire`` or in a pipeline)."""
        self._thread = threading.Thread(target=self._renew_loop, name=f"renew {self.key}", daemon=True)
        self._thread.start()

    def stop_renewing(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _renew_loop(self) -> None:
        renew = self.client.register_script(RENEW_SCRIPT)
        while not self._stop.wait(self.ttl_ms / 3000):
            try:
                if not renew(keys=[self.key], args=[self.token, self.ttl_ms]):
                    self.lost = True
                    return
            except redis.RedisError:
                continue

    def release(self) -> None:
        self.stop_renewing()
        self.client.register_script(RELEASE_SCRIPT)(keys=[self.key], args=[self.token])

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
