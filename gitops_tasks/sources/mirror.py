"""A per-URL bare mirror under the cache dir: the worker-local copy of a remote's commits.

Layout: ``<cache_dir>/git/<key>/`` (a bare repository) and ``<cache_dir>/git/<key>.lock``, where
``key`` is the first 16 hex digits of the SHA-256 of the URL without credentials (so the same
repository reached with different tokens shares one mirror, and no secret reaches the disk).

The mirror is a cache, safe to lose: a missing or corrupt one is re-created on the next fetch.
It only grows (``gc.auto=0``), so objects never vanish under a reader. Writers (create, fetch,
re-create) hold an exclusive ``fcntl.flock`` on the lock file, which serialises threads and
processes on one machine; :func:`checkout` holds it shared while cloning. Reads that only ask
"is this commit here?" take no lock (git writes objects and refs atomically).

Errors: :class:`GitError` from :mod:`.gitcli`, plus ``MirrorLocked`` (waiting) when another
fetch holds the lock past the deadline and ``CommitNotFound`` (waiting) when a commit is not in
the ref that should contain it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from gitops_tasks.sources.credentials import Remote, split_credentials
from gitops_tasks.sources.errors import GitError
from gitops_tasks.sources.gitcli import git_succeeds, run_git

#: Seconds between attempts to take a busy mirror lock.
LOCK_POLL_S = 0.02
#: Namespace in the mirror for fetched refs that do not start with ``refs/`` (and for bare SHAs).
FOREIGN_REF_PREFIX = "refs/gitops-tasks/"
_MIRROR_CONFIG = "[gc]\n\tauto = 0\n[maintenance]\n\tauto = false\n[core]\n\tlogAllRefUpdates = false\n"
_CORRUPT_HINTS = (
    "corrupt",
    "bad object",
    "not a git repository",
    "unable to read",
    "loose object",
    "packfile",
    "broken link",
    "invalid object",
    "did not send all necessary objects",
)


def canonical_url(url: str) -> str:
    """``url`` without credentials, scheme and host lower-cased, no trailing slash."""
    bare = split_credentials(url)[0]
    if "://" in bare:
        p = urlsplit(bare)
        bare = urlunsplit((p.scheme.lower(), p.netloc.lower(), p.path, p.query, ""))
    return bare.rstrip("/")


def mirror_path(cache_dir: Path, url: str) -> Path:
    """Where the mirror for ``url`` lives (see module docstring)."""
    key = hashlib.sha256(canonical_url(url).encode()).hexdigest()[:16]
    return Path(cache_dir) / "git" / key


_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def _local_ref(ref_name: str) -> str:
    return ref_name if ref_name.startswith("refs/") else FOREIGN_REF_PREFIX + ref_name


def _remaining(deadline: float) -> float:
    """Seconds left before ``deadline`` (monotonic), never zero so git still gets a chance to fail."""
    return max(deadline - time.monotonic(), 0.001)


class Mirror:
    """One bare mirror. Cheap to construct; touches the disk only when used."""

    def __init__(self, cache_dir: Path, url: str) -> None:
        self.path = mirror_path(cache_dir, url)
        self.lock_path = self.path.with_name(self.path.name + ".lock")

    @contextlib.contextmanager
    def lock(self, *, timeout_s: float, shared: bool = False) -> Iterator[None]:
        """Hold the mirror's flock (exclusive unless ``shared``) for up to ``timeout_s`` of waiting."""
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + timeout_s
            mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
            while True:
                try:
                    fcntl.flock(fd, mode)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise GitError(
                            "MirrorLocked",
                            f"git mirror {self.path} is busy (another fetch holds it)",
                            waiting=True,
                        ) from None
                    time.sleep(LOCK_POLL_S)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def exists(self) -> bool:
        return (self.path / "HEAD").is_file() and (self.path / "objects").is_dir()

    def has_commit(self, sha: str, *, timeout_s: float = 10.0) -> bool:
        """Whether ``sha`` is a commit in the mirror (no lock, no network)."""
        return self.exists() and git_succeeds(
            ["cat-file", "-e", f"{sha}^{{commit}}"], cwd=self.path, timeout_s=timeout_s
        )

    def contains(self, ref_name: str, sha: str, *, timeout_s: float = 10.0) -> bool:
        """Whether commit ``sha`` is reachable from the mirror's copy of ``ref_name``."""
        return git_succeeds(
            ["merge-base", "--is-ancestor", sha, _local_ref(ref_name)], cwd=self.path, timeout_s=timeout_s
        )

    def recreate(self, *, timeout_s: float) -> None:
        """Replace the mirror with an empty one. Call with the exclusive lock held."""
        shutil.rmtree(self.path, ignore_errors=True)
        run_git(["init", "--bare", "--quiet", str(self.path)], timeout_s=timeout_s, operation="git init")
        with (self.path / "config").open("a") as fh:
            fh.write(_MIRROR_CONFIG)

    def fetch(self, remote: Remote, source: str, *, timeout_s: float) -> None:
        """Fetch ``source`` (a ref name or a commit SHA) into the mirror. Call with the exclusive lock held.

        A mirror that is missing, or that git reports as corrupt, is re-created and the fetch
        retried once. Raises :class:`GitError`.
        """
        deadline = time.monotonic() + timeout_s
        by_sha = _SHA.fullmatch(source) is not None
        refspec = f"+{source}:{_local_ref(source)}"
        args = [
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            "--no-recurse-submodules",
            "--no-show-forced-updates",
            "--end-of-options",
            remote.url,
            refspec,
        ]
        for attempt in (1, 2):
            if not self.exists():
                self.recreate(timeout_s=_remaining(deadline))
            try:
                run_git(
                    args,
                    timeout_s=_remaining(deadline),
                    remote=remote,
                    cwd=self.path,
                    operation="fetch",
                    protocol_version=2 if by_sha else None,
                )
                return
            except GitError as exc:
                corrupt = exc.reason == "GitOperationFailed" and any(
                    h in exc.message.lower() for h in _CORRUPT_HINTS
                )
                if attempt == 2 or not corrupt:
                    raise
                shutil.rmtree(self.path, ignore_errors=True)


def ensure_commit(
    remote: Remote, ref_name: str | None, sha: str, *, cache_dir: Path, timeout_s: float
) -> bool:
    """Make commit ``sha`` present in the mirror of ``remote``; return whether a fetch was needed.

    ``ref_name`` is the ref (``refs/heads/main``) the commit was advertised under; with ``None``
    the commit is fetched by SHA (over protocol v2: v0 servers refuse unadvertised objects).
    Raises :class:`GitError` (``GitOperationFailed`` if the ref moved away from ``sha`` between
    listing and fetching: the next poll sees the new state).
    """
    mirror = Mirror(cache_dir, remote.url)
    if mirror.has_commit(sha):
        return False
    deadline = time.monotonic() + timeout_s
    with mirror.lock(timeout_s=timeout_s):
        if mirror.has_commit(sha):
            return False
        source = ref_name or sha
        mirror.fetch(remote, source, timeout_s=_remaining(deadline))
        if not mirror.has_commit(sha):
            raise GitError(
                "GitOperationFailed",
                f"fetched {source} from {remote.display_url} but commit {sha} is not in it (the ref moved)",
            )
    return True


def ensure_contains(
    remote: Remote,
    ref_name: str | None,
    sha: str,
    *,
    cache_dir: Path,
    timeout_s: float,
    branch_given: bool,
) -> bool:
    """For a pinned commit: fetch ``ref_name`` and check it contains ``sha``; return whether fetched.

    With ``branch_given`` (``spec.ref.branch`` set) the commit must be on that branch. Otherwise
    ``ref_name`` is the default branch, tried first because it usually holds the commit; failing
    that (or with no ``ref_name``) the commit is fetched by SHA. Raises :class:`GitError`,
    ``CommitNotFound`` (waiting) when the commit is not there.
    """
    mirror = Mirror(cache_dir, remote.url)
    deadline = time.monotonic() + timeout_s
    with mirror.lock(timeout_s=timeout_s):
        if ref_name is not None:
            mirror.fetch(remote, ref_name, timeout_s=_remaining(deadline))
            if mirror.has_commit(sha) and mirror.contains(ref_name, sha):
                return True
        if not branch_given:
            try:
                mirror.fetch(remote, sha, timeout_s=_remaining(deadline))
            except GitError as exc:
                if exc.stalled or exc.reason in ("GitOperationTimedOut", "RepositoryNotFound"):
                    raise
            if mirror.has_commit(sha):
                return True
    where = f"branch '{(ref_name or '').removeprefix('refs/heads/')}'" if branch_given else "the repository"
    raise GitError(
        "CommitNotFound",
        f"commit {sha} (spec.ref.commit) not found in {where} of {remote.display_url}",
        waiting=True,
    )


def checkout(
    remote: Remote,
    sha: str,
    dest_dir: Path,
    *,
    cache_dir: Path,
    timeout_s: float,
    ref_name: str | None = None,
    dissociate: bool = False,
) -> Path:
    """Check out commit ``sha`` of ``remote`` into ``dest_dir`` (detached HEAD), via the mirror.

    Fetches first if this worker's mirror lacks the commit (``ref_name`` as in
    :func:`ensure_commit`). The clone borrows the mirror's objects (``--shared``), which is
    instant; pass ``dissociate=True`` for a checkout that must outlive a lost mirror (copies the
    objects). ``origin`` in the checkout points at the mirror. Raises :class:`GitError`.
    """
    deadline = time.monotonic() + timeout_s
    ensure_commit(remote, ref_name, sha, cache_dir=cache_dir, timeout_s=timeout_s)
    mirror = Mirror(cache_dir, remote.url)
    with mirror.lock(timeout_s=_remaining(deadline), shared=True):
        run_git(
            [
                "clone",
                "--quiet",
                "--shared",
                "--no-checkout",
                "--end-of-options",
                str(mirror.path),
                str(dest_dir),
            ],
            timeout_s=_remaining(deadline),
            operation="git clone",
        )
        if dissociate:
            run_git(
                ["repack", "-a", "-d", "-q"],
                cwd=dest_dir,
                timeout_s=_remaining(deadline),
                operation="git repack",
            )
            (Path(dest_dir) / ".git" / "objects" / "info" / "alternates").unlink(missing_ok=True)
    run_git(
        ["checkout", "--quiet", "--detach", sha],
        cwd=dest_dir,
        timeout_s=_remaining(deadline),
        operation="git checkout",
    )
    return Path(dest_dir)
