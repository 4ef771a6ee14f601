"""Turn a reconcile :class:`Outcome` into Flux-style status (pure, no Redis).

Conditions: ``Ready`` (True/False), ``Reconciling`` and ``Stalled`` (present only when True),
each with a CamelCase reason, a message and ``lastTransitionTime``.
"""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime
from typing import Any

from gitops_tasks.objects.outcome import Outcome

#: One generator per process: a new ``Random()`` per run would read ``os.urandom`` to seed itself.
_RNG = random.Random()
# Reseeded in a forked child, so prefork workers do not draw the same jitter.
os.register_at_fork(after_in_child=_RNG.seed)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(prev: dict[str, Any], ctype: str, status: str, reason: str, message: str, now: float) -> dict:
    old = next((c for c in prev.get("conditions", []) if c.get("type") == ctype), None)
    changed = old is None or old.get("status") != status
    return {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": iso(now) if changed or old is None else old["lastTransitionTime"],
    }


def reconciling(prev: dict[str, Any], *, generation: int, now: float) -> dict[str, Any]:
    """Status while a run is in progress: previous facts kept, ``Reconciling=True`` added."""
    status = dict(prev)
    conditions = [c for c in prev.get("conditions", []) if c.get("type") not in ("Reconciling",)]
    msg = f"reconciliation in progress for generation {generation}"
    conditions.append(_condition(prev, "Reconciling", "True", "Progressing", msg, now))
    if not any(c.get("type") == "Ready" for c in conditions):
        conditions.insert(0, _condition(prev, "Ready", "Unknown", "Progressing", msg, now))
    status["conditions"] = conditions
    return status


def summarise(
    prev: dict[str, Any],
    outcome: Outcome,
    *,
    generation: int,
    now: float,
    request_token: str | None = None,
) -> dict[str, Any]:
    """The status after a run. Facts from earlier runs survive a failure (the last good artifact)."""
    status = {k: v for k, v in prev.items() if k not in ("conditions",)}
    status.update(outcome.facts)
    ready = "True" if outcome.ready else "False"
    if outcome.result == "waiting" and prev:
        ready = "Unknown" if not prev.get("conditions") else ready
    conditions = [_condition(prev, "Ready", ready, outcome.reason, outcome.message, now)]
    if outcome.result == "stalled":
        conditions.append(_condition(prev, "Stalled", "True", outcome.reason, outcome.message, now))
    status["conditions"] = conditions
    status["observedGeneration"] = generation
    status["lastRunTime"] = iso(now)
    status["lastResult"] = outcome.result
    status["failures"] = 0 if outcome.result in ("success", "waiting") else int(prev.get("failures", 0)) + 1
    if request_token is not None:
        status["lastHandledReconcileAt"] = request_token
    return status


def condition(status: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions", []) if c.get("type") == ctype), None)


def next_delay_s(
    outcome: Outcome,
    *,
    interval_s: float,
    failures: int,
    jitter: float,
    backoff_base_s: float,
    backoff_max_s: float,
    wait_retry_s: float,
    rng: random.Random | None = None,
) -> float:
    """Seconds until the next run after ``outcome`` (DESIGN §3).

    success and stalled: the interval ±jitter (a stalled object is retried only at its interval,
    never with backoff, so a fixed secret is picked up); a success with ``retry_after_s`` (a sync
    that changed its own spec) runs again after that. waiting: ``retry_after_s`` or
    ``wait_retry_s``. transient: ``backoff_base_s · 2^(failures-1)``, capped by the interval and by
    ``backoff_max_s``, with full jitter on the upper half.
    """
    rng = rng or _RNG
    if outcome.result == "success" and outcome.retry_after_s is not None:
        return outcome.retry_after_s
    if outcome.result == "waiting":
        return outcome.retry_after_s if outcome.retry_after_s is not None else wait_retry_s
    if outcome.result == "transient":
        cap = min(max(interval_s, backoff_base_s), backoff_max_s)
        delay = min(backoff_base_s * 2 ** max(failures - 1, 0), cap)
        return delay / 2 + rng.random() * delay / 2
    return interval_s * (1 + rng.uniform(-jitter, jitter))
