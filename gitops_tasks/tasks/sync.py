"""Tasks of the ``sync`` queue: apply a Kustomization's source revision to Kubernetes.

The sync itself is :func:`gitops_tasks.sync.reconcile`; this module builds its inputs: the
catalog and status as a lookup, the configured cluster, and the sync settings. Until they move
into :mod:`gitops_tasks.settings`, the cluster settings are read from the environment here
(:func:`sync_settings`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from celery import shared_task

from gitops_tasks import tasknames
from gitops_tasks.objects.model import Object, ObjectRef
from gitops_tasks.objects.outcome import Outcome
from gitops_tasks.objects.ownership import deleting, has_finalizer
from gitops_tasks.settings import Settings
from gitops_tasks.tasks.context import Context

if TYPE_CHECKING:  # the kubernetes client is imported only when a sync runs
    from gitops_tasks.store.catalog import Applied, Removed
    from gitops_tasks.sync import Cluster, SyncConfig


@dataclass(frozen=True)
class SyncSettings:
    kubeconfig: Path | None = None
    kube_context: str | None = None
    default_target_namespace: str = "default"
    allowed_namespaces: tuple[str, ...] = ()
    sync_tag: str = ""
    strict_substitutions: bool = False
    #: ``NAMESPACE/NAME`` of the controller-wide age key Secret (Flux's --sops-age-secret).
    sops_age_secret: str = ""


def sync_settings(settings: Settings) -> SyncSettings:
    """The part of ``settings`` a sync uses."""
    return SyncSettings(
        kubeconfig=settings.kubeconfig,
        kube_context=settings.kube_context,
        default_target_namespace=settings.default_target_namespace,
        allowed_namespaces=settings.allowed_namespaces,
        sync_tag=settings.sync_tag,
        strict_substitutions=settings.strict_substitutions,
        sops_age_secret=(
            settings.sops_age_secret
            if "/" in settings.sops_age_secret or not settings.sops_age_secret
            else f"{settings.default_namespace}/{settings.sops_age_secret}"
        ),
    )


def sync_config(settings: Settings, sync: SyncSettings) -> SyncConfig:
    """The :class:`gitops_tasks.sync.SyncConfig` for these settings."""
    from gitops_tasks.sync import SyncConfig

    return SyncConfig(
        secrets_dir=settings.resolved_secrets_dir,
        cache_dir=settings.resolved_cache_dir,
        default_namespace=sync.default_target_namespace,
        allowed_namespaces=sync.allowed_namespaces,
        strict_substitution=sync.strict_substitutions,
        sync_tag=sync.sync_tag,
        sops_age_secret=sync.sops_age_secret,
    )


def connector(sync: SyncSettings) -> Callable[[str | None], Cluster]:
    """``connect(impersonate)``: a new :class:`gitops_tasks.sync.Cluster` for the configured cluster."""
    from gitops_tasks.sync import Cluster

    def connect(impersonate: str | None) -> Cluster:
        return Cluster.from_kubeconfig(sync.kubeconfig, context=sync.kube_context, impersonate=impersonate)

    return connect


#: Kinds with a status of their own (a health check waits for their Ready condition); the others
#: are healthy once stored.
_WATCHED_KINDS = frozenset({*tasknames.TASK_BY_KIND, "ImagePolicy"})


@dataclass
class StoreLookup:
    """The catalog and status stores as the sync concern's ``Lookup`` and ``Fleet``."""

    ctx: Context

    def object(self, ref: ObjectRef) -> Object | None:
        return self.ctx.catalog.get(ref)

    def status(self, ref: ObjectRef) -> dict[str, Any]:
        return self.ctx.status.get(ref)

    def store(self, owner: ObjectRef, objects: list[Object]) -> list[Applied]:
        from beat_schedule import entry_for

        return self.ctx.catalog.apply(objects, entry_for=entry_for, owner=owner, created_by="sync")

    def prune(self, owner: ObjectRef, refs: list[ObjectRef]) -> list[Removed]:
        from beat_schedule import entry_for

        return self.ctx.catalog.remove_owned(owner, refs, entry_for=entry_for)

    def ready(self, ref: ObjectRef) -> dict[str, Any] | None:
        from gitops_tasks.sync.fleet import health_view

        obj = self.ctx.catalog.get(ref)
        if obj is None:
            return None
        if obj.kind not in _WATCHED_KINDS:
            return health_view(obj, {"conditions": [{"type": "Ready", "status": "True"}]})
        return health_view(obj, self.ctx.status.get(ref))


def reconcile_kustomization(obj: Object, previous: dict[str, Any], ctx: Context) -> Outcome:
    """Sync one Kustomization (the runner's reconciler for the kind); one being deleted runs its
    finalizer (with ``prune``: garbage-collect what it owns) and leaves the catalog."""
    from gitops_tasks.sync.reconcile import finalize, reconcile

    sync = sync_settings(ctx.settings)
    lookup = StoreLookup(ctx)
    if deleting(obj):
        outcome = finalize(
            obj,
            previous,
            connect=connector(sync),
            config=sync_config(ctx.settings, sync),
            ensure_held=ctx.ensure_held,
            fleet=lookup if has_finalizer(obj) else None,
        )
        if outcome.ready:
            ctx.ensure_held()
            ctx.catalog.delete(obj.ref)
        return outcome
    return reconcile(
        obj,
        previous,
        lookup=lookup,
        connect=connector(sync),
        config=sync_config(ctx.settings, sync),
        ensure_held=ctx.ensure_held,
        fleet=lookup,
    )


@shared_task(name=tasknames.SYNC_APPLY, bind=True, ignore_result=True)
def apply(self: Any, kind: str, namespace: str, name: str, reason: str = "schedule") -> dict[str, Any]:
    """Sync one Kustomization: build its source revision, apply, prune, wait for health."""
    from gitops_tasks.tasks.dispatch import run_kind

    return run_kind(self.app, kind, namespace, name, reason=reason)
