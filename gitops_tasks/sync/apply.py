"""Apply a plan to a cluster, stage by stage, and prune stale objects.

Each stage is first dry-run in full (a server-side apply with ``dryRun=All``), so an invalid
object fails the stage before anything in it is written; only objects whose dry run differs from
the live object are then applied. After a stage with CRDs, their ``Established`` condition is
awaited and discovery refreshed, so the next stage can apply their custom resources.
``kustomize.toolkit.fluxcd.io/ssa: Ignore`` and ``IfNotPresent`` (when the object exists) and
objects ignored on the cluster are skipped. An object whose change touches an immutable field
(422) is deleted and created again when the plan says ``force``.

Pruning deletes, with ``propagationPolicy=Background``, the stale objects that
:func:`~gitops_tasks.sync.plan.prune_verdict` allows, namespaced objects first.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from gitops_tasks.sync.cluster import Cluster
from gitops_tasks.sync.errors import ApplyError, ClusterError, PruneError
from gitops_tasks.sync.inventory import Inventory, ObjId
from gitops_tasks.sync.plan import Owner, Plan, Planned, deletion_order, ignored, prune_verdict

#: Longest wait for a CRD to become established, or for a deleted object to go (seconds).
DEFAULT_SETTLE_TIMEOUT_S = 30.0
#: Seconds between two looks while waiting for the above.
DEFAULT_SETTLE_POLL_S = 0.2
#: Actions that changed the cluster.
CHANGING = frozenset({"created", "configured", "recreated", "deleted", "deleting"})


@dataclass
class Change:
    """What happened to one object: created, configured, recreated, unchanged, skipped, deleted."""

    id: ObjId
    action: str
    detail: str = ""
    api_version: str = ""

    def __str__(self) -> str:
        return f"{self.id} {self.action}" + (f" ({self.detail})" if self.detail else "")


def comparable(obj: Mapping[str, Any]) -> dict[str, Any]:
    """``obj`` without what the server changes on every write (for drift comparison and diffs)."""
    out = copy.deepcopy(dict(obj))
    out.pop("status", None)
    meta = out.get("metadata") or {}
    for key in ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp"):
        meta.pop(key, None)
    return out


def _settle(what: str, done: Callable[[], bool], *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() >= deadline:
            raise ClusterError(f"{what} after {timeout_s:g}s")
        time.sleep(DEFAULT_SETTLE_POLL_S)


def _get(cluster: Cluster, p: Planned) -> dict[str, Any] | None:
    return cluster.get(p.api_version, p.id.kind, p.id.name, p.id.namespace or None)


def _gone(cluster: Cluster, p: Planned) -> bool:
    return _get(cluster, p) is None


def _established(cluster: Cluster, p: Planned) -> bool:
    live = _get(cluster, p) or {}
    conditions = (live.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def apply_plan(
    plan: Plan, cluster: Cluster, *, settle_timeout_s: float = DEFAULT_SETTLE_TIMEOUT_S
) -> list[Change]:
    """Apply every stage of ``plan``; returns one :class:`Change` per planned object.

    Raises :class:`ApplyError` naming the first object whose dry run or apply failed (objects of
    earlier stages stay applied).
    """
    changes: list[Change] = []
    for stage in plan.stages:
        try:
            changes += _apply_stage(stage, cluster, settle_timeout_s)
        except _Failed as failed:
            raise ApplyError(f"{failed.planned.id} ({failed.planned.origin})", failed.cause) from None
    return changes


class _Failed(Exception):
    def __init__(self, planned: Planned, cause: ClusterError) -> None:
        self.planned = planned
        self.cause = cause


def _apply_stage(stage: list[Planned], cluster: Cluster, settle_timeout_s: float) -> list[Change]:
    """Dry-run the whole stage, then apply what differs; CRDs are awaited until established."""
    changes: list[Change] = []
    pending: list[tuple[Planned, dict[str, Any] | None, bool]] = []
    for p in stage:
        live: dict[str, Any] | None = None
        try:
            live = _get(cluster, p)
            skip = _skip_reason(p, live)
            if skip:
                changes.append(Change(p.id, "skipped", skip, p.api_version))
                continue
            dry = cluster.apply(p.obj, dry_run=True)
        except ClusterError as exc:
            if not (exc.immutable and p.force and live is not None):
                raise _Failed(p, exc) from None
            pending.append((p, live, True))
            continue
        if live is not None and comparable(live) == comparable(dry):
            changes.append(Change(p.id, "unchanged", api_version=p.api_version))
        else:
            pending.append((p, live, False))
    for p, live, recreate in pending:
        try:
            if recreate:
                cluster.delete(p.api_version, p.id.kind, p.id.name, p.id.namespace or None)
                _settle(f"{p.id} still exists", partial(_gone, cluster, p), timeout_s=settle_timeout_s)
            cluster.apply(p.obj)
        except ClusterError as exc:
            raise _Failed(p, exc) from None
        action = "recreated" if recreate else ("created" if live is None else "configured")
        changes.append(Change(p.id, action, api_version=p.api_version))
    crds = [p for p in stage if p.id.kind == "CustomResourceDefinition"]
    for p in crds:
        try:
            _settle(
                f"{p.id} is not established", partial(_established, cluster, p), timeout_s=settle_timeout_s
            )
        except ClusterError as exc:
            raise _Failed(p, exc) from None
    if crds:
        cluster.refresh()
    return changes


def _skip_reason(p: Planned, live: Mapping[str, Any] | None) -> str:
    if live is not None and ignored(live):
        return "ignored on the cluster"
    if p.policy == "Ignore":
        return "kustomize.toolkit.fluxcd.io/ssa: Ignore"
    if p.policy == "IfNotPresent" and live is not None:
        return "kustomize.toolkit.fluxcd.io/ssa: IfNotPresent, already exists"
    return ""


def prune(stale: Inventory, cluster: Cluster, owner: Owner) -> list[Change]:
    """Delete what :func:`prune_verdict` allows among ``stale``; one :class:`Change` per entry.

    Raises :class:`PruneError` listing the failures, with ``remaining`` = the entries that may
    still exist (to keep them in the inventory for the next attempt).
    """
    changes: list[Change] = []
    failures: list[str] = []
    remaining: Inventory = {}
    for oid in deletion_order(stale):
        version = stale[oid]
        api_version = oid.api_version(version)
        try:
            live = cluster.get(api_version, oid.kind, oid.name, oid.namespace or None)
        except ClusterError as exc:
            if exc.reason == "NoKindMatch":
                changes.append(Change(oid, "gone", f"{api_version} no longer served", api_version))
                continue
            failures.append(f"{oid}: {exc.message}")
            remaining[oid] = version
            continue
        verdict = prune_verdict(live, owner)
        if verdict is not None:
            changes.append(Change(oid, "skipped" if live is not None else "gone", verdict, api_version))
            continue
        try:
            deleted = cluster.delete(api_version, oid.kind, oid.name, oid.namespace or None)
        except ClusterError as exc:
            failures.append(f"{oid}: {exc.message}")
            remaining[oid] = version
            continue
        changes.append(Change(oid, "deleted" if deleted else "gone", api_version=api_version))
    if failures:
        raise PruneError("prune failed: " + "; ".join(failures), remaining=remaining)
    return changes
