"""Kind → reconciler, and the generic ``gitops.reconcile`` task other systems can call."""

from __future__ import annotations

from typing import Any

from celery import Celery, current_task, shared_task

from gitops_tasks import tasknames
from gitops_tasks.objects.model import ObjectRef
from gitops_tasks.tasks import runner
from gitops_tasks.tasks.automation import reconcile_image_update_automation
from gitops_tasks.tasks.context import context
from gitops_tasks.tasks.enqueue import enqueue
from gitops_tasks.tasks.git import reconcile_git_repository
from gitops_tasks.tasks.registry import reconcile_image_repository
from gitops_tasks.tasks.sync import reconcile_kustomization

RECONCILERS: dict[str, runner.Reconciler] = {
    "GitRepository": reconcile_git_repository,
    "ImageRepository": reconcile_image_repository,
    "ImageUpdateAutomation": reconcile_image_update_automation,
    "Kustomization": reconcile_kustomization,
}


def run_kind(app: Celery, kind: str, namespace: str, name: str, *, reason: str) -> dict[str, Any]:
    ref = ObjectRef(kind, namespace, name)
    reconciler = RECONCILERS.get(kind)
    if reconciler is None:
        return {"result": "unsupported", "message": f"kind {kind} has no reconciler in this version"}
    ctx = context()

    def enqueue_dependent(dependent: ObjectRef) -> bool:
        return enqueue(app, ctx.guard, ctx.keys, dependent, reason=f"dependency {ref}")

    def requeue(again: ObjectRef, why: str) -> bool:
        # A person's request goes to the priority queue, as it came; others to the kind's queue.
        queue = "priority" if why == "manual" else None
        return enqueue(app, ctx.guard, ctx.keys, again, reason=why, queue=queue)

    return runner.run(
        ref,
        reason=reason,
        ctx=ctx,
        reconciler=reconciler,
        enqueue_dependent=enqueue_dependent,
        requeue=requeue,
        task_id=_current_task_id(),
    )


def _current_task_id() -> str | None:
    """The id of the Celery task running in this thread, if any."""
    task = current_task
    request = getattr(task, "request", None) if task is not None else None
    task_id = getattr(request, "id", None)
    return task_id if isinstance(task_id, str) else None


@shared_task(name=tasknames.RECONCILE, bind=True, ignore_result=False)
def reconcile(
    self: Any, kind: str, namespace: str = "default", name: str = "", reason: str = "manual"
) -> dict[str, Any]:
    """Reconcile any object now (what ``gitops-tasks reconcile`` and webhooks send)."""
    return run_kind(self.app, kind, namespace, name, reason=reason)
