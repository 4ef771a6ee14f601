"""The global per-host rate limit on registry requests (DESIGN §6).

Celery's ``rate_limit`` is per worker, so N workers would send N times the limit. Here every request
to a registry host first takes a token from that host's bucket in Redis, refilled on Redis's clock by
one atomic Lua script, so the limit holds across every process on every machine. A 429 halves the
host's rate for everyone and honours Retry-After; the rate climbs back after quiet periods. Beside
the bucket, each host has a circuit (``circuit.py``): 5xx answers, timeouts and refused connections
back the host off for everyone, and repeated ones open its circuit (one probe at a time).

Imports the standard library only: the caller passes in the ``redis`` client and the ``Keys``
(both are named for type checking alone), so no other concern is imported. ``RedisTokenBucket`` does
network I/O to Redis, one ``EVALSHA`` per operation; ``MemoryTokenBucket`` is the in-process double
(``RedisHostCircuit`` and ``MemoryHostCircuit`` likewise).
"""

from gitops_tasks.ratelimit.base import (
    DEFAULT_FLOOR_RPS,
    DEFAULT_MARGIN,
    DEFAULT_MAX_RETRY_AFTER_S,
    DEFAULT_RECOVERY_QUIET_S,
    DEFAULT_RECOVERY_STEP,
    DEFAULT_THROTTLE_BACKOFF_S,
    BucketState,
    RateLimited,
    TokenBucket,
)
from gitops_tasks.ratelimit.circuit import (
    DEFAULT_CIRCUIT_FAILURES,
    DEFAULT_HOST_BACKOFF_MAX_S,
    HostCircuit,
    HostHealth,
    MemoryHostCircuit,
)
from gitops_tasks.ratelimit.circuit_redis import RedisHostCircuit
from gitops_tasks.ratelimit.memory import MemoryTokenBucket
from gitops_tasks.ratelimit.redis_bucket import RedisTokenBucket

__all__ = [
    "DEFAULT_CIRCUIT_FAILURES",
    "DEFAULT_FLOOR_RPS",
    "DEFAULT_HOST_BACKOFF_MAX_S",
    "DEFAULT_MARGIN",
    "DEFAULT_MAX_RETRY_AFTER_S",
    "DEFAULT_RECOVERY_QUIET_S",
    "DEFAULT_RECOVERY_STEP",
    "DEFAULT_THROTTLE_BACKOFF_S",
    "BucketState",
    "HostCircuit",
    "HostHealth",
    "MemoryHostCircuit",
    "MemoryTokenBucket",
    "RateLimited",
    "RedisHostCircuit",
    "RedisTokenBucket",
    "TokenBucket",
]
