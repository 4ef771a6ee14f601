"""The metrics each engine process records as it works.

Names Flux's dashboards query keep Flux's names, labels and buckets (``gotk_*``); the engine's own
are ``gitops_tasks_*``. Labels carry object identities, kinds, queue and registry host names,
never URLs or anything from a Secret. Under ``-P prefork`` they live in the multiprocess directory
(:func:`gitops_tasks.metrics.exposition.use_multiprocess_dir`), so every pool process counts.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram


def exponential_buckets_range(low: float, high: float, count: int) -> tuple[float, ...]:
    """``count`` buckets growing by one factor from ``low`` to ``high`` (Go client's
    ``prometheus.ExponentialBucketsRange``)."""
    factor = (high / low) ** (1.0 / (count - 1))
    return tuple(low * factor**i for i in range(count))


#: Flux's reconcile histogram (fluxcd/pkg runtime/metrics): 10 buckets from 10 ms to 30 min.
FLUX_RECONCILE_BUCKETS = exponential_buckets_range(10e-3, 1800, 10)
#: Waits and short operations (git, rate-limit tokens, beat lateness): 5 ms to 5 min.
SHORT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

RECONCILE_DURATION = Histogram(
    "gotk_reconcile_duration_seconds",
    "The duration in seconds of a reconcile of an object (Flux's metric).",
    ["kind", "name", "namespace"],
    buckets=FLUX_RECONCILE_BUCKETS,
)
RECONCILES = Counter(
    "gitops_tasks_reconciles",
    "Reconciles run, by kind and result (success, waiting, transient, stalled).",
    ["kind", "result"],
)
GIT_OPERATIONS = Counter(
    "gitops_tasks_git_operations",
    "Git operations against remotes (ls-remote, fetch, clone, push), by transport and result "
    "(ok or the failure reason).",
    ["operation", "transport", "result"],
)
GIT_DURATION = Histogram(
    "gitops_tasks_git_operation_duration_seconds",
    "Duration of git operations against remotes.",
    ["operation", "transport"],
    buckets=SHORT_BUCKETS,
)
REGISTRY_WAIT = Histogram(
    "gitops_tasks_registry_limiter_wait_seconds",
    "Seconds a registry request waited for a token of its host's shared rate limit.",
    ["host"],
    buckets=SHORT_BUCKETS,
)
REGISTRY_THROTTLED = Counter(
    "gitops_tasks_registry_throttled",
    "Answers 429 / TOOMANYREQUESTS from a registry host.",
    ["host"],
)
REGISTRY_REQUESTS = Counter(
    "gitops_tasks_registry_requests",
    "Requests sent to a registry host, by status code class (2xx, 3xx, 4xx, 5xx).",
    ["host", "code"],
)
BEAT_SENT = Counter("gitops_tasks_beat_sent", "Tasks beat sent for due objects.")
BEAT_LATENESS = Histogram(
    "gitops_tasks_beat_lateness_seconds",
    "Seconds between an object falling due and beat sending its task.",
    buckets=SHORT_BUCKETS,
)
BEAT_LEADER = Gauge(
    "gitops_tasks_beat_leader",
    "1 while this beat holds the leader lock and schedules, 0 while it stands by.",
    multiprocess_mode="livemax",
)


def reconciled(kind: str, namespace: str, name: str, *, result: str, duration_s: float) -> None:
    RECONCILE_DURATION.labels(kind, name, namespace).observe(duration_s)
    RECONCILES.labels(kind, result).inc()


@contextmanager
def git_operation(operation: str, transport: str) -> Iterator[None]:
    """Time and count one git operation; an exception's ``reason`` attribute (GitError) is its result."""
    started = time.perf_counter()
    result = "ok"
    try:
        yield
    except BaseException as exc:
        result = str(getattr(exc, "reason", "") or type(exc).__name__)
        raise
    finally:
        GIT_DURATION.labels(operation, transport).observe(time.perf_counter() - started)
        GIT_OPERATIONS.labels(operation, transport, result).inc()


def registry_waited(host: str, wait_s: float) -> None:
    REGISTRY_WAIT.labels(host).observe(wait_s)


def registry_answered(host: str, status_code: int) -> None:
    REGISTRY_REQUESTS.labels(host, f"{status_code // 100}xx").inc()
    if status_code == 429:
        REGISTRY_THROTTLED.labels(host).inc()


def registry_throttled(host: str) -> None:
    """A TOOMANYREQUESTS error body under another status than 429."""
    REGISTRY_THROTTLED.labels(host).inc()


def beat_sent(lateness_s: float) -> None:
    BEAT_SENT.inc()
    BEAT_LATENESS.observe(max(0.0, lateness_s))


def beat_leading(leading: bool) -> None:
    BEAT_LEADER.set(1 if leading else 0)
