"""What a sync would change: a server-side dry-run apply of every planned object compared with the
live object, as one unified diff per object (``gitops-tasks diff``).

Secret values are never shown: ``data``/``stringData`` values become ``***`` (``*** (before)`` /
``*** (after)`` where they differ), as ``kubectl diff`` does.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gitops_tasks.sync.apply import comparable
from gitops_tasks.sync.cluster import Cluster
from gitops_tasks.sync.errors import ApplyError, ClusterError
from gitops_tasks.sync.inventory import Inventory, ObjId
from gitops_tasks.sync.manifests import dump
from gitops_tasks.sync.plan import Owner, Plan, deletion_order, ignored, prune_verdict


@dataclass
class ObjectDiff:
    """One object's fate: ``create``, ``update``, ``unchanged``, ``skip`` or ``prune``."""

    id: ObjId
    action: str
    text: str = ""
    detail: str = ""

    @property
    def changes(self) -> bool:
        return self.action in ("create", "update", "prune")


def _mask(before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
    for field in ("data", "stringData"):
        old = (before or {}).get(field) or {}
        new = (after or {}).get(field) or {}
        for key in set(old) | set(new):
            same = old.get(key) == new.get(key)
            if key in old:
                old[key] = "***" if same else "*** (before)"
            if key in new:
                new[key] = "***" if same else "*** (after)"


def unified(oid: ObjId, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> str:
    """A unified diff of two versions of an object (``None``: absent), secrets masked."""
    old = comparable(before) if before is not None else None
    new = comparable(after) if after is not None else None
    if oid.kind == "Secret":
        _mask(old, new)
    lines_old = dump(old).splitlines(keepends=True) if old is not None else []
    lines_new = dump(new).splitlines(keepends=True) if new is not None else []
    return "".join(difflib.unified_diff(lines_old, lines_new, f"live/{oid}", f"merged/{oid}"))


def diff_plan(plan: Plan, cluster: Cluster) -> list[ObjectDiff]:
    """Compare each planned object's dry-run apply with the live object. Raises :class:`ApplyError`
    when the API refuses an object (other than for a namespace or kind that does not exist yet)."""
    out: list[ObjectDiff] = []
    for p in plan.objects:
        try:
            live = cluster.get(p.api_version, p.id.kind, p.id.name, p.id.namespace or None)
        except ClusterError as exc:
            if exc.reason != "NoKindMatch":
                raise ApplyError(f"{p.id} ({p.origin})", exc) from None
            live = None
        if live is not None and ignored(live):
            out.append(ObjectDiff(p.id, "skip", detail="ignored on the cluster"))
            continue
        if p.policy == "Ignore" or (p.policy == "IfNotPresent" and live is not None):
            out.append(ObjectDiff(p.id, "skip", detail=f"kustomize.toolkit.fluxcd.io/ssa: {p.policy}"))
            continue
        try:
            merged = cluster.apply(p.obj, dry_run=True)
        except ClusterError as exc:
            if live is not None or exc.status != 404:
                raise ApplyError(f"{p.id} ({p.origin})", exc) from None
            merged = p.obj  # its namespace or CRD comes earlier in the same sync
        if live is not None and comparable(live) == comparable(merged):
            out.append(ObjectDiff(p.id, "unchanged"))
            continue
        out.append(ObjectDiff(p.id, "update" if live is not None else "create", unified(p.id, live, merged)))
    return out


def diff_prune(stale: Inventory, cluster: Cluster, owner: Owner) -> list[ObjectDiff]:
    """The stale objects a prune would delete (a diff from the live object to nothing)."""
    out: list[ObjectDiff] = []
    for oid in deletion_order(stale):
        try:
            live = cluster.get(oid.api_version(stale[oid]), oid.kind, oid.name, oid.namespace or None)
        except ClusterError as exc:
            if exc.reason == "NoKindMatch":
                continue
            raise
        if prune_verdict(live, owner) is None:
            out.append(ObjectDiff(oid, "prune", unified(oid, live, None)))
    return out
