"""A Kustomization's inputs from the other objects: its source revision and its dependencies.

Reads the catalog and status through a :class:`Lookup` (the task layer passes the stores), so
this module does no I/O itself besides the checkout, which goes through the git concern's public
API (:func:`gitops_tasks.sources.checkout_revision`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from gitops_tasks.objects import ObjectRef, source_ref
from gitops_tasks.objects.model import Object
from gitops_tasks.sync.errors import DependencyError, SourceError


class Lookup(Protocol):
    """Read access to declared objects and their status."""

    def object(self, ref: ObjectRef) -> Object | None: ...

    def status(self, ref: ObjectRef) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Source:
    repository: Object
    revision: str
    commit: str
    ref_name: str | None


def _ready(status: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def resolve_source(obj: Object, lookup: Lookup) -> Source:
    """The GitRepository ``obj`` reads and the revision recorded in its status.

    The last recorded artifact is used even when the latest poll failed (as Flux does): the
    revision is the truth, not the poll's health. Raises :class:`SourceError`.
    """
    ref = source_ref(obj)
    if ref is None:
        raise SourceError(f"{obj.ref}: spec.sourceRef is missing", result="stalled")
    if ref.kind != "GitRepository":
        raise SourceError(
            f"spec.sourceRef.kind {ref.kind} is not supported (only GitRepository)", result="stalled"
        )
    repository = lookup.object(ref)
    if repository is None:
        raise SourceError(f"Source '{ref.kind}/{ref.namespace}/{ref.name}' not found")
    artifact = lookup.status(ref).get("artifact") or {}
    if not artifact.get("commit") or not artifact.get("revision"):
        raise SourceError(f"Source '{ref.kind}/{ref.namespace}/{ref.name}' is not ready: no artifact yet")
    return Source(repository, str(artifact["revision"]), str(artifact["commit"]), artifact.get("ref") or None)


def check_dependencies(obj: Object, lookup: Lookup) -> None:
    """Every ``spec.dependsOn`` Kustomization must be Ready, have observed its generation and have
    applied its source's current revision. Raises :class:`DependencyError` naming the first that
    is not. (``readyExpr`` CEL expressions are not evaluated; the built-in check applies.)"""
    for dep in obj.spec.get("dependsOn") or []:
        ref = ObjectRef("Kustomization", str(dep.get("namespace") or obj.namespace), str(dep["name"]))
        shown = f"dependency '{ref.namespace}/{ref.name}'"
        dependency = lookup.object(ref)
        if dependency is None:
            raise DependencyError(f"{shown} not found")
        status = lookup.status(ref)
        if not _ready(status):
            raise DependencyError(f"{shown} is not ready")
        if status.get("observedGeneration") != int(dependency.metadata.get("generation", 1)):
            raise DependencyError(f"{shown} has not reconciled its latest generation")
        dep_source = source_ref(dependency)
        revision = (lookup.status(dep_source).get("artifact") or {}).get("revision") if dep_source else None
        if revision and status.get("lastAppliedRevision") != revision:
            raise DependencyError(f"{shown} revision is not up to date (source is at {revision})")


def checkout(source: Source, dest: Path, *, secrets_dir: Path, cache_dir: Path) -> Path:
    """Check out the source's recorded commit into ``dest``. Raises ``GitError``."""
    from gitops_tasks.sources import checkout_revision

    return checkout_revision(
        source.repository,
        source.commit,
        dest,
        secrets_dir=secrets_dir,
        cache_dir=cache_dir,
        ref_name=source.ref_name,
    )
