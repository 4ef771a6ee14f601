"""Check a branch out, let an edit run, commit and push: the write half of automation.

:func:`edit_and_push` is shared by ImageUpdateAutomation and the ``release``/``automate``/``lock``
commands. One call:

1. lists the remote's refs (one ``ls-remote``) to learn the checkout branch (or tag, or the
   pinned commit) and the push branch;
2. takes the branch lock for ``(url, push branch)`` so no two workers write one branch at once,
   and lists the refs again (the branch may have moved while it waited);
3. checks that tip out into a fresh temp dir (through this worker's mirror), runs ``edit`` in it,
   and if ``git`` sees a change, commits with the given author and message and pushes;
4. when the push is rejected because the branch moved (a commit landed between our look and our
   push: ``non-fast-forward``, ``fetch first``, ``stale info``...), starts again from a fresh
   checkout of the new tip, at most ``max_attempts`` times.

Branches follow Flux: the push branch defaults to the checkout branch. When they differ, the
push branch is rebuilt as *checkout tip + our commit* and force-pushed (Flux's default
``GitForcePushBranch``), but with ``--force-with-lease`` on the tip we saw, so a concurrent writer
is never overwritten blindly (we retry instead). ``refspec`` (``src:dst``, no ``+``, no deletion)
is pushed in the same ``--atomic`` push. Nothing is left behind on failure: all work happens in
temp dirs that are removed, and the remote only ever receives a complete commit.

Errors: :class:`~gitops_tasks.sources.GitError`, with reasons from the git layer plus
``InvalidSourceConfiguration`` (stalled), ``BranchLocked`` (waiting), ``PushRejected``
(transient: still racing after ``max_attempts``) and ``InvalidSigningKey`` (stalled).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from gitops_tasks.automation.locking import BranchLock
from gitops_tasks.automation.plan import Plan, Target, check_refspec, ls_remote, make_plan
from gitops_tasks.automation.signing import SigningKey, signing_config
from gitops_tasks.objects.model import Object
from gitops_tasks.sources import GitError, GitSpec, Remote, checkout_revision, open_spec_remote, run_git

#: Checkouts per run when pushes keep losing the race.
DEFAULT_PUSH_ATTEMPTS = 3
#: Bound on local git commands (seconds).
DEFAULT_LOCAL_TIMEOUT_S = 60.0
#: Appended (after a blank line) to commit messages when CI skipping is on (Flux v1's default).
CI_SKIP_MESSAGE = "[ci skip]"
#: Committer name when ``spec.git.commit.author.name`` is empty (git refuses an empty one).
DEFAULT_AUTHOR_NAME = "gitops-tasks"
_RACE = re.compile(
    r"\[rejected\]|non-fast-forward|fetch first|stale info|failed to update ref|cannot lock ref"
    r"|incorrect old value"
)

__all__ = ["Author", "Edit", "Target", "WorkResult", "edit_and_push"]

E = TypeVar("E", bound="Edit")


class Edit(Protocol):
    """What an edit callback returns; only ``changed`` matters here (git has the final say)."""

    @property
    def changed(self) -> bool: ...


@dataclass(frozen=True)
class Author:
    name: str
    email: str


@dataclass(frozen=True)
class WorkResult(Generic[E]):
    """The end of :func:`edit_and_push`."""

    #: What the last edit returned (it ran on ``base_commit``).
    edit: E
    base_commit: str
    #: Flux's revision text of the base (``main@sha1:...``).
    base_revision: str
    push_branch: str
    #: The commit pushed, or None (nothing changed, or read-only).
    commit: str | None = None
    message: str | None = None
    attempts: int = 1

    @property
    def pushed(self) -> bool:
        return self.commit is not None


def edit_and_push(
    repository: Object,
    target: Target,
    edit: Callable[[Path], E],
    *,
    author: Author,
    message: Callable[[E], str],
    secrets_dir: Path,
    cache_dir: Path,
    lock: BranchLock | None = None,
    read_only: bool = False,
    ci_skip: bool = False,
    signing: SigningKey | None = None,
    max_attempts: int = DEFAULT_PUSH_ATTEMPTS,
    before_push: Callable[[int], None] | None = None,
) -> WorkResult[E]:
    """Run ``edit`` on a fresh checkout of ``repository`` (a GitRepository) and push what it changed.

    ``message(edit_result)`` gives the commit message. With ``read_only`` the edit runs and its
    result comes back but nothing is committed or pushed (and no lock is taken). ``before_push``
    is called with the attempt number just before each push (a seam for tests that race a push).
    Raises :class:`GitError` (see the module docstring).
    """
    check_refspec(target.refspec)
    with open_spec_remote(GitSpec.from_object(repository), secrets_dir=secrets_dir) as remote:
        refs, head = ls_remote(remote)
        plan = make_plan(refs, head, target, remote.display_url)
        locking = not read_only and lock is not None
        with lock(remote.url, plan.push_branch) if locking and lock else nullcontext():
            for attempt in range(1, max_attempts + 1):
                if attempt > 1 or locking:  # the branch may have moved while we waited
                    plan = make_plan(*ls_remote(remote), target, remote.display_url)
                try:
                    return _attempt(
                        repository,
                        remote,
                        plan,
                        target,
                        edit,
                        author=author,
                        message=message,
                        secrets_dir=secrets_dir,
                        cache_dir=cache_dir,
                        read_only=read_only,
                        ci_skip=ci_skip,
                        signing=signing,
                        attempt=attempt,
                        before_push=before_push,
                    )
                except GitError as exc:
                    if exc.reason != "GitOperationFailed" or not _RACE.search(exc.message):
                        raise
                    if attempt == max_attempts:
                        raise GitError(
                            "PushRejected",
                            f"push to branch '{plan.push_branch}' kept losing the race to other "
                            f"commits ({max_attempts} attempts): {exc.message}",
                        ) from None
    raise AssertionError("unreachable")


def _git(args: list[str], cwd: Path, what: str) -> str:
    return run_git(args, timeout_s=DEFAULT_LOCAL_TIMEOUT_S, cwd=cwd, operation=what)


def _attempt(
    repository: Object,
    remote: Remote,
    plan: Plan,
    target: Target,
    edit: Callable[[Path], E],
    *,
    author: Author,
    message: Callable[[E], str],
    secrets_dir: Path,
    cache_dir: Path,
    read_only: bool,
    ci_skip: bool,
    signing: SigningKey | None,
    attempt: int,
    before_push: Callable[[int], None] | None,
) -> WorkResult[E]:
    with tempfile.TemporaryDirectory(prefix="gitops-automation-", ignore_cleanup_errors=True) as tmp:
        work = Path(tmp) / "checkout"
        checkout_revision(
            repository,
            plan.base,
            work,
            secrets_dir=secrets_dir,
            cache_dir=cache_dir,
            ref_name=plan.checkout_ref,
        )
        if plan.local_branch and plan.local_branch != plan.push_branch:
            _git(
                ["branch", "--quiet", "--force", "--end-of-options", plan.local_branch, plan.base],
                work,
                "branch",
            )
        _git(["checkout", "--quiet", "-B", plan.push_branch, plan.base], work, "checkout")
        result = edit(work)
        done = WorkResult(result, plan.base, plan.revision, plan.push_branch, attempts=attempt)
        _git(["add", "--all"], work, "git add")
        if read_only or not _git(["diff", "--cached", "--name-only"], work, "git diff").strip():
            return done
        text = message(result)
        if ci_skip and CI_SKIP_MESSAGE not in text:
            text = f"{text.rstrip()}\n\n{CI_SKIP_MESSAGE}\n"
        commit = _commit(work, Path(tmp) / "message", text, author, signing)
        if plan.lease and _push_branch_has_it(remote, work, plan):
            return done
        if before_push is not None:
            before_push(attempt)
        _push(remote, work, plan, target)
        return WorkResult(result, plan.base, plan.revision, plan.push_branch, commit, text, attempt)


def _commit(work: Path, message_file: Path, text: str, author: Author, signing: SigningKey | None) -> str:
    message_file.write_text(text, encoding="utf-8")
    name = author.name.strip() or DEFAULT_AUTHOR_NAME
    with signing_config(signing) as sign_args:
        _git(
            [
                "-c",
                f"user.name={name}",
                "-c",
                f"user.email={author.email}",
                "-c",
                "core.hooksPath=/dev/null",
                *sign_args,
                "commit",
                "--quiet",
                "--no-verify",
                "--cleanup=verbatim",
                "--allow-empty-message",
                "-F",
                str(message_file),
            ],
            work,
            "git commit",
        )
    return _git(["rev-parse", "HEAD"], work, "git rev-parse").strip()


def _push_branch_has_it(remote: Remote, work: Path, plan: Plan) -> bool:
    """Whether the separate push branch already is checkout tip + the same tree (nothing to push).

    Without this a push branch would be rebuilt with a fresh commit on every run.
    """
    assert plan.lease
    run_git(
        ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--end-of-options", remote.url,
         f"refs/heads/{plan.push_branch}"],
        timeout_s=remote.timeout_s,
        remote=remote,
        cwd=work,
        operation="fetch",
    )  # fmt: skip
    try:
        out = _git(
            ["rev-parse", f"{plan.lease}^{{tree}}", "HEAD^{tree}", f"{plan.lease}^"], work, "rev-parse"
        )
    except GitError:
        return False  # the push branch's tip is a root commit: not ours
    lease_tree, our_tree, lease_parent = out.split()
    return lease_tree == our_tree and lease_parent == plan.base


def _push(remote: Remote, work: Path, plan: Plan, target: Target) -> None:
    args = ["push", "--quiet", "--no-verify"]
    args += [f"--push-option={k}={v}" for k, v in sorted(target.push_options.items())]
    if plan.lease is not None:
        args.append(f"--force-with-lease=refs/heads/{plan.push_branch}:{plan.lease}")
    refspecs = [f"HEAD:refs/heads/{plan.push_branch}"]
    if target.refspec:
        args.append("--atomic")
        refspecs.append(target.refspec)
    run_git(
        [*args, "--end-of-options", remote.url, *refspecs],
        timeout_s=remote.timeout_s,
        remote=remote,
        cwd=work,
        operation="push",
    )
