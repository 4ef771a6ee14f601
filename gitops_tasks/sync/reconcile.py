"""Kustomization's reconciler: the one place that decides its reasons and messages.

Steps: source revision → dependencies → checkout → build → substitute → plan → apply → prune
(only with ``spec.prune``) → health checks → sync tag (when configured). A failure before the
prune leaves ``status.inventory`` as it was; the message names the object or file that failed.

==============================  =========  ===================================================
reason                          result     when
==============================  =========  ===================================================
``ReconciliationSucceeded``     success    applied (and pruned, and healthy)
``ArtifactFailed``              waiting    the source is not in the catalog or has no artifact
``ArtifactFailed``              (git's)    the checkout failed; ``spec.path`` missing or
                                           leading outside the repository (stalled)
``DependencyNotReady``          waiting    a ``dependsOn`` Kustomization is not ready at its
                                           source's revision
``BuildFailed``                 stalled    invalid YAML or object, kustomize failed, no
                                           kubectl, bad substitution (transient when a
                                           ``substituteFrom`` source is missing)
``DecryptionFailed``            stalled    a SOPS-encrypted file or object that no key decrypts,
                                           a MAC mismatch (transient while the decryption
                                           Secret is missing)
``ReconciliationFailed``        stalled/   no usable kubeconfig; namespace not allowed;
                                transient  the API refused an object (422/400/403 stall;
                                           unreachable, 404 namespace, 409, 5xx retry)
``PruneFailed``                 transient  deleting a stale object failed
``HealthCheckFailed``           transient  an object failed or was not healthy in time
==============================  =========  ===================================================

``waiting`` retries after ``spec.retryInterval`` (default 5s). Success facts:
``lastAppliedRevision``, ``lastAttemptedRevision``, ``inventory`` ({entries: [{id, v}]}) and,
with a sync tag, ``syncTag`` ({name, revision}).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gitops_tasks.objects import timeout_s
from gitops_tasks.objects.durations import parse_duration
from gitops_tasks.objects.kinds import KIND_INFO
from gitops_tasks.objects.model import Object, ObjectRef
from gitops_tasks.objects.outcome import Outcome
from gitops_tasks.objects.ownership import group_of, is_engine_group
from gitops_tasks.sources import GitError
from gitops_tasks.store.catalog import OwnershipConflict
from gitops_tasks.sync import fleet
from gitops_tasks.sync import inventory as inv
from gitops_tasks.sync.apply import CHANGING, Change, apply_plan, prune
from gitops_tasks.sync.cluster import Cluster
from gitops_tasks.sync.errors import (
    BuildError,
    DecryptionError,
    DependencyError,
    HealthError,
    NoClusterConfigured,
    OwnershipError,
    PathError,
    PruneError,
    SourceError,
    SubstituteError,
    SyncError,
)
from gitops_tasks.sync.fleet import Fleet
from gitops_tasks.sync.health import Target, wait_healthy
from gitops_tasks.sync.inputs import make_reader
from gitops_tasks.sync.manifests import Manifest
from gitops_tasks.sync.pipeline import SyncConfig, owner_of, plan_for, render, target_cluster
from gitops_tasks.sync.plan import Plan, kept_by_policy
from gitops_tasks.sync.source import Lookup, Source, check_dependencies, checkout, resolve_source
from gitops_tasks.sync.synctag import move_sync_tag

SUCCEEDED = "ReconciliationSucceeded"
ARTIFACT_FAILED = "ArtifactFailed"
DEPENDENCY_NOT_READY = "DependencyNotReady"
BUILD_FAILED = "BuildFailed"
RECONCILIATION_FAILED = "ReconciliationFailed"
PRUNE_FAILED = "PruneFailed"
HEALTH_CHECK_FAILED = "HealthCheckFailed"
DECRYPTION_FAILED = "DecryptionFailed"
#: Retry delay for ``waiting`` outcomes when ``spec.retryInterval`` is unset (seconds).
DEFAULT_DEPENDENCY_RETRY_S = 5.0
#: Changes listed in an event message before "and N more".
MAX_LISTED_CHANGES = 10

_REASONS: tuple[tuple[type[SyncError], str], ...] = (
    (SourceError, ARTIFACT_FAILED),
    (PathError, ARTIFACT_FAILED),
    (DependencyError, DEPENDENCY_NOT_READY),
    (BuildError, BUILD_FAILED),
    (SubstituteError, BUILD_FAILED),
    (DecryptionError, DECRYPTION_FAILED),
    (PruneError, PRUNE_FAILED),
    (HealthError, HEALTH_CHECK_FAILED),
)


def reason_for(exc: SyncError) -> str:
    return next((reason for cls, reason in _REASONS if isinstance(exc, cls)), RECONCILIATION_FAILED)


def retry_s(obj: Object) -> float:
    value = obj.spec.get("retryInterval")
    return parse_duration(value) if value else DEFAULT_DEPENDENCY_RETRY_S


def describe(changes: list[Change]) -> str:
    """``Deployment/apps/web configured, Service/apps/web created`` (changes only, capped)."""
    shown = [str(c) for c in changes if c.action in CHANGING]
    extra = len(shown) - MAX_LISTED_CHANGES
    return ", ".join(shown[:MAX_LISTED_CHANGES]) + (f", and {extra} more" if extra > 0 else "")


def health_targets(
    obj: Object, plan: Plan, changes: list[Change], owned: Sequence[Object] = ()
) -> list[Target]:
    """``spec.wait``: every applied object, cluster and catalog (a catalog object is healthy when
    it is Ready at its generation; a Kustomization that declares itself does not wait for itself);
    else ``spec.healthChecks`` (namespace defaults to the
    Kustomization's, apiVersion to the applied object's). Raises :class:`HealthError` (stalled)."""
    if obj.spec.get("wait"):
        skipped = {c.id for c in changes if c.action == "skipped"}
        return [fleet.target(o) for o in owned if o.ref != obj.ref] + [
            Target(p.api_version, p.id.kind, p.id.name, p.id.namespace)
            for p in plan.objects
            if p.id not in skipped
        ]
    declared = [(p.id.kind, p.id.name, p.api_version) for p in plan.objects]
    declared += [(o.kind, o.name, o.api_version) for o in owned]
    targets = []
    for index, check in enumerate(obj.spec.get("healthChecks") or []):
        kind, name = str(check["kind"]), str(check["name"])
        namespace = str(check.get("namespace") or obj.namespace)
        api_version = check.get("apiVersion") or next(
            (version for k, n, version in declared if (k, n) == (kind, name)), None
        )
        if not api_version and kind in KIND_INFO:
            api_version = KIND_INFO[kind].api_versions[0]
        if not api_version:
            raise HealthError(
                f"spec.healthChecks[{index}]: apiVersion is required for {kind}/{name}, "
                "which this Kustomization does not apply",
                result="stalled",
            )
        targets.append(Target(str(api_version), kind, name, namespace))
    return targets


def reconcile(
    obj: Object,
    previous_status: dict[str, Any],
    *,
    lookup: Lookup,
    connect: Callable[[str | None], Cluster],
    config: SyncConfig,
    ensure_held: Callable[[], None] = lambda: None,
    fleet: Fleet | None = None,
) -> Outcome:
    """Sync ``obj`` once and summarise it as an :class:`Outcome` (never raises a step's error).

    ``connect(impersonate)`` opens the configured cluster (``None``: no impersonation); it is
    also where ``substituteFrom`` and ``kubeConfig.secretRef`` are read before the secrets dir.
    ``ensure_held()`` runs before each change to the cluster or the repository (apply, prune, sync
    tag); whatever it raises (the worker's ``LockLost``) stops the sync there and propagates.
    ``fleet`` is the catalog the build's gitops-tasks objects go into (see :mod:`.fleet`).
    """
    run = _Run(obj, previous_status, connect=connect, config=config, ensure_held=ensure_held, fleet=fleet)
    try:
        return run.execute(lookup)
    except GitError as exc:
        return run.failed(exc.result, ARTIFACT_FAILED, exc.message)
    except SyncError as exc:
        return run.failed(exc.result, reason_for(exc), exc.message)
    finally:
        run.close()


class _Run:
    """One sync: the steps in order, the facts gathered so far, the clusters to close."""

    def __init__(
        self,
        obj: Object,
        previous: dict[str, Any],
        *,
        connect: Callable[[str | None], Cluster],
        config: SyncConfig,
        ensure_held: Callable[[], None],
        fleet: Fleet | None = None,
    ) -> None:
        self.obj = obj
        self.fleet = fleet
        self.ensure_held = ensure_held
        self.previous = previous
        self.connect = connect
        self.config = config
        self.started = time.monotonic()
        self.facts: dict[str, Any] = {}
        self.opened: list[Cluster] = []
        #: The revision changed this Kustomization's own spec: run again at once with it.
        self.changed_itself = False
        self._home: Cluster | None = None

    def home(self) -> Cluster:
        """The configured cluster, opened once (for reading ConfigMaps and Secrets)."""
        if self._home is None:
            self._home = self.connect(None)
            self.opened.append(self._home)
        return self._home

    def close(self) -> None:
        for cluster in self.opened:
            cluster.close()

    def execute(self, lookup: Lookup) -> Outcome:
        obj, config = self.obj, self.config
        source = resolve_source(obj, lookup)
        self.facts["lastAttemptedRevision"] = source.revision
        check_dependencies(obj, lookup)
        previous = inv.from_status(self.previous)
        with tempfile.TemporaryDirectory(prefix="gitops-tasks-sync-") as tmp:
            dest = Path(tmp) / "src"
            root = checkout(source, dest, secrets_dir=config.secrets_dir, cache_dir=config.cache_dir)
            read = make_reader(obj.namespace, secrets_dir=config.secrets_dir, home=self.home)
            engine, plain = fleet.split(render(obj, root, read=read, config=config))
            owned = fleet.catalog_objects(
                engine,
                target_namespace=obj.spec.get("targetNamespace"),
                default_namespace=config.default_namespace,
            )
            if owned and self.fleet is None:
                raise BuildError(f"{engine[0].origin}: gitops-tasks objects need the catalog to sync into")
            stale_cluster = (
                {oid: v for oid, v in previous.items() if not fleet.is_catalog_entry(oid)}
                if obj.spec.get("prune")
                else {}
            )
            cluster: Cluster | None = None
            plan = Plan()
            if plain or stale_cluster:
                cluster = self.cluster(plain)
                plan = plan_for(obj, plain, scope=cluster.scope, config=config)
            self.ensure_held()
            changes = self.store(owned)
            if cluster is not None:
                self.ensure_held()
                changes += apply_plan(plan, cluster)
            self.ensure_held()
            changes += self.prune(plan, owned, cluster)
            self.wait_healthy(plan, owned, changes, cluster)
            note = self.move_tag(source, root)
        self.facts["lastAppliedRevision"] = source.revision
        listed = describe(changes)
        return Outcome(
            result="success",
            reason=SUCCEEDED,
            message="; ".join(filter(None, [f"Applied revision: {source.revision}", listed, note])),
            facts=self.facts,
            revision=source.revision,
            changed=source.revision != self.previous.get("lastAppliedRevision") or bool(listed),
            retry_after_s=0.0 if self.changed_itself else None,
        )

    def cluster(self, plain: list[Manifest]) -> Cluster:
        """The cluster this Kustomization applies to; without one configured, a clear error
        naming the first cluster object of the build (catalog objects alone need none)."""
        try:
            cluster = target_cluster(self.obj, connect=self.connect, home=self.home, config=self.config)
        except NoClusterConfigured as exc:
            if not plain:
                raise
            first = plain[0]
            what = f"{first.obj.get('kind')}/{(first.obj.get('metadata') or {}).get('name')}"
            raise NoClusterConfigured(
                f"{exc.message}: the build holds cluster objects, first {what} ({first.origin})"
            ) from None
        self.opened.append(cluster)
        return cluster

    def store(self, owned: list[Object]) -> list[Change]:
        """Store the catalog objects of this revision (one transaction) as this Kustomization's."""
        if not owned or self.fleet is None:
            return []
        try:
            applied = self.fleet.store(self.obj.ref, owned)
        except OwnershipConflict as exc:
            raise OwnershipError(f"ownership conflict, nothing applied: {exc}") from None
        by_ref = {o.ref: o for o in owned}
        generation = int(self.obj.metadata.get("generation", 1))
        self.changed_itself = any(a.ref == self.obj.ref and a.generation > generation for a in applied)
        return [
            Change(fleet.obj_id(by_ref[a.ref]), a.action, api_version=by_ref[a.ref].api_version)
            for a in applied
        ]

    def prune(
        self, plan: Plan, owned: list[Object], cluster: Cluster | None, *, collect: bool = False
    ) -> list[Change]:
        """Record the new inventory; with ``spec.prune``, delete the stale objects (cluster objects
        by their labels, catalog objects by theirs; those that could not be deleted stay in the
        inventory, to be tried again). ``collect``: the finalizer's run, which opens the cluster
        only when the inventory holds cluster objects."""
        current = {**plan.inventory, **fleet.inventory(owned)}
        self.facts["inventory"] = inv.to_status(current)
        if not self.obj.spec.get("prune"):
            return []
        stale = inv.stale(inv.from_status(self.previous), current)
        in_catalog = [oid for oid in stale if fleet.is_catalog_entry(oid)]
        changes: list[Change] = []
        if in_catalog and self.fleet is not None:
            by_ref = {}
            for oid in in_catalog:
                stored = self.fleet.object(fleet.ref_of(oid))
                verdict = kept_by_policy(stored.to_dict()) if stored is not None else None
                if verdict is not None:
                    # prune: disabled, ignore; ownership is checked by the catalog's own prune.
                    changes.append(Change(oid, "skipped", verdict, oid.api_version(stale[oid])))
                else:
                    by_ref[fleet.ref_of(oid)] = oid
            for removed in self.fleet.prune(self.obj.ref, list(by_ref)):
                oid = by_ref[removed.ref]
                changes.append(Change(oid, removed.action, removed.detail, oid.api_version(stale[oid])))
        in_cluster = {oid: v for oid, v in stale.items() if not fleet.is_catalog_entry(oid)}
        if in_cluster and cluster is None and collect:
            cluster = self.cluster([])
        if not in_cluster or cluster is None:
            return changes
        try:
            return changes + prune(in_cluster, cluster, owner_of(self.obj))
        except PruneError as exc:
            self.facts["inventory"] = inv.to_status({**current, **exc.remaining})
            raise

    def wait_healthy(
        self, plan: Plan, owned: list[Object], changes: list[Change], cluster: Cluster | None
    ) -> None:
        targets = health_targets(self.obj, plan, changes, owned)
        if not targets:
            return

        def get(t: Target) -> Any:
            if is_engine_group(group_of(t.api_version)):
                return self.fleet.ready(ObjectRef(t.kind, t.namespace, t.name)) if self.fleet else None
            return (cluster or self.cluster([])).get(t.api_version, t.kind, t.name, t.namespace or None)

        wait_healthy(
            targets, get, timeout_s=max(timeout_s(self.obj) - (time.monotonic() - self.started), 1.0)
        )

    def move_tag(self, source: Source, root: Path) -> str | None:
        """Move the sync tag when configured and not already at this revision; a failure is a note."""
        tag = self.config.sync_tag
        if not tag:
            return None
        done = {"name": tag, "revision": source.revision}
        note = None
        if self.previous.get("syncTag") != done:
            self.ensure_held()
            note = move_sync_tag(source, root, tag, secrets_dir=self.config.secrets_dir)
        if note is None:
            self.facts["syncTag"] = done
        return note

    def failed(self, result: Any, reason: str, message: str) -> Outcome:
        return Outcome(
            result=result,
            reason=reason,
            message=message,
            facts=self.facts,
            revision=self.facts.get("lastAttemptedRevision"),
            retry_after_s=retry_s(self.obj) if result == "waiting" else None,
        )


#: Reason of the run that deleted a Kustomization (after its finalizer, when it has one).
DELETED = "Deleted"


def finalize(
    obj: Object,
    previous_status: dict[str, Any],
    *,
    connect: Callable[[str | None], Cluster],
    config: SyncConfig,
    ensure_held: Callable[[], None] = lambda: None,
    fleet: Fleet | None = None,
) -> Outcome:
    """The finalizer of a Kustomization being deleted, as Flux's: with ``fleet`` (``prune`` set,
    not suspended) every object of its inventory goes, cluster objects still labelled as its own
    and catalog objects it owns (an owned Kustomization with ``prune`` is marked for deletion and
    collects its own objects in turn). Success means the caller may delete it from the catalog; a
    failure keeps it, to be tried again, with the objects left in its inventory."""
    run = _Run(obj, previous_status, connect=connect, config=config, ensure_held=ensure_held, fleet=fleet)
    try:
        changes: list[Change] = []
        if fleet is not None:
            ensure_held()
            run.obj = _with_prune(obj)
            changes = run.prune(Plan(), [], None, collect=True)
        listed = describe(changes)
        message = f"{obj.ref} deleted" + (f"; garbage-collected: {listed}" if listed else "")
        return Outcome(result="success", reason=DELETED, message=message, facts=run.facts, changed=True)
    except SyncError as exc:
        return run.failed(exc.result, reason_for(exc), f"finalizer: {exc.message}")
    finally:
        run.close()


def _with_prune(obj: Object) -> Object:
    return Object(
        obj.api_version, obj.kind, obj.name, obj.namespace, {**obj.spec, "prune": True}, obj.metadata
    )
