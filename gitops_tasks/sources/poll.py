"""One poll of a GitRepository: list refs, choose one, fetch only what this worker lacks.

The cost of an unchanged poll is one ref listing: ``git ls-remote``, or for ``git://`` one
protocol v0 conversation in this process (:mod:`.wire`, no git process at all). Nothing is
fetched or checked locally when the chosen commit is the one already recorded
(``known_commit``). A changed commit is fetched into this worker's mirror before the poll
returns; another worker whose mirror lacks a recorded commit fetches it when it needs it
(``checkout`` does).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops_tasks.objects.durations import format_duration, parse_duration
from gitops_tasks.objects.model import Object
from gitops_tasks.sources.credentials import (
    DEFAULT_TIMEOUT_S,
    Remote,
    mask_url,
    open_remote,
    read_secret,
)
from gitops_tasks.sources.errors import GitError
from gitops_tasks.sources.gitcli import ls_remote
from gitops_tasks.sources.mirror import ensure_commit, ensure_contains
from gitops_tasks.sources.refs import choose_ref

#: Used for ``waiting`` retries when ``spec.interval`` is absent (seconds).
DEFAULT_INTERVAL_S = 60.0


@dataclass(frozen=True)
class GitSpec:
    """The fields of a GitRepository spec a poll uses, checked."""

    url: str
    timeout_s: float
    interval_s: float
    ref: Mapping[str, Any]
    #: ``(namespace, name)`` of ``spec.secretRef``, or ``None``.
    secret: tuple[str, str] | None

    @classmethod
    def from_object(cls, obj: Object) -> GitSpec:
        """Read ``obj.spec``. Raises :class:`GitError` ``InvalidSpec`` (stalled) naming the field."""
        spec = obj.spec
        where = f"GitRepository {obj.namespace}/{obj.name}"

        def invalid(field: str, expected: str) -> GitError:
            got = mask_url(str(spec.get(field))) if field == "url" else repr(spec.get(field))
            return GitError(
                "InvalidSpec", f"{where}: spec.{field} is {got}; expected {expected}", stalled=True
            )

        url = spec.get("url")
        if not isinstance(url, str) or not url.strip():
            raise invalid("url", "a git URL")
        try:
            timeout_s = parse_duration(spec["timeout"]) if spec.get("timeout") else DEFAULT_TIMEOUT_S
        except ValueError:
            raise invalid("timeout", "a duration such as 60s or 2m") from None
        try:
            interval_s = parse_duration(spec["interval"]) if spec.get("interval") else DEFAULT_INTERVAL_S
        except ValueError:
            raise invalid("interval", "a duration such as 1m or 5m") from None
        ref = spec.get("ref") or {}
        if not isinstance(ref, Mapping):
            raise invalid("ref", "a mapping with branch, tag, semver, name or commit")
        secret_ref = spec.get("secretRef") or None
        secret = None
        if secret_ref is not None:
            if not isinstance(secret_ref, Mapping) or not secret_ref.get("name"):
                raise invalid("secretRef", "a mapping with a name")
            secret = (obj.namespace, str(secret_ref["name"]))
        return cls(url.strip(), timeout_s, interval_s, ref, secret)


@dataclass(frozen=True)
class PollResult:
    """What a poll found.

    ``revision`` is Flux's text (``main@sha1:<sha>``); ``ref_name`` the full ref fetched
    (``refs/heads/main``; for a pinned commit the branch holding it, or ``None``); ``fetched``
    whether the network was used beyond ``ls-remote``; ``changed`` whether ``commit`` differs
    from the ``known_commit`` passed in.
    """

    revision: str
    commit: str
    ref_name: str | None
    fetched: bool
    changed: bool


@contextmanager
def open_spec_remote(spec: GitSpec, *, secrets_dir: Path) -> Iterator[Remote]:
    """The :class:`Remote` for a spec, secret loaded (for polls, and later checkouts and pushes)."""
    secret = read_secret(secrets_dir, *spec.secret) if spec.secret else None
    with open_remote(
        spec.url,
        secret,
        secret_ref="/".join(spec.secret) if spec.secret else "",
        timeout_s=spec.timeout_s,
    ) as remote:
        yield remote


def poll(obj: Object, *, secrets_dir: Path, cache_dir: Path, known_commit: str | None) -> PollResult:
    """Poll ``obj`` (a GitRepository) once; ``spec.timeout`` bounds the whole poll.

    Raises :class:`GitError` (already redacted and classified; see :mod:`.reconcile` for reasons).
    ``OSError`` from the cache dir is not caught here.
    """
    spec = GitSpec.from_object(obj)
    deadline = time.monotonic() + spec.timeout_s

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise GitError(
                "GitOperationTimedOut",
                f"poll of {mask_url(spec.url)} timed out (spec.timeout {format_duration(spec.timeout_s)})",
            )
        return left

    with open_spec_remote(spec, secrets_dir=secrets_dir) as remote:
        refs = ls_remote(remote, timeout_s=remaining())
        choice = choose_ref(refs, spec.ref, url=remote.display_url)
        changed = choice.commit != known_commit
        fetched = False
        # Unchanged: the recorded revision is the truth and checkouts fetch on demand, so an
        # unchanged poll costs exactly one ref listing (no local git operation at all).
        if changed:
            if choice.kind == "commit":
                fetched = ensure_contains(
                    remote,
                    choice.ref_name,
                    choice.commit,
                    cache_dir=cache_dir,
                    timeout_s=remaining(),
                    branch_given=bool(spec.ref.get("branch")),
                )
            else:
                fetched = ensure_commit(
                    remote, choice.ref_name, choice.commit, cache_dir=cache_dir, timeout_s=remaining()
                )
    return PollResult(choice.revision, choice.commit, choice.ref_name, fetched, changed)
