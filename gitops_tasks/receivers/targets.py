"""Which catalog objects a verified hook reconciles (pure, over a catalog-like reader).

As Flux: each entry of ``spec.resources`` names one object (its namespace defaults to the
Receiver's), or every object of the kind in that namespace whose labels match ``matchLabels``
when the name is ``*``. Beyond Flux, a hook that names what changed narrows that set: a Git push
reconciles only the GitRepositories of that repository whose ref the push moved, and a registry
hook scans only the ImageRepositories of the images it names. Other kinds are reconciled whatever
the payload says.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from gitops_tasks.objects.model import Object, ObjectRef
from gitops_tasks.receivers.hooks import Hook, Push, image_id, repo_id


class Objects(Protocol):
    """What matching reads of the catalog (:class:`gitops_tasks.store.Catalog` has both)."""

    def get(self, ref: ObjectRef) -> Object | None: ...

    def iter_kind(self, kind: str | None = None, namespace: str | None = None) -> Iterator[Object]: ...


@dataclass
class Targets:
    """The objects to reconcile, and those named but left alone with why (for the log)."""

    matched: list[ObjectRef] = field(default_factory=list)
    skipped: list[tuple[ObjectRef, str]] = field(default_factory=list)


def pushed_ref_matches(spec_ref: dict[str, Any] | None, push: Push) -> bool:
    """Does ``push`` move what a GitRepository with ``spec.ref`` follows?

    ``branch`` and ``tag`` must be the pushed ref; ``semver`` follows every tag; ``name`` is a full
    ref; a ``commit`` alone is pinned (a push cannot change it). Without a ref the repository
    follows the remote's default branch: the payload's when it names one, any branch otherwise.
    """
    ref = spec_ref or {}
    if ref.get("name"):
        return bool(push.ref == ref["name"])
    if ref.get("branch"):
        return push.ref == f"refs/heads/{ref['branch']}"
    if ref.get("semver"):
        return push.ref.startswith("refs/tags/")
    if ref.get("tag"):
        return push.ref == f"refs/tags/{ref['tag']}"
    if ref.get("commit"):
        return False
    if push.default_branch:
        return push.ref == f"refs/heads/{push.default_branch}"
    return push.ref.startswith("refs/heads/")


def _narrowed(obj: Object, hook: Hook) -> str | None:
    """Why ``obj`` is left alone for this hook, or None to reconcile it."""
    if obj.kind == "GitRepository" and hook.push is not None:
        wanted = {repo_id(u) for u in hook.push.urls}
        if repo_id(str(obj.spec.get("url", ""))) not in wanted:
            return "the push is for another repository"
        if not pushed_ref_matches(obj.spec.get("ref"), hook.push):
            return f"the push moved {hook.push.ref}, which it does not follow"
    image = image_id(str(obj.spec.get("image", ""))) if obj.kind == "ImageRepository" else None
    if image is not None and hook.images and image not in hook.images:
        return "the hook is for another image"
    return None


def _named(receiver: Object, objects: Objects) -> Iterator[Object | ObjectRef]:
    """The objects each ``spec.resources`` entry names (a bare ref when it is not in the catalog)."""
    for resource in receiver.spec.get("resources") or []:
        kind, name = resource.get("kind", ""), resource.get("name", "")
        namespace = resource.get("namespace") or receiver.namespace
        if name == "*":
            wanted = resource.get("matchLabels") or {}
            for obj in objects.iter_kind(kind, namespace):
                labels = obj.metadata.get("labels") or {}
                if all(labels.get(k) == v for k, v in wanted.items()):
                    yield obj
            continue
        ref = ObjectRef(kind, namespace, name)
        yield objects.get(ref) or ref


def targets(receiver: Object, hook: Hook, objects: Objects, *, reconcilable: frozenset[str]) -> Targets:
    """What ``hook`` reconciles for ``receiver``; ``reconcilable`` are the kinds with a reconciler.

    A ``*`` entry needs ``matchLabels`` (``apply`` checks it); with an empty selector it would
    name every object of the kind in the namespace, which Flux refuses.
    """
    out = Targets()
    seen: set[ObjectRef] = set()
    for found in _named(receiver, objects):
        ref = found if isinstance(found, ObjectRef) else found.ref
        if ref in seen:
            continue
        seen.add(ref)
        if isinstance(found, ObjectRef):
            out.skipped.append((ref, "not in the catalog"))
        elif ref.kind not in reconcilable:
            out.skipped.append((ref, f"{ref.kind} has no reconciler in this version"))
        elif found.suspended:
            out.skipped.append((ref, "suspended"))
        else:
            why = _narrowed(found, hook)
            if why is None:
                out.matched.append(ref)
            else:
                out.skipped.append((ref, why))
    return out
