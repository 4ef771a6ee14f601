"""Tasks of the ``registry`` queue: scan an ImageRepository, then evaluate its ImagePolicies.

The scan itself is :func:`gitops_tasks.registry.reconcile.reconcile`; this module builds its
per-process handles (the shared rate limiter, token cache and tag store in Redis, the HTTP client)
and, after a scan, evaluates every ImagePolicy whose ``imageRepositoryRef`` names the repository
when the tag set changed or the policy has not seen its current generation yet. Each policy's status
goes through the runner's summary and event rules; a policy whose latest image changed queues the
ImageUpdateAutomations that select it. A scan that changed the tags also queues the automations
whose Flux v1 workloads read this repository (:func:`~.automation.automations_reading`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import redis
from celery import shared_task

from gitops_tasks import tasknames
from gitops_tasks.objects.kinds import source_ref
from gitops_tasks.objects.model import Object, ObjectRef
from gitops_tasks.objects.outcome import Outcome
from gitops_tasks.objects.selectors import selects
from gitops_tasks.ratelimit import RedisTokenBucket
from gitops_tasks.redact import redact
from gitops_tasks.registry.auth import ClusterSecrets
from gitops_tasks.registry.client import RegistryClient
from gitops_tasks.registry.reconcile import reconcile as reconcile_registry
from gitops_tasks.registry.tags import RedisTagStore
from gitops_tasks.registry.tokens import RedisTokenCache
from gitops_tasks.registry.transport import Transport
from gitops_tasks.store.summary import summarise
from gitops_tasks.tasks.context import Context

log = logging.getLogger(__name__)


@dataclass
class RegistryHandles:
    """What every scan in one worker process shares."""

    client: RegistryClient
    store: RedisTagStore
    limiter: RedisTokenBucket
    #: Secrets and service accounts of the configured cluster (None without one).
    cluster: ClusterSecrets | None = None


class KubeSecrets:
    """:class:`~gitops_tasks.registry.auth.ClusterSecrets` over the sync concern's cluster client."""

    def __init__(self, cluster: Any) -> None:
        self.cluster = cluster

    def secret(self, namespace: str, name: str) -> Mapping[str, str] | None:
        from gitops_tasks.sync.inputs import read_cluster

        return read_cluster(self.cluster, "Secret", namespace, name)

    def pull_secrets(self, namespace: str, service_account: str) -> list[str] | None:
        live = self.cluster.get("v1", "ServiceAccount", service_account, namespace)
        if live is None:
            return None
        return [str(s["name"]) for s in live.get("imagePullSecrets") or [] if s.get("name")]


def cluster_secrets(settings: Any) -> ClusterSecrets | None:
    """The configured cluster's secrets (``GITOPS_TASKS_KUBECONFIG``, or in-cluster in a pod)."""
    if settings.kubeconfig is None and not os.environ.get("KUBERNETES_SERVICE_HOST"):
        return None
    from gitops_tasks.sync.cluster import Cluster

    return KubeSecrets(Cluster.from_kubeconfig(settings.kubeconfig, context=settings.kube_context))


_lock = threading.Lock()
_handles: dict[tuple[int, int], RegistryHandles] = {}


def handles(ctx: Context) -> RegistryHandles:
    """This process's registry handles for ``ctx`` (rebuilt after a fork)."""
    key = (os.getpid(), id(ctx))
    with _lock:
        found = _handles.get(key)
        if found is None:
            settings = ctx.settings
            limiter = RedisTokenBucket(
                ctx.client,
                ctx.keys,
                rps=settings.registry_rps,
                burst=settings.registry_burst,
                host_overrides=settings.registry_hosts,
            )
            client = RegistryClient(
                transport=Transport(limiter), tokens=RedisTokenCache(ctx.client, ctx.keys)
            )
            # Tag lists are compressed bytes: they need a client that does not decode answers.
            binary = redis.Redis.from_url(settings.effective_redis_url(), health_check_interval=30)
            found = RegistryHandles(
                client, RedisTagStore(binary, ctx.keys), limiter, cluster=cluster_secrets(settings)
            )
            _handles.clear()
            _handles[key] = found
        return found


def reconcile_image_repository(obj: Object, previous: dict[str, Any], ctx: Context) -> Outcome:
    """Scan ``obj`` and, when it succeeded, bring its ImagePolicies up to date."""
    registry = handles(ctx)
    settings = ctx.settings
    outcome = reconcile_registry(
        obj,
        previous,
        client=registry.client,
        store=registry.store,
        secrets_dir=settings.resolved_secrets_dir,
        include_images=settings.registry_include_image,
        exclude_images=settings.registry_exclude_image,
        scanning_disabled=settings.registry_disable_scanning,
        cluster=registry.cluster,
    )
    if outcome.ready:
        evaluate_policies(ctx, obj, tags_changed=outcome.changed, store=registry.store)
    if outcome.ready and outcome.changed:
        from gitops_tasks.tasks.automation import automations_reading

        for automation in automations_reading(ctx, obj):
            _enqueue(ctx, automation, reason=f"dependency {obj.ref}")
    return outcome


def evaluate_policies(ctx: Context, repository: Object, *, tags_changed: bool, store: RedisTagStore) -> int:
    """Evaluate the ImagePolicies of ``repository`` that need it; returns how many were evaluated.

    A policy needs it when the tags changed or its status has not observed its generation (never
    evaluated, or its spec changed). Suspended policies are left alone. One failing policy does not
    stop the others.
    """
    from gitops_tasks.policy import evaluate

    due = [
        policy
        for policy in ctx.catalog.iter_kind("ImagePolicy")
        if source_ref(policy) == repository.ref and not policy.suspended
    ]
    if not due:
        return 0
    statuses = ctx.status.get_many([p.ref for p in due])
    work = [
        (policy, prev)
        for policy, prev in zip(due, statuses, strict=True)
        if tags_changed or prev.get("observedGeneration") != _generation(policy)
    ]
    if not work:
        return 0
    tags = store.get(repository.ref.key) or []
    image = str(repository.spec.get("image", ""))
    for policy, prev in work:
        started = time.time()
        try:
            outcome = evaluate(policy, tags, image=image, previous_status=prev)
        except Exception as exc:
            log.exception("evaluating %s failed unexpectedly", policy.ref)
            outcome = Outcome("transient", "ReconciliationFailed", f"{type(exc).__name__}: {exc}")
        record_outcome(ctx, policy, prev, outcome, started=started)
        if outcome.ready and outcome.facts.get("latestImage") != prev.get("latestImage"):
            for automation in automations_selecting(policy, ctx.catalog.iter_kind("ImageUpdateAutomation")):
                _enqueue(ctx, automation, reason=f"dependency {policy.ref}")
    return len(work)


def record_outcome(
    ctx: Context, obj: Object, prev: dict[str, Any], outcome: Outcome, *, started: float
) -> dict[str, Any]:
    """Store the status of a reconcile that ran outside the runner, with the runner's summary and
    event rules (used for ImagePolicies, which are evaluated by their repository's scan)."""
    from gitops_tasks.tasks.runner import emit_events

    outcome.message = redact(outcome.message)
    now = time.time()
    status = summarise(prev, outcome, generation=_generation(obj), now=now)
    status["lastRunDurationSeconds"] = round(now - started, 3)
    ctx.status.put(obj.ref, status)
    emit_events(ctx, obj.ref, prev, outcome)
    return status


def automations_selecting(policy: Object, automations: Iterable[Object]) -> list[ObjectRef]:
    """The ImageUpdateAutomations in ``policy``'s namespace whose ``spec.policySelector`` selects it
    (Flux's rule: no selector selects every policy of the namespace), sorted."""
    labels = dict(policy.metadata.get("labels") or {})
    return sorted(
        a.ref
        for a in automations
        if a.namespace == policy.namespace and selects(a.spec.get("policySelector"), labels)
    )


def _generation(obj: Object) -> int:
    return int(obj.metadata.get("generation", 1))


def _enqueue(ctx: Context, ref: ObjectRef, *, reason: str) -> bool:
    """Queue a reconcile of ``ref`` (False while its kind has no reconciler)."""
    from gitops_tasks.tasks.enqueue import enqueue

    return enqueue(ctx.app, ctx.guard, ctx.keys, ref, reason=reason)


@shared_task(name=tasknames.REGISTRY_SCAN, bind=True, ignore_result=True)
def scan(self: Any, kind: str, namespace: str, name: str, reason: str = "schedule") -> dict[str, Any]:
    """Scan one ImageRepository: list its tags, store them, evaluate its ImagePolicies."""
    from gitops_tasks.tasks.dispatch import run_kind

    return run_kind(self.app, kind, namespace, name, reason=reason)
