"""Kind → reconciler, and the generic ``gitops.reconcile`` task other systems can call."""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, current_task, shared_task

from gitops_tasks import tasknames
from gitops_tasks.logsetup import log_fields
from gitops_tasks.objects import kind_from_cli
from gitops_tasks.objects.model import ObjectRef
from gitops_tasks.objects.names import name_problem, namespace_problem
from gitops_tasks.redact import redact
from gitops_tasks.tasks import runner
from gitops_tasks.tasks.automation import reconcile_image_update_automation
from gitops_tasks.tasks.context import context
from gitops_tasks.tasks.enqueue import enqueue
from gitops_tasks.tasks.git import reconcile_git_repository
from gitops_tasks.tasks.registry import reconcile_image_repository
from gitops_tasks.tasks.sync import reconcile_kustomization

log = logging.getLogger(__name__)

RECONCILERS: dict[str, runner.Reconciler] = {
    "GitRepository": reconcile_git_repository,
    "ImageRepository": reconcile_image_repository,
    "ImageUpdateAutomation": reconcile_image_update_automation,
    "Kustomization": reconcile_kustomization,
}


class InvalidTaskArguments(ValueError):
    """A task's arguments name no object it can reconcile (the task fails with this message)."""


def check_arguments(task: str, kind: Any, namespace: Any, name: Any, reason: Any) -> ObjectRef:
    """The object a reconcile task's JSON arguments name.

    Raises :class:`InvalidTaskArguments` naming the task, the argument and what was expected: a
    kind this version reconciles (spelt as in YAML; ``task`` must be that kind's task or
    ``gitops.reconcile``), a DNS-1123 namespace and name, strings only. The message is masked.
    """
    for arg, value in (("kind", kind), ("namespace", namespace), ("name", name), ("reason", reason)):
        if not isinstance(value, str):
            raise _invalid(f"{task}: argument {arg}={value!r} must be a string")
    if kind not in RECONCILERS:
        try:
            known = kind_from_cli(kind)
        except ValueError:
            known = None
        if known == kind:
            raise _invalid(f"{task}: argument kind={kind!r} has no reconciler in this version")
        hint = f" (did you mean {known!r}?)" if known in RECONCILERS else ""
        raise _invalid(
            f"{task}: argument kind={kind!r} is not a kind gitops-tasks reconciles{hint}; "
            f"expected one of {', '.join(RECONCILERS)}"
        )
    own = tasknames.TASK_BY_KIND[kind]
    if task not in (tasknames.RECONCILE, own):
        raise _invalid(f"{task}: argument kind={kind!r} is reconciled by {own}, not by {task}")
    if not name:
        raise _invalid(f"{task}: argument name is missing: the object's metadata.name")
    for arg, problem in (("namespace", namespace_problem(namespace)), ("name", name_problem(name))):
        if problem:
            raise _invalid(f"{task}: argument {arg}: {problem}")
    return ObjectRef(kind, namespace, name)


def _invalid(message: str) -> InvalidTaskArguments:
    return InvalidTaskArguments(redact(message))


def run_kind(app: Celery, kind: str, namespace: str, name: str, *, reason: str) -> dict[str, Any]:
    """Reconcile the object the task's arguments name; see :func:`check_arguments` for what fails.

    A request (any reason but ``schedule``) for an object that is not in the catalog logs a
    warning; through ``gitops.reconcile``, the task fails with that message.
    """
    task = getattr(current_task, "name", None) or tasknames.RECONCILE
    try:
        ref = check_arguments(task, kind, namespace, name, reason)
    except InvalidTaskArguments as exc:
        log.warning("%s", exc)
        raise
    reconciler = RECONCILERS[kind]
    ctx = context()

    def enqueue_dependent(dependent: ObjectRef) -> bool:
        return enqueue(app, ctx.guard, ctx.keys, dependent, reason=f"dependency {ref}")

    def requeue(again: ObjectRef, why: str) -> bool:
        # A person's request goes to the priority queue, as it came; others to the kind's queue.
        queue = "priority" if why == "manual" else None
        return enqueue(app, ctx.guard, ctx.keys, again, reason=why, queue=queue)

    task_id = _current_task_id()
    with log_fields(task_id=task_id, object=ref.key):
        summary = runner.run(
            ref,
            reason=reason,
            ctx=ctx,
            reconciler=reconciler,
            enqueue_dependent=enqueue_dependent,
            requeue=requeue,
            task_id=task_id,
        )
    if summary.get("result") == "gone" and reason != "schedule":
        message = f"{task}: {ref} is not in the catalog (requested with reason {reason!r})"
        log.warning("%s", message)
        if task == tasknames.RECONCILE:
            raise _invalid(message)
    return summary


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
