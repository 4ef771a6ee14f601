"""Choosing the wanted ref from a remote's ref list (``ls-remote`` output), pure.

Precedence is Flux's: ``commit`` > ``name`` > ``semver`` > ``tag`` > ``branch``. With no ref at
all we follow the remote's HEAD (its symref target, e.g. ``refs/heads/main``) rather than Flux's
fixed ``master``, so repositories whose default branch is ``main`` work without a ``ref``. When
the server does not advertise the symref we take the branch HEAD points at (``main``, then
``master``, then the first by name), and ``master`` if HEAD itself is missing.

Revisions are written as Flux v1 writes them: ``main@sha1:<sha>`` (branch), ``v1.2.3@sha1:<sha>``
(tag or semver), ``refs/pull/1/head@sha1:<sha>`` (name), ``sha1:<sha>`` (a bare commit) or
``main@sha1:<sha>`` (a commit pinned together with its branch). SHA-256 repositories get
``sha256:``. Annotated tags resolve to the commit they point at (the peeled ``^{}`` entry).

Errors are :class:`GitError` with reason ``RefNotFound`` or ``NoMatchingTag`` (waiting: the
remote is fine, the ref may appear later) or ``InvalidRef`` (stalled: the spec cannot work).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gitops_tasks.objects.semver_range import SemverRange
from gitops_tasks.sources.errors import GitError

BRANCH_PREFIX = "refs/heads/"
TAG_PREFIX = "refs/tags/"
PEELED_SUFFIX = "^{}"
#: The branch Flux assumes when there is no ref and we cannot learn the remote's HEAD.
FALLBACK_BRANCH = "master"
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_PREFERRED_HEADS = ("main", "master")


def revision_of(name: str | None, sha: str) -> str:
    """Flux's revision text: ``<name>@sha1:<sha>``, or ``sha1:<sha>`` without a name."""
    algo = "sha256" if len(sha) == 64 else "sha1"
    return f"{name}@{algo}:{sha}" if name else f"{algo}:{sha}"


@dataclass(frozen=True)
class RemoteRefs:
    """What a remote advertised: ``refs`` maps ref name → SHA (peeled ``^{}`` entries included)."""

    refs: Mapping[str, str]
    #: HEAD's symref target (``refs/heads/main``) when the server said so.
    head_target: str | None = None

    @classmethod
    def parse(cls, text: str) -> RemoteRefs:
        """Parse ``git ls-remote --symref`` output (``<sha>\\t<ref>`` and ``ref: <target>\\tHEAD``)."""
        refs: dict[str, str] = {}
        head_target = None
        for line in text.splitlines():
            left, sep, name = line.partition("\t")
            if not sep:
                continue
            if left.startswith("ref: "):
                if name == "HEAD":
                    head_target = left[5:].strip()
            else:
                refs[name.strip()] = left.strip()
        return cls(refs, head_target)

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]], head_target: str | None = None) -> RemoteRefs:
        """Build from ``(sha, refname)`` pairs, as ``ls-remote`` lists them."""
        return cls({name: sha for sha, name in pairs}, head_target)

    def commit_of(self, ref: str) -> str | None:
        """The commit ``ref`` points at: the peeled SHA for an annotated tag."""
        return self.refs.get(ref + PEELED_SUFFIX) or self.refs.get(ref)

    def tags(self) -> list[str]:
        return sorted(
            n[len(TAG_PREFIX) :]
            for n in self.refs
            if n.startswith(TAG_PREFIX) and not n.endswith(PEELED_SUFFIX)
        )


@dataclass(frozen=True)
class Choice:
    """The chosen ref.

    ``ref_name`` is the full ref to fetch into the mirror (``refs/heads/main``). For a pinned
    commit it is the branch that must contain the commit, or ``None`` when the remote has no
    branch to check against (the commit is then fetched by SHA).
    """

    revision: str
    commit: str
    ref_name: str | None
    #: Which spec.ref field decided: ``commit``, ``name``, ``semver``, ``tag``, ``branch``, ``head``.
    kind: str


def _short_branch(branch: str) -> str:
    return branch[len(BRANCH_PREFIX) :] if branch.startswith(BRANCH_PREFIX) else branch


def _head_branch(remote: RemoteRefs) -> str:
    """Full ref name of the remote's default branch (see module docstring for the rule)."""
    if remote.head_target:
        return remote.head_target
    head = remote.refs.get("HEAD")
    if head is not None:
        branches = sorted(n for n, s in remote.refs.items() if n.startswith(BRANCH_PREFIX) and s == head)
        for short in _PREFERRED_HEADS:
            if BRANCH_PREFIX + short in branches:
                return BRANCH_PREFIX + short
        if branches:
            return branches[0]
    return BRANCH_PREFIX + FALLBACK_BRANCH


def _wanted(remote: RemoteRefs, full: str, what: str, url: str) -> str:
    sha = remote.commit_of(full)
    if sha is None:
        raise GitError("RefNotFound", f"{what} not found in {url}", waiting=True)
    return sha


def choose_ref(remote: RemoteRefs, ref: Mapping[str, Any] | None, *, url: str) -> Choice:
    """Pick the ref ``spec.ref`` asks for. ``url`` (already masked) only goes into messages.

    Raises :class:`GitError`: ``RefNotFound``/``NoMatchingTag`` (waiting), ``InvalidRef`` (stalled).
    """
    ref = ref or {}
    branch = ref.get("branch") or None
    if ref.get("commit"):
        commit = str(ref["commit"]).strip().lower()
        if not _SHA.fullmatch(commit):
            raise GitError(
                "InvalidRef",
                f"spec.ref.commit {ref['commit']!r} is not a full commit SHA (40 or 64 hex digits)",
                stalled=True,
            )
        if branch:
            full = BRANCH_PREFIX + _short_branch(branch)
            _wanted(remote, full, f"branch '{_short_branch(branch)}' (for spec.ref.commit)", url)
            return Choice(revision_of(_short_branch(branch), commit), commit, full, "commit")
        head = _head_branch(remote)
        return Choice(revision_of(None, commit), commit, head if head in remote.refs else None, "commit")
    if ref.get("name"):
        name = str(ref["name"])
        sha = _wanted(remote, name, f"ref '{name}'", url)
        return Choice(revision_of(name, sha), sha, name, "name")
    if ref.get("semver"):
        try:
            rng = SemverRange.parse(str(ref["semver"]))
        except ValueError as exc:
            raise GitError("InvalidRef", f"spec.ref.semver: {exc}", stalled=True) from None
        tag = rng.highest(remote.tags(), strict=True)
        if tag is None:
            raise GitError(
                "NoMatchingTag", f"no tag in {url} matches semver range '{rng.text}'", waiting=True
            )
        sha = _wanted(remote, TAG_PREFIX + tag, f"tag '{tag}'", url)
        return Choice(revision_of(tag, sha), sha, TAG_PREFIX + tag, "semver")
    if ref.get("tag"):
        tag = str(ref["tag"])
        tag = tag[len(TAG_PREFIX) :] if tag.startswith(TAG_PREFIX) else tag
        sha = _wanted(remote, TAG_PREFIX + tag, f"tag '{tag}'", url)
        return Choice(revision_of(tag, sha), sha, TAG_PREFIX + tag, "tag")
    if branch:
        short = _short_branch(str(branch))
        sha = _wanted(remote, BRANCH_PREFIX + short, f"branch '{short}'", url)
        return Choice(revision_of(short, sha), sha, BRANCH_PREFIX + short, "branch")
    head = _head_branch(remote)
    short = _short_branch(head)
    sha = _wanted(remote, head, f"default branch '{short}' (remote HEAD)", url)
    return Choice(revision_of(short, sha), sha, head, "head")
