"""The schedule entry of one object (pure)."""

from __future__ import annotations

from typing import Any

from gitops_tasks import tasknames
from gitops_tasks.objects import QUEUE_BY_KIND, interval_s, timeout_s
from gitops_tasks.objects.model import Object


def entry_for(obj: Object) -> dict[str, Any] | None:
    """``{task, queue, interval_s, timeout_s}`` for a scheduled kind, None for kinds without a reconciler."""
    task = tasknames.TASK_BY_KIND.get(obj.kind)
    if task is None or interval_s(obj) <= 0:
        return None
    return {
        "task": task,
        "queue": QUEUE_BY_KIND[obj.kind],
        "interval_s": interval_s(obj),
        "timeout_s": timeout_s(obj),
    }
