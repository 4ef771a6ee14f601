"""The bearer-token cache every worker shares (DESIGN §6), its in-process double, and the
per-process memory of hosts that need no token.

A token is stored under ``keys.registry_token(host, scope#identity)`` with a TTL of its lifetime
minus a margin, so it is dropped before the registry would refuse it. The identity part (a hash
of the credentials, or ``anonymous``) keeps one identity's token from ever serving another's scan.
A host that answered without an auth challenge is remembered (:class:`OpenHosts`) so that its
scans skip the shared cache, a Redis round trip that could only find nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from gitops_tasks.store.keys import Keys

#: Seconds before a token's expiry at which the cache forgets it (at most a quarter of its life).
DEFAULT_TOKEN_MARGIN_S = 10.0
#: Tokens that would live shorter than this once the margin is taken are not cached.
MIN_CACHED_LIFETIME_S = 1.0
#: Seconds a host that answered without an auth challenge is trusted to need no token (its scans
#: skip the token cache), and a host that answered 401 is not trusted so (a 401 ends the former).
DEFAULT_OPEN_HOST_TTL_S = 300.0


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


class OpenHosts:
    """Registry hosts that recently answered a request sent without credentials or token (thread-safe,
    one per process).

    Scans of an open host skip the token cache. A 401 from a host forgets it, and for ``ttl_s`` no
    open answer makes it open again: a host that serves some repositories openly and challenges for
    others keeps using the shared cache instead of flip-flopping.
    """

    def __init__(
        self, *, ttl_s: float = DEFAULT_OPEN_HOST_TTL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        #: host → monotonic time until which it is open.
        self._open: dict[str, float] = {}
        #: host → monotonic time until which it is not trusted to be open (it answered 401).
        self._challenged: dict[str, float] = {}

    def is_open(self, host: str) -> bool:
        with self._lock:
            return self._open.get(host, 0.0) > self._clock()

    def answered(self, host: str) -> None:
        """``host`` answered a request without credentials or token (not with a 401)."""
        now = self._clock()
        with self._lock:
            if self._challenged.get(host, 0.0) <= now:
                self._open[host] = now + self.ttl_s

    def challenged(self, host: str) -> None:
        """``host`` answered 401: it needs credentials or a token, for some repositories at least."""
        now = self._clock()
        with self._lock:
            self._open.pop(host, None)
            self._challenged[host] = now + self.ttl_s
