"""Tasks of the ``registry`` queue: scan an ImageRepository, then evaluate its ImagePolicies.

The scan itself is :func:`gitops_tasks.registry.reconcile.reconcile`; this module builds its
per-process handles (the shared rate limiter, token cache and tag store in Redis, the HTTP client,
the configured cluster's Secrets cached for :data:`DEFAULT_CLUSTER_CACHE_TTL_S`) and, after a scan,
evaluates every ImagePolicy whose ``imageRepositoryRef`` names the repository (found through the
catalog's per-repository index) when the tag set changed or the policy has not seen its current
generation yet. Each policy's status
goes through the runner's summary and event rules; a policy whose latest image changed queues the
ImageUpdateAutomations that select it. A scan that changed the tags also queues the automations
whose Flux v1 workloads read this repository (:func:`~.automation.automations_reading`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from celery import shared_task

from gitops_tasks import tasknames
from gitops_tasks.objects.model import Object, ObjectRef
from gitops_tasks.objects.outcome import Outcome
from gitops_tasks.objects.selectors import selects
from gitops_tasks.ratelimit import RedisHostCircuit, RedisTokenBucket
from gitops_tasks.redact import redact
from gitops_tasks.registry.auth import ClusterSecrets
from gitops_tasks.registry.client import RegistryClient
from gitops_tasks.registry.reconcile import reconcile as reconcile_registry
from gitops_tasks.registry.tags import RedisTagStore
from gitops_tasks.registry.tokens import RedisTokenCache
from gitops_tasks.registry.transport import Transport
from gitops_tasks.store.client import connect_bytes
from gitops_tasks.store.summary import summarise
from gitops_tasks.tasks.context import Context

log = logging.getLogger(__name__)

#: Seconds a Secret or ServiceAccount read from the cluster for a scan's credentials is reused by
#: this process (a change in the cluster is seen by scans at most this much later).
DEFAULT_CLUSTER_CACHE_TTL_S = 30.0
#: Cached cluster reads above which expired ones are dropped.
DEFAULT_CLUSTER_CACHE_ENTRIES = 1024


@dataclass
class RegistryHandles:
    """What every scan in one worker process shares."""

    client: RegistryClient
    store: RedisTagStore
    limiter: RedisTokenBucket
    #: Secrets and service accounts of the configured cluster (None without one).
    cluster: ClusterSecrets | None = None


class KubeSecrets:
    """:class:`~gitops_tasks.registry.auth.ClusterSecrets` over the sync concern's cluster client.

    What it reads is kept for ``ttl_s`` (per kind, namespace and name), so scans do not send
    Kubernetes API GETs every time: a changed Secret or ServiceAccount is seen at most ``ttl_s``
    later. A missing one is not kept (the next scan asks again). Thread-safe.
    """

    def __init__(
        self,
        cluster: Any,
        *,
        ttl_s: float = DEFAULT_CLUSTER_CACHE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cluster = cluster
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str, str], tuple[Any, float]] = {}

    def secret(self, namespace: str, name: str) -> Mapping[str, str] | None:
        from gitops_tasks.sync.inputs import read_cluster

        found: Mapping[str, str] | None = self._cached(
            ("Secret", namespace, name), lambda: read_cluster(self.cluster, "Secret", namespace, name)
        )
        return found

    def pull_secrets(self, namespace: str, service_account: str) -> list[str] | None:
        def read() -> list[str] | None:
            live = self.cluster.get("v1", "ServiceAccount", service_account, namespace)
            if live is None:
                return None
            return [str(s["name"]) for s in live.get("imagePullSecrets") or [] if s.get("name")]

        found: list[str] | None = self._cached(("ServiceAccount", namespace, service_account), read)
        return None if found is None else list(found)

    def _cached(self, key: tuple[str, str, str], read: Callable[[], Any]) -> Any:
        now = self._clock()
        with self._lock:
            found = self._cache.get(key)
        if found is not None and found[1] > now:
            return found[0]
        value = read()
        with self._lock:
            if value is None:
                self._cache.pop(key, None)
            else:
                if len(self._cache) >= DEFAULT_CLUSTER_CACHE_ENTRIES:
                    self._cache = {k: v for k, v in self._cache.items() if v[1] > now}
                self._cache[key] = (value, now + self.ttl_s)
        return value


def cluster_secrets(settings: Any, *, ttl_s: float = DEFAULT_CLUSTER_CACHE_TTL_S) -> ClusterSecrets | None:
    """The configured cluster's secrets (``GITOPS_TASKS_KUBECONFIG``, or in-cluster in a pod), each
    read kept ``ttl_s`` seconds (:class:`KubeSecrets`)."""
    if settings.kubeconfig is None and not os.environ.get("KUBERNETES_SERVICE_HOST"):
        return None
    from gitops_tasks.sync.cluster import Cluster

    cluster = Cluster.from_kubeconfig(settings.kubeconfig, context=settings.kube_context)
    return KubeSecrets(cluster, ttl_s=ttl_s)


_lock = threading.Lock()
_handles: dict[tuple[int, int], RegistryHandles] = {}


def handles(ctx: Context) -> RegistryHandles:
    """This process's registry handles for ``ctx`` (rebuilt after a fork). Keyed by its Redis
    client, which a run's context (``Context.for_run``) shares with the process-wide one."""
    key = (os.getpid(), id(ctx.client))
    found = _handles.get(key)  # the common case needs no lock: built once, then only read
    if found is not None:
        return found
    with _lock:
        found = _handles.get(key)
        if found is None:
            settings = ctx.settings
            limiter = RedisTokenBucket(
                ctx.client,
                ctx.keys,
                rps=settings.registry_rps,
                burst=settings.registry_burst,
                margin=settings.registry_margin,
                host_overrides=settings.registry_hosts,
            )
            circuit = RedisHostCircuit(
                ctx.client,
                ctx.keys,
                threshold=settings.registry_circuit_failures,
                backoff_max_s=settings.registry_host_backoff_max_s,
            )
            transport = Transport(
                limiter, circuit=circuit, host_concurrency=settings.registry_host_concurrency
            )
            client = RegistryClient(
                transport=transport,
                tokens=RedisTokenCache(ctx.client, ctx.keys),
                max_pages=settings.registry_max_pages,
                max_tags=settings.registry_max_tags,
                max_response_bytes=settings.registry_max_response_bytes,
            )
            # Tag lists are compressed bytes: they need a client that does not decode answers.
            binary = connect_bytes(settings)
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

    due = [policy for policy in ctx.catalog.image_policies_of(repository.ref) if not policy.suspended]
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
