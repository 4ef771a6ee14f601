"""Connecting to Redis."""

from __future__ import annotations

import redis

from gitops_tasks.settings import Settings


def connect(settings: Settings) -> redis.Redis:
    """A Redis client for the configured (or embedded) Redis, answering ``str`` values."""
    return redis.Redis.from_url(
        settings.effective_redis_url(),
        decode_responses=True,
        health_check_interval=30,
        socket_keepalive=True,
    )


def unreachable(url: str, exc: Exception) -> str:
    """The error for a Redis that does not answer (credentials in ``url`` are masked here)."""
    from gitops_tasks.redact import redact

    return (
        f"error: cannot reach Redis at {redact(url)}: {exc}\n"
        "Set GITOPS_TASKS_REDIS_URL, or start the stack with `gitops-tasks up`."
    )
