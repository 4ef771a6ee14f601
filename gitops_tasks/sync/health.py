"""Health of applied objects, kstatus-style: ``Current``, ``InProgress``, ``Failed``, ``NotFound``.

:func:`status_of` is pure (one live object in, a status and a message out); :func:`wait_healthy`
polls the cluster until every target is ``Current``, one is ``Failed`` (fail fast) or the
timeout passes. Rules follow kstatus: a controller has not caught up while
``status.observedGeneration`` < ``metadata.generation``; Deployments, StatefulSets, DaemonSets and
ReplicaSets are current when all replicas are updated and available; Jobs when ``Complete``
(``Failed`` fails); Pods when ``Ready`` or ``Succeeded``; PVCs when ``Bound``; CRDs when
``Established``; anything else by its conditions (``Stalled=True`` fails, ``Ready`` must not be
``False``, ``Reconciling=True`` is in progress) and is current without conditions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gitops_tasks.sync.errors import ClusterError, HealthError

#: Seconds between two looks at the objects still in progress.
DEFAULT_POLL_S = 0.5

Verdict = tuple[str, str]


@dataclass(frozen=True)
class Target:
    """An object to check: ``Kind/namespace/name`` at ``api_version``."""

    api_version: str
    kind: str
    name: str
    namespace: str = ""

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"


def _conditions(status: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {str(c.get("type")): c for c in status.get("conditions") or [] if isinstance(c, Mapping)}


def _n(value: Any) -> int:
    return int(value) if isinstance(value, int | float) else 0


def _replicas(kind: str, spec: Mapping[str, Any], status: Mapping[str, Any]) -> Verdict:
    wanted = _n(spec.get("replicas", 1))
    if kind == "Deployment":
        progressing = _conditions(status).get("Progressing") or {}
        if progressing.get("reason") == "ProgressDeadlineExceeded":
            return "Failed", f"progress deadline exceeded: {progressing.get('message', '')}".strip()
    updated = _n(status.get("updatedReplicas")) if kind != "ReplicaSet" else _n(status.get("replicas"))
    ready = _n(status.get("availableReplicas" if kind != "StatefulSet" else "readyReplicas"))
    if updated < wanted:
        return "InProgress", f"updated replicas: {updated}/{wanted}"
    if kind == "Deployment" and _n(status.get("replicas")) > updated:
        return "InProgress", f"pending termination: {_n(status.get('replicas')) - updated}"
    if ready < wanted:
        return "InProgress", f"available replicas: {ready}/{wanted}"
    if kind == "StatefulSet" and status.get("updateRevision") not in (None, status.get("currentRevision")):
        return "InProgress", "rollout in progress: currentRevision differs from updateRevision"
    return "Current", f"{kind} is available: {ready}/{wanted} replicas"


def _daemonset(status: Mapping[str, Any]) -> Verdict:
    desired = _n(status.get("desiredNumberScheduled"))
    for field in ("currentNumberScheduled", "updatedNumberScheduled", "numberAvailable"):
        if _n(status.get(field)) < desired:
            return "InProgress", f"{field}: {_n(status.get(field))}/{desired}"
    return "Current", f"all {desired} pods are available"


def status_of(obj: Mapping[str, Any]) -> Verdict:
    """kstatus-like health of one live object: ``(status, message)``."""
    kind = str(obj.get("kind", ""))
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    if meta.get("deletionTimestamp"):
        return "InProgress", "being deleted"
    observed, generation = status.get("observedGeneration"), meta.get("generation")
    if isinstance(observed, int) and isinstance(generation, int) and observed < generation:
        return "InProgress", f"observedGeneration {observed} < generation {generation}"
    conditions = _conditions(status)
    if kind in ("Deployment", "StatefulSet", "ReplicaSet"):
        if kind == "StatefulSet" and (spec.get("updateStrategy") or {}).get("type") == "OnDelete":
            return "Current", "OnDelete update strategy"
        return _replicas(kind, spec, status)
    if kind == "DaemonSet":
        return _daemonset(status)
    if kind == "Job":
        if (conditions.get("Failed") or {}).get("status") == "True":
            return "Failed", f"Job failed: {conditions['Failed'].get('message', '')}".strip()
        if (conditions.get("Complete") or {}).get("status") == "True":
            return "Current", "Job completed"
        return "InProgress", "Job not complete"
    if kind == "Pod":
        phase = status.get("phase")
        if phase == "Failed":
            return "Failed", "Pod failed"
        if phase == "Succeeded" or (conditions.get("Ready") or {}).get("status") == "True":
            return "Current", "Pod is ready"
        return "InProgress", "Pod not ready"
    if kind == "PersistentVolumeClaim":
        phase = status.get("phase")
        return ("Current", "PVC is Bound") if phase == "Bound" else ("InProgress", f"PVC phase {phase}")
    if kind == "CustomResourceDefinition":
        if (conditions.get("Established") or {}).get("status") == "True":
            return "Current", "CRD is established"
        return "InProgress", "CRD is not established yet"
    if kind == "Namespace" and status.get("phase") == "Terminating":
        return "InProgress", "Namespace is terminating"
    lb_pending = not (status.get("loadBalancer") or {}).get("ingress")
    if kind == "Service" and spec.get("type") == "LoadBalancer" and lb_pending:
        return "InProgress", "LoadBalancer has no ingress yet"
    if (conditions.get("Stalled") or {}).get("status") == "True":
        return "Failed", str(conditions["Stalled"].get("message") or "Stalled")
    ready = conditions.get("Ready") or {}
    if ready.get("status") == "False":
        return "InProgress", str(ready.get("message") or "Ready is False")
    if (conditions.get("Reconciling") or {}).get("status") == "True":
        return "InProgress", str(conditions["Reconciling"].get("message") or "Reconciling")
    return "Current", "Resource is current"


Getter = Callable[[Target], Mapping[str, Any] | None]


def wait_healthy(
    targets: Sequence[Target],
    get: Getter,
    *,
    timeout_s: float,
    poll_s: float = DEFAULT_POLL_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Return when every target is ``Current``; raise :class:`HealthError` when one has
    ``Failed`` or when ``timeout_s`` passes (naming each target still waited for and why)."""
    deadline = clock() + timeout_s
    pending = list(dict.fromkeys(targets))
    while True:
        verdicts: dict[Target, Verdict] = {}
        for target in pending:
            try:
                live = get(target)
            except ClusterError as exc:
                verdicts[target] = ("Unknown", exc.message)
                continue
            verdicts[target] = ("NotFound", "not found") if live is None else status_of(live)
        failed = [f"{t} status: 'Failed' ({v[1]})" for t, v in verdicts.items() if v[0] == "Failed"]
        if failed:
            raise HealthError("health check failed: " + "; ".join(failed), result="transient")
        pending = [t for t, v in verdicts.items() if v[0] != "Current"]
        if not pending:
            return
        if clock() >= deadline:
            waiting = ", ".join(f"{t} status: '{verdicts[t][0]}' ({verdicts[t][1]})" for t in pending)
            raise HealthError(f"health check failed after {timeout_s:.0f}s: timeout waiting for: [{waiting}]")
        sleep(min(poll_s, max(deadline - clock(), 0.0)))
