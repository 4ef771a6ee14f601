"""Stable Celery task names: other systems call these by name, so they never change.

Every reconcile task takes the same JSON keyword arguments: ``kind``, ``namespace``, ``name`` and an
optional ``reason`` (``schedule``, ``manual``, ``dependency``, ``webhook``...). Never secrets, never specs.
"""

from __future__ import annotations

#: Poll one GitRepository.
GIT_POLL = "gitops.git.poll"
#: Scan one ImageRepository (list tags, store them, evaluate its ImagePolicies).
REGISTRY_SCAN = "gitops.registry.scan"
#: Run one ImageUpdateAutomation (setters on a fresh checkout, commit, push).
AUTOMATION_RUN = "gitops.automation.run"
#: Sync one Kustomization (build its source revision, apply, prune, health checks).
SYNC_APPLY = "gitops.sync.apply"
#: Reconcile any kind now (dispatches on ``kind``); what ``gitops-tasks reconcile`` sends.
RECONCILE = "gitops.reconcile"

#: Route new events to the Alerts they match and send the notifications that are due (no
#: arguments but an optional ``reason``; every worker's tick sends it when something waits).
NOTIFY_DISPATCH = "gitops.notify.dispatch"

#: Kind → the task that reconciles it on a schedule. Kinds absent here load and validate but have
#: no reconciler yet (they are not scheduled).
TASK_BY_KIND: dict[str, str] = {
    "GitRepository": GIT_POLL,
    "ImageRepository": REGISTRY_SCAN,
    "ImageUpdateAutomation": AUTOMATION_RUN,
    "Kustomization": SYNC_APPLY,
}
