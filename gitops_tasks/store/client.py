"""Connecting to Redis."""

from __future__ import annotations

from typing import Any

import redis

from gitops_tasks.settings import Settings


def connect(settings: Settings) -> redis.Redis:
    """A Redis client for the configured (or embedded) Redis, answering ``str`` values.

    Every command and connection attempt fails after ``settings.redis_socket_timeout_s`` without
    an answer, so a paused or partitioned Redis raises ``redis.TimeoutError`` (which the callers'
    outage handling treats as unreachable) instead of blocking a beat tick or the lock renewer
    forever. A blocking read on these clients must block for less than that.
    """
    return redis.Redis.from_url(settings.effective_redis_url(), decode_responses=True, **_options(settings))


def connect_bytes(settings: Settings) -> redis.Redis:
    """As :func:`connect`, answering ``bytes`` (for compressed values)."""
    return redis.Redis.from_url(settings.effective_redis_url(), **_options(settings))


def _options(settings: Settings) -> dict[str, Any]:
    timeout = settings.redis_socket_timeout_s
    return {
        "health_check_interval": 30,
        "socket_keepalive": True,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
    }


def unreachable(url: str, exc: Exception) -> str:
    """The error for a Redis that does not answer (credentials in ``url`` are masked here)."""
    from gitops_tasks.redact import redact

    return (
        f"error: cannot reach Redis at {redact(url)}: {exc}\n"
        "Set GITOPS_TASKS_REDIS_URL, or start the stack with `gitops-tasks up`."
    )
