"""ImageUpdateAutomation's reconciler: the one place that decides its reasons and messages.

==============================  ==========  =================================================
reason                          result      when
==============================  ==========  =================================================
``Succeeded``                   success     pushed a commit (changed, one event), or nothing
                                            to change, or read-only mode computed the changes
``InvalidSourceConfiguration``  stalled     sourceRef not a GitRepository, no ``spec.git``,
                                            no branch to push to, bad refspec, semver/name
                                            checkout refs (not supported for writing)
``InvalidUpdateStrategy``       stalled     ``spec.update.strategy`` other than Setters
``InvalidUpdatePath``           stalled     ``spec.update.path`` leads outside the repository
``InvalidSigningKey``           stalled     the signing Secret is missing or unusable
``AuthenticationFailed`` ...    stalled     from the git layer (see ``sources.reconcile``)
``SourceNotFound``              waiting     the GitRepository is not in the catalog
``UpdatePathNotFound``          waiting     ``spec.update.path`` is not in the checkout (yet)
``RefNotFound``                 waiting     the checkout branch or tag is not on the remote
``BranchLocked``                waiting     another worker held the branch lock too long
``PushRejected``                transient   pushes kept losing the race to other commits
``GitOperationFailed`` ...      transient   clone, push or network failure (from git)
``StorageOperationFailed``      transient   the temp dir or cache failed (disk full...)
==============================  ==========  =================================================

A push sets ``changed`` (event reason ``Succeeded``, message as Flux's notification: ``pushed
commit '<sha>' to branch '<branch>'`` and the commit message); the task layer then polls the
source GitRepository at once. Facts: ``lastAutomationRunTime``, ``lastPushCommit``,
``lastPushTime`` (only when pushing), ``observedPolicies``, ``observedSourceRevision``, and
``skippedFiles`` (files with a marker that could not be parsed, each with its reason) and
``pendingChanges`` (read-only mode) when there are any.

Flux v1 workloads: given ``tags_for`` (the task layer's view of the scanned tags), the same run
also updates the images of workloads annotated ``fluxcd.io/automated: "true"`` under
``spec.update.path`` (:mod:`.v1tree`), in the same commit as the setters' changes, and reports
them in the fact ``v1`` (``workloads``, ``lockedWorkloads``, ``images``, ``unscannedImages``),
present whenever the checkout was read. Their changes join the template data and the listings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from gitops_tasks.automation.commit import DEFAULT_PUSH_ATTEMPTS, Author, Target, WorkResult, edit_and_push
from gitops_tasks.automation.locking import BranchLock
from gitops_tasks.automation.policies import applied_policies, select_policies
from gitops_tasks.automation.setters import Change
from gitops_tasks.automation.signing import read_signing_key
from gitops_tasks.automation.template import render_message, template_data
from gitops_tasks.automation.tree import TreeResult, UpdatePathError, update_tree
from gitops_tasks.automation.v1tree import TagsFor, V1Result, update_workloads
from gitops_tasks.objects.kinds import interval_s, source_ref
from gitops_tasks.objects.model import Object, ObjectRef
from gitops_tasks.objects.outcome import Outcome
from gitops_tasks.sources import GitError

SUCCEEDED = "Succeeded"
#: Ready message when there was nothing to change (Flux's).
READY_MESSAGE = "repository up-to-date"
#: Changes listed in a message before "and N more".
MAX_LISTED_CHANGES = 20


class CatalogView(Protocol):
    def get(self, ref: ObjectRef) -> Object | None: ...

    def iter_kind(self, kind: str | None = None, namespace: str | None = None) -> Iterator[Object]: ...


class StatusView(Protocol):
    def get_many(self, refs: list[ObjectRef]) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class Options:
    """How this worker runs automations (not part of any object's spec)."""

    secrets_dir: Path
    cache_dir: Path
    lock: BranchLock | None = None
    #: Append ``[ci skip]`` to commit messages (``GITOPS_TASKS_GIT_CI_SKIP``).
    ci_skip: bool = False
    #: Compute and report, never commit or push (``GITOPS_TASKS_GIT_READONLY``).
    read_only: bool = False
    max_attempts: int = DEFAULT_PUSH_ATTEMPTS
    #: Called with the attempt number just before each push; whatever it raises stops the run
    #: (the worker checks its run lock here; tests use it as a seam).
    before_push: Callable[[int], None] | None = None


@dataclass
class RunEdit:
    """What one run changed in the checkout: the setters' pass and the v1 workloads' pass."""

    tree: TreeResult
    v1: V1Result | None = None
    changes: list[Change] = field(init=False)
    skipped: list[tuple[str, str]] = field(init=False)

    def __post_init__(self) -> None:
        self.changes = self.tree.changes + (self.v1.changes if self.v1 else [])
        skipped = self.tree.skipped + (self.v1.skipped if self.v1 else [])
        self.skipped = list(dict.fromkeys(skipped))

    @property
    def changed(self) -> bool:
        return self.tree.changed or bool(self.v1 and self.v1.changed)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stalled(reason: str, message: str) -> Outcome:
    return Outcome("stalled", reason, message)


def _target(obj: Object, source: Object) -> Target | Outcome:
    git = obj.spec.get("git") or {}
    checkout = (git.get("checkout") or {}).get("ref") or source.spec.get("ref") or {}
    field = "spec.git.checkout.ref" if (git.get("checkout") or {}).get("ref") else f"{source.ref} spec.ref"
    for unsupported in ("semver", "name"):
        if checkout.get(unsupported) and not checkout.get("commit"):
            return _stalled(
                "InvalidSourceConfiguration",
                f"{obj.ref}: {field}.{unsupported} cannot be checked out for writing; use a branch",
            )
    push = git.get("push") or {}
    return Target(
        branch=checkout.get("branch") or None,
        tag=None if checkout.get("commit") else checkout.get("tag") or None,
        commit=checkout.get("commit") or None,
        push_branch=push.get("branch") or None,
        refspec=push.get("refspec") or None,
        push_options=dict(push.get("options") or {}),
    )


def _list(changes: list[str]) -> str:
    shown = changes[:MAX_LISTED_CHANGES]
    more = len(changes) - len(shown)
    return "\n".join(shown) + (f"\n... and {more} more" if more > 0 else "")


def reconcile(
    obj: Object,
    previous_status: Mapping[str, Any],
    *,
    catalog: CatalogView,
    statuses: StatusView,
    options: Options,
    tags_for: TagsFor | None = None,
    now: datetime | None = None,
) -> Outcome:
    """Run ``obj`` (an ImageUpdateAutomation) once; never raises :class:`GitError`.

    ``tags_for(image)`` gives the scanned tags of an image repository (None: not scanned yet);
    without it Flux v1 workload annotations are not looked at.
    """
    started = now or datetime.now(UTC)
    facts: dict[str, Any] = {"lastAutomationRunTime": _iso(started)}
    outcome = _run(
        obj,
        previous_status,
        catalog=catalog,
        statuses=statuses,
        options=options,
        tags_for=tags_for,
        facts=facts,
    )
    outcome.facts = {**facts, **outcome.facts}
    if outcome.result == "waiting" and outcome.retry_after_s is None and outcome.reason != "BranchLocked":
        outcome.retry_after_s = interval_s(obj) or None
    return outcome


def _run(
    obj: Object,
    previous: Mapping[str, Any],
    *,
    catalog: CatalogView,
    statuses: StatusView,
    options: Options,
    tags_for: TagsFor | None,
    facts: dict[str, Any],
) -> Outcome:
    update = obj.spec.get("update") or {}
    if update.get("strategy", "Setters") != "Setters":
        return _stalled("InvalidUpdateStrategy", f"{obj.ref}: spec.update.strategy must be Setters")
    git = obj.spec.get("git") or {}
    source = source_ref(obj)
    if source is None or source.kind != "GitRepository":
        kind = source.kind if source else "none"
        return _stalled("InvalidSourceConfiguration", f"{obj.ref}: source kind '{kind}' not supported")
    if not git.get("commit"):
        return _stalled("InvalidSourceConfiguration", f"{obj.ref}: spec.git.commit is required")
    repository = catalog.get(source)
    if repository is None:
        return Outcome("waiting", "SourceNotFound", f"{obj.ref}: {source} is not in the catalog")
    target = _target(obj, repository)
    if isinstance(target, Outcome):
        return target
    candidates = select_policies(obj, catalog.iter_kind("ImagePolicy", obj.namespace))
    applied = applied_policies(zip(candidates, statuses.get_many([p.ref for p in candidates]), strict=True))
    facts["observedPolicies"] = applied.observed
    commit_spec = git["commit"]
    author = Author(
        str((commit_spec.get("author") or {}).get("name") or ""), str(commit_spec["author"]["email"])
    )
    images = {key: (value.image, value.tag) for key, value in applied.images.items()}
    template_errors: list[str] = []

    def edit(work: Path) -> RunEdit:
        tree = update_tree(work, update.get("path"), applied.images, namespace=obj.namespace)
        v1 = update_workloads(work, update.get("path"), tags_for) if tags_for is not None else None
        return RunEdit(tree, v1)

    def message(result: RunEdit) -> str:
        data = template_data(
            obj.namespace,
            obj.name,
            result.changes,
            images=images,
            values=commit_spec.get("messageTemplateValues"),
        )
        text, error = render_message(commit_spec.get("messageTemplate"), data)
        if error:
            template_errors.append(error)
        return text

    try:
        signing = read_signing_key(options.secrets_dir, obj.namespace, commit_spec.get("signingKey"))
        work = edit_and_push(
            repository,
            target,
            edit,
            author=author,
            message=message,
            secrets_dir=options.secrets_dir,
            cache_dir=options.cache_dir,
            lock=options.lock,
            read_only=options.read_only,
            ci_skip=options.ci_skip,
            signing=signing,
            max_attempts=options.max_attempts,
            before_push=options.before_push,
        )
    except GitError as exc:
        return Outcome(exc.result, exc.reason, exc.message)
    except UpdatePathError as exc:
        if exc.missing:
            return Outcome("waiting", "UpdatePathNotFound", f"{obj.ref}: {exc}")
        return _stalled("InvalidUpdatePath", f"{obj.ref}: {exc}")
    except OSError as exc:
        return Outcome("transient", "StorageOperationFailed", f"{obj.ref}: local storage failed: {exc}")
    return _summarise(obj, previous, work, facts, template_errors, read_only=options.read_only)


def _summarise(
    obj: Object,
    previous: Mapping[str, Any],
    work: WorkResult[RunEdit],
    facts: dict[str, Any],
    template_errors: list[str],
    *,
    read_only: bool,
) -> Outcome:
    edit = work.edit
    facts["observedSourceRevision"] = work.base_revision
    facts["skippedFiles"] = [{"path": path, "reason": why} for path, why in edit.skipped]
    if edit.v1 is not None:
        facts["v1"] = edit.v1.facts()
    notes = "".join(f"\nskipped {path}: {why}" for path, why in edit.skipped)
    notes += "".join(f"\n{error}; used the default message" for error in template_errors)
    listed = [change.describe() for change in edit.changes]
    if work.commit is not None:
        pushed_at = datetime.now(UTC)
        facts.update(lastPushCommit=work.commit, lastPushTime=_iso(pushed_at), pendingChanges=[])
        message = f"pushed commit '{work.commit}' to branch '{work.push_branch}'\n{work.message or ''}"
        return Outcome(
            "success",
            SUCCEEDED,
            message.rstrip("\n") + notes,
            facts=facts,
            revision=f"{work.push_branch}@sha1:{work.commit}",
            changed=True,
            event_reason=SUCCEEDED,
        )
    if read_only and listed:
        facts["pendingChanges"] = listed
        what = f"{len(listed)} change(s) to branch '{work.push_branch}'"
        message = f"read-only: would commit {what}:\n{_list(listed)}"
        return Outcome("success", SUCCEEDED, message + notes, facts=facts, revision=work.base_revision)
    facts["pendingChanges"] = []
    message = READY_MESSAGE
    last, at = previous.get("lastPushCommit"), previous.get("lastPushTime")
    if isinstance(last, str) and len(last) >= 7 and at:
        message += f"; last commit {last[:7]} at {at}"
    return Outcome("success", SUCCEEDED, message + notes, facts=facts, revision=work.base_revision)
