"""One reconcile of one object: guard → lock → reconcile → status, events, next run, dependents.

The sequence is the same for every kind; the kind's concern only returns an :class:`Outcome`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded

from gitops_tasks.logsetup import add_log_fields
from gitops_tasks.metrics import instruments
from gitops_tasks.objects import interval_s
from gitops_tasks.objects.model import Object, ObjectRef
from gitops_tasks.objects.outcome import LockLost, Outcome
from gitops_tasks.objects.ownership import deleting
from gitops_tasks.redact import redact
from gitops_tasks.store import runstate
from gitops_tasks.store.locks import Lease, RunLock
from gitops_tasks.store.summary import condition, next_delay_s, reconciling, summarise
from gitops_tasks.tasks.context import Context

log = logging.getLogger(__name__)

Reconciler = Callable[[Object, dict[str, Any], Context], Outcome]


def run(
    ref: ObjectRef,
    *,
    reason: str,
    ctx: Context,
    reconciler: Reconciler,
    enqueue_dependent: Callable[[ObjectRef], bool],
    requeue: Callable[[ObjectRef, str], bool] | None = None,
    task_id: str | None = None,
) -> dict[str, Any]:
    """Reconcile ``ref`` once and return a JSON summary (the task's result).

    Requests coalesce and none is lost, whatever sent it (beat, a dependency, the CLI, another
    system): a task that finds the object locked records its request and returns at once, and the
    holder, after releasing the lock, re-queues the object (``requeue(ref, reason)``) so that a run
    starting after the request serves it (see :mod:`gitops_tasks.store.runstate`). ``task_id`` (the
    Celery task's id) lets a broker redelivery of the running task itself return quietly.

    A run whose lock expired before it finished (its renewals failed) writes no status, event or
    dependent: another worker may own the object by then. The reconciler gets a context whose
    ``ensure_held()`` checks the lock, so such a run also stops before its next side effect
    (result ``discarded``, reason ``RunLockLost``).
    """
    ttl_s = ctx.settings.run_lock_ttl_s
    lease = Lease(ctx.keys.schedule, ref.key, 0.0, runstate.DEFAULT_LEASE_MARGIN_S)
    lock = RunLock(
        ctx.client, ctx.keys.run_lock(ref.key), ttl_s=ttl_s, owner=ctx.owner, task_id=task_id, lease=lease
    )
    # One round trip: release the guard (this copy runs now; one more may be queued), read the
    # object, take the lock (or record this request for the holder), read the request token and
    # the previous status.
    started = runstate.begin(
        ctx.client,
        ctx.keys,
        ref,
        lock_token=lock.token,
        lock_ttl_s=ttl_s,
        reason=reason,
        task_id=task_id,
    )
    lease.due_at = started.lease
    obj = started.obj
    if started.state == "duplicate":
        return {"result": "duplicate", "message": f"{ref}: this task is already running"}
    if not started.locked:
        return {"result": "waiting", "reason": "LockHeld", "message": f"{ref} is being reconciled elsewhere"}
    lock.keep_alive()
    status: dict[str, Any] | None = None
    delay: float | None = None
    outcome: Outcome | None = None
    # Events and dependents wait until this run's status is stored: a dependent that started
    # earlier could read the previous revision and find nothing to do.
    dependents: list[ObjectRef] = []
    stopped: LockLost | None = None
    try:
        if obj is None:
            summary: dict[str, Any] = {"result": "gone", "message": f"{ref} is not in the catalog"}
        elif obj.suspended and not deleting(obj):
            # As Flux's controllers: a suspended object is never reconciled, whatever asked for
            # it (beat, a dependency's new revision or image, a webhook, send_task).
            log.info("%s: suspended; the %s request is not run", ref, reason)
            summary = {"result": "suspended", "message": f"{ref} is suspended"}
        else:
            # Reconciling=True is written only for a run that takes a while (see store.runstate).
            generation, begun, prev = int(obj.metadata.get("generation", 1)), time.time(), started.previous
            lock.when_slow(
                runstate.DEFAULT_RECONCILING_AFTER_S,
                lambda: runstate.mark_reconciling(
                    ctx.client,
                    ctx.keys,
                    ref,
                    status=reconciling(prev, generation=generation, now=begun),
                    lock_token=lock.token,
                ),
            )
            try:
                outcome, status, delay, summary = _reconcile_locked(
                    obj,
                    prev=started.previous,
                    token=started.token,
                    ctx=ctx.for_run(lock.ensure_held),
                    reconciler=reconciler,
                    dependents=dependents,
                )
            except LockLost as exc:
                stopped = exc
    finally:
        lock.stop_renewing()
        # One round trip: store status, move the next run, release the lock, read what arrived.
        finished = runstate.finish(
            ctx.client, ctx.keys, ref, status=status, next_run_in_s=delay, lock_token=lock.token
        )
    if stopped is not None:
        log.warning(
            "%s: stopped before its next side effect, since its run lock was lost (%s; another "
            "worker may own the object); nothing was written",
            ref,
            stopped,
        )
        return {
            "result": "discarded",
            "reason": "RunLockLost",
            "message": f"{ref}: run lock lost; run stopped",
        }
    if not finished.held:
        log.warning(
            "%s: the run lock expired before the run ended (another worker may own the object); "
            "its result was discarded",
            ref,
        )
        return {"result": "discarded", "reason": "RunLockLost", "message": f"{ref}: run lock lost"}
    if outcome is not None:
        emit_events(ctx, ref, started.previous, outcome)
    for dependent in dependents:
        enqueue_dependent(dependent)
    if requeue is not None and obj is not None:
        if finished.token != started.token:
            # A `reconcile` request (its token) arrived meanwhile; its task may still be queued.
            requeue(ref, "manual")
        elif finished.pending is not None:
            requeue(ref, finished.pending)
    return summary


def _reconcile_locked(
    obj: Object,
    *,
    prev: dict[str, Any],
    token: str | None,
    ctx: Context,
    reconciler: Reconciler,
    dependents: list[ObjectRef],
) -> tuple[Outcome, dict[str, Any], float | None, dict[str, Any]]:
    """Run the reconciler; return (outcome, status to store, seconds to the next run or None,
    summary).

    Appends to ``dependents`` the objects to queue once the status is stored."""
    ref = obj.ref
    generation = int(obj.metadata.get("generation", 1))
    started = time.time()
    try:
        outcome = reconciler(obj, prev, ctx)
    except LockLost:
        raise
    except SoftTimeLimitExceeded:
        outcome = Outcome("transient", "ReconciliationTimedOut", f"{ref}: reconcile exceeded spec.timeout")
    except Exception as exc:
        log.exception("reconcile of %s failed unexpectedly", ref)
        outcome = Outcome("transient", "ReconciliationFailed", redact(f"{type(exc).__name__}: {exc}"))
    outcome.message = redact(outcome.message)
    now = time.time()
    add_log_fields(revision=outcome.revision)
    instruments.reconciled(ref.kind, ref.namespace, ref.name, result=outcome.result, duration_s=now - started)
    status = summarise(prev, outcome, generation=generation, now=now, request_token=token)
    status["lastRunDurationSeconds"] = round(now - started, 3)
    delay = next_delay_s(
        outcome,
        interval_s=interval_s(obj),
        failures=int(status.get("failures", 0)),
        jitter=ctx.settings.jitter,
        backoff_base_s=ctx.settings.backoff_base_s,
        backoff_max_s=ctx.settings.backoff_max_s,
        wait_retry_s=ctx.settings.wait_retry_s,
    )
    if outcome.changed and outcome.ready:
        dependents.extend(ctx.catalog.dependents_of(ref))
    # A run that changed nothing and stays Ready is DEBUG: at thousands of polls a minute the INFO
    # log keeps what a person wants to read (new revisions, failures, recoveries).
    quiet = outcome.ready and not outcome.changed and (condition(prev, "Ready") or {}).get("status") == "True"
    log.log(
        logging.DEBUG if quiet else logging.INFO,
        "%s: %s %s: %s",
        ref,
        outcome.result,
        outcome.reason,
        outcome.message,
    )
    summary = {
        "result": outcome.result,
        "reason": outcome.reason,
        "message": outcome.message,
        "revision": outcome.revision,
        "next_run_in_s": round(delay, 3),
    }
    return outcome, status, None if obj.suspended else delay, summary


def emit_events(ctx: Context, ref: ObjectRef, prev: dict[str, Any], outcome: Outcome) -> None:
    """One event per change: a new revision, a new failure or wait (not repeated), or a recovery."""
    old_ready = condition(prev, "Ready") or {}
    if outcome.ready:
        if outcome.changed:
            ctx.events.emit(
                ref,
                severity="info",
                reason=outcome.event_reason or outcome.reason,
                message=outcome.message,
                revision=outcome.revision or "",
            )
        elif old_ready.get("status") == "False":
            ctx.events.emit(
                ref,
                severity="info",
                reason=outcome.reason,
                message=outcome.message,
                revision=outcome.revision or "",
            )
        return
    if old_ready.get("reason") == outcome.reason and old_ready.get("message") == outcome.message:
        return
    severity = "info" if outcome.result == "waiting" else "error"
    ctx.events.emit(
        ref,
        severity=severity,
        reason=outcome.reason,
        message=outcome.message,
        revision=outcome.revision or "",
    )
