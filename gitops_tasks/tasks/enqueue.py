"""Sending reconcile tasks: the one place that applies the enqueue guard and time limits."""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from typing import Any

from celery import Celery

from gitops_tasks import tasknames
from gitops_tasks.app import DEFAULT_HARD_LIMIT_GRACE_S
from gitops_tasks.objects.model import ObjectRef
from gitops_tasks.store import EnqueueGuard, Keys


def send(
    app: Celery,
    ref: ObjectRef,
    *,
    task: str,
    queue: str,
    timeout_s: float,
    reason: str,
    due: float | None = None,
    countdown: float | None = None,
    producer: Any = None,
) -> None:
    """Publish one reconcile task. Arguments are the object's identity and the trigger only."""
    app.send_task(
        task,
        kwargs={**ref.as_kwargs(), "reason": reason},
        queue=queue,
        soft_time_limit=timeout_s,
        time_limit=timeout_s + DEFAULT_HARD_LIMIT_GRACE_S,
        countdown=countdown,
        # Status lives in Redis; asking for a result would make every send SUBSCRIBE to it.
        ignore_result=True,
        headers={"gt_due": due, "gt_sent": time.time()},
        producer=producer,
    )


def enqueue(
    app: Celery,
    guard: EnqueueGuard,
    keys: Keys,
    ref: ObjectRef,
    *,
    reason: str,
    queue: str | None = None,
    force: bool = False,
    countdown: float | None = None,
) -> bool:
    """Queue a reconcile of ``ref`` unless one is already queued (``force`` skips that check).

    Returns False when a task was already queued (that task will do the work) or when the kind has
    no reconciler. The guard is released again if publishing fails (or the claim's reply is lost),
    so nothing is stuck; only the guard this call set is released (its value is a token unique to
    the call), never one a later send claimed. ``countdown``: the task runs that many seconds
    from now (the guard stays set meanwhile).
    """
    meta_raw = guard.client.hget(keys.schedule_meta, ref.key)
    task = tasknames.TASK_BY_KIND.get(ref.kind)
    if task is None:
        return False
    meta: dict[str, Any] = json.loads(meta_raw) if meta_raw else {}
    value = f"send:{secrets.token_hex(8)}"
    try:
        claimed = guard.claim(ref.key, value=value)
    except Exception:
        # Redis may have set the guard and lost the reply: release it if it is ours (best effort).
        with contextlib.suppress(Exception):
            guard.release_if(ref.key, value)
        raise
    if not claimed and not force:
        return False
    try:
        send(
            app,
            ref,
            task=task if queue is None else tasknames.RECONCILE,
            queue=queue or meta.get("queue", "priority"),
            timeout_s=float(meta.get("timeout_s", 60)),
            reason=reason,
            countdown=countdown,
        )
    except Exception:
        if claimed:
            guard.release_if(ref.key, value)
        raise
    return True
