"""Tasks of the ``automation`` queue: run one ImageUpdateAutomation.

:func:`reconcile_image_update_automation` is the reconciler the dispatcher calls for the kind. It
builds the worker's options (the Redis branch lock shared by every worker, the CI-skip and
read-only switches), runs :func:`gitops_tasks.automation.reconcile.reconcile`, and after a push
queues a poll of the source GitRepository at once, so the new commit reaches the sync without
waiting for the repository's interval. Files the setters had to skip (a marker in a file that
does not parse) produce one error event whenever that set changes.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from gitops_tasks import tasknames
from gitops_tasks.objects.kinds import source_ref
from gitops_tasks.objects.model import Object, ObjectRef
from gitops_tasks.objects.outcome import Outcome
from gitops_tasks.tasks.context import Context

#: Event reason for files with a marker that could not be rewritten.
SKIPPED_FILES = "UpdateSkippedFiles"


def reconcile_image_update_automation(obj: Object, previous: dict[str, Any], ctx: Context) -> Outcome:
    """Run ``obj`` once; after a push, queue its source GitRepository's poll."""
    from gitops_tasks.automation.locking import redis_branch_lock
    from gitops_tasks.automation.reconcile import Options, reconcile

    options = Options(
        secrets_dir=ctx.settings.resolved_secrets_dir,
        cache_dir=ctx.settings.resolved_cache_dir,
        lock=redis_branch_lock(ctx.client, ctx.keys, owner=ctx.owner),
        ci_skip=ctx.settings.git_ci_skip,
        read_only=ctx.settings.git_readonly,
    )
    outcome = reconcile(obj, previous, catalog=ctx.catalog, statuses=ctx.status, options=options)
    skipped = outcome.facts.get("skippedFiles") or []
    if outcome.ready and skipped and skipped != previous.get("skippedFiles"):
        listed = "; ".join(f"{s['path']}: {s['reason']}" for s in skipped)
        ctx.events.emit(obj.ref, severity="error", reason=SKIPPED_FILES, message=f"skipped files: {listed}")
    if outcome.ready and outcome.changed:
        source = source_ref(obj)
        if source is not None:
            _enqueue(ctx, source, reason=f"dependency {obj.ref}")
    return outcome


def _enqueue(ctx: Context, ref: ObjectRef, *, reason: str) -> bool:
    from gitops_tasks.tasks.enqueue import enqueue

    return enqueue(ctx.app, ctx.guard, ctx.keys, ref, reason=reason)


@shared_task(name=tasknames.AUTOMATION_RUN, bind=True, ignore_result=True)
def run(self: Any, kind: str, namespace: str, name: str, reason: str = "schedule") -> dict[str, Any]:
    """Run one ImageUpdateAutomation: setters on a fresh checkout, commit, push."""
    from gitops_tasks.tasks.dispatch import run_kind

    return run_kind(self.app, kind, namespace, name, reason=reason)
