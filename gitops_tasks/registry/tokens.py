"""The bearer-token cache every worker shares (DESIGN §6), and its in-process double.

A token is stored under ``keys.registry_token(host, scope#identity)`` with a TTL of its lifetime
minus a margin, so it is dropped before the registry would refuse it. The identity part (a hash
of the credentials, or ``anonymous``) keeps one identity's token from ever serving another's scan.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

from gitops_tasks.store.keys import Keys

#: Seconds before a token's expiry at which the cache forgets it (at most a quarter of its life).
DEFAULT_TOKEN_MARGIN_S = 10.0
#: Tokens that would live shorter than this once the margin is taken are not cached.
MIN_CACHED_LIFETIME_S = 1.0


def cache_ttl_s(lifetime_s: float, *, margin_s: float = DEFAULT_TOKEN_MARGIN_S) -> float:
    """How long to keep a token living ``lifetime_s``: minus the margin (≤ a quarter of the
    lifetime); 0.0 when that leaves less than :data:`MIN_CACHED_LIFETIME_S`."""
    ttl = lifetime_s - min(margin_s, lifetime_s / 4)
    return ttl if ttl >= MIN_CACHED_LIFETIME_S else 0.0


class TokenCache(Protocol):
    """Where bearer tokens wait for their next use."""

    def get(self, host: str, scope: str, identity: str) -> str | None: ...

    def put(self, host: str, scope: str, identity: str, token: str, *, ttl_s: float) -> None: ...

    def forget(self, host: str, scope: str, identity: str) -> None: ...


def _scope_key(scope: str, identity: str) -> str:
    return f"{scope}#{identity}"


class RedisTokenCache:
    """Tokens in Redis strings with a TTL, shared by every worker process on every machine."""

    def __init__(self, client: Any, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def get(self, host: str, scope: str, identity: str) -> str | None:
        raw = self.client.get(self.keys.registry_token(host, _scope_key(scope, identity)))
        if raw is None:
            return None
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    def put(self, host: str, scope: str, identity: str, token: str, *, ttl_s: float) -> None:
        if ttl_s > 0:
            key = self.keys.registry_token(host, _scope_key(scope, identity))
            self.client.set(key, token, px=max(1, int(ttl_s * 1000)))

    def forget(self, host: str, scope: str, identity: str) -> None:
        self.client.delete(self.keys.registry_token(host, _scope_key(scope, identity)))


class MemoryTokenCache:
    """The in-process double: a dict with expiry times (thread-safe)."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, host: str, scope: str, identity: str) -> str | None:
        with self._lock:
            found = self._tokens.get((host, _scope_key(scope, identity)))
            if found is None or found[1] <= time.monotonic():
                return None
            return found[0]

    def put(self, host: str, scope: str, identity: str, token: str, *, ttl_s: float) -> None:
        if ttl_s > 0:
            with self._lock:
                self._tokens[(host, _scope_key(scope, identity))] = (token, time.monotonic() + ttl_s)

    def forget(self, host: str, scope: str, identity: str) -> None:
        with self._lock:
            self._tokens.pop((host, _scope_key(scope, identity)), None)
