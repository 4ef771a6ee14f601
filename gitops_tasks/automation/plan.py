"""Which commit to check out and where to push it, from one ``ls-remote`` (pure but for that call).

:func:`make_plan` reads the remote's refs (:func:`ls_remote`) and a :class:`Target` and decides: the
base commit (branch tip, peeled tag or pinned commit), its revision text, the push branch
(default: the checkout branch) and, when that is another branch, the lease for a safe force push.
Errors are :class:`~gitops_tasks.sources.GitError`: ``InvalidSourceConfiguration`` (stalled) for
targets that cannot work, ``RefNotFound`` (waiting) for refs the remote does not have (yet).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from gitops_tasks import sources
from gitops_tasks.sources import GitError, Remote

_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_BRANCH = re.compile(r"(?!-)(?!.*\.\.)(?!.*//)(?!.*@\{)[^\x00-\x20~^:?*\[\\\x7f]+(?<![./])(?<!\.lock)")


@dataclass(frozen=True)
class Target:
    """Where to read from and write to. At most one of branch, tag, commit to check out."""

    branch: str | None = None
    tag: str | None = None
    commit: str | None = None
    push_branch: str | None = None
    refspec: str | None = None
    push_options: Mapping[str, str] = field(default_factory=dict)


def config_error(message: str) -> GitError:
    """A target that cannot work until the spec changes (stalled)."""
    return GitError("InvalidSourceConfiguration", message, stalled=True)


def _short(ref: str) -> str:
    return ref.removeprefix("refs/heads/").removeprefix("refs/tags/")


@dataclass(frozen=True)
class Plan:
    """What one attempt checks out and where it pushes."""

    checkout_ref: str | None  # full ref fetched for the base (None: commit by SHA)
    base: str
    revision: str
    push_branch: str
    local_branch: str | None  # the checkout branch, when it exists as a branch
    lease: str | None  # expected tip of the push branch ("" absent) when force-pushing


def ls_remote(remote: Remote) -> tuple[dict[str, str], str | None]:
    """The remote's refs (name → SHA, peeled tags included) and HEAD's symref target, listed as a
    poll lists them (``sources.ls_remote``: natively over ``git://``)."""
    listed = sources.ls_remote(remote, timeout_s=remote.timeout_s)
    return dict(listed.refs), listed.head_target


def make_plan(refs: Mapping[str, str], head: str | None, target: Target, url: str) -> Plan:
    """Decide the attempt (see the module docstring); ``url`` (masked) only goes into messages."""
    if target.commit:
        commit = target.commit.strip().lower()
        if not _SHA.fullmatch(commit):
            raise config_error(f"checkout commit {target.commit!r} is not a full SHA")
        base, checkout_ref, revision = commit, None, f"sha1:{commit}"
        branch = _short(target.branch) if target.branch else None
    elif target.tag:
        full = f"refs/tags/{_short(target.tag)}"
        sha = refs.get(full + "^{}") or refs.get(full)
        if sha is None:
            raise GitError("RefNotFound", f"tag '{_short(target.tag)}' not found in {url}", waiting=True)
        base, checkout_ref, revision, branch = sha, full, f"{_short(full)}@sha1:{sha}", None
    else:
        branch = _short(target.branch) if target.branch else (_short(head) if head else None)
        if not branch:
            raise config_error(f"no branch to check out: {url} advertises no HEAD; set a branch")
        sha = refs.get(f"refs/heads/{branch}")
        if sha is None:
            raise GitError("RefNotFound", f"branch '{branch}' not found in {url}", waiting=True)
        base, checkout_ref, revision = sha, f"refs/heads/{branch}", f"{branch}@sha1:{sha}"
    push_branch = _short(target.push_branch) if target.push_branch else branch
    if not push_branch:
        raise config_error("no push branch: set spec.git.push.branch when checking out a tag or commit")
    for name in {push_branch, branch} - {None}:
        if not _BRANCH.fullmatch(str(name)):
            raise config_error(f"{name!r} is not a valid branch name")
    lease = None
    if push_branch != branch:
        lease = refs.get(f"refs/heads/{push_branch}", "")
    return Plan(checkout_ref, base, revision, push_branch, branch, lease)


def check_refspec(refspec: str | None) -> None:
    """Refuse refspecs Flux refuses: force (``+``), deletion (empty source), no destination."""
    if refspec is None:
        return
    src, sep, dst = refspec.partition(":")
    if refspec.startswith("+") or not sep or not src or not dst:
        raise config_error(f"spec.git.push.refspec {refspec!r}: expected SRC:DST (no '+' force, no deletion)")
