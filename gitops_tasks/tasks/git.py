"""Tasks of the ``git`` queue."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from gitops_tasks import tasknames
from gitops_tasks.objects.model import Object
from gitops_tasks.objects.outcome import Outcome
from gitops_tasks.tasks.context import Context


def reconcile_git_repository(obj: Object, previous: dict[str, Any], ctx: Context) -> Outcome:
    from gitops_tasks.sources.reconcile import reconcile as reconcile_git

    return reconcile_git(
        obj,
        previous,
        secrets_dir=ctx.settings.resolved_secrets_dir,
        cache_dir=ctx.settings.resolved_cache_dir,
    )


@shared_task(name=tasknames.GIT_POLL, bind=True, ignore_result=True)
def poll(self: Any, kind: str, namespace: str, name: str, reason: str = "schedule") -> dict[str, Any]:
    """Poll one GitRepository: ls-remote, fetch if the wanted revision changed, record it."""
    from gitops_tasks.tasks.dispatch import run_kind

    return run_kind(self.app, kind, namespace, name, reason=reason)
