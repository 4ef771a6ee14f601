"""Running git as a subprocess with a deadline, and classifying what went wrong.

No shell is involved; the URL follows ``--end-of-options`` so it can never be read as an option.
Each call runs in its own process group and the whole group (git, ssh, remote helpers) is
killed when the timeout expires; git and everything it starts die with the worker too
(:mod:`gitops_tasks.children`). Every message that leaves this module is redacted.

One exception to "git as a subprocess": :func:`ls_remote` on a ``git://`` URL (protocol v0)
speaks the protocol itself (:mod:`.wire`), which saves a git process per poll; its failures
are worded like git's and go through the same :func:`classify` (a malformed answer from the
server is ``GitOperationFailed``).

Failure reasons (:func:`classify`):

- ``AuthenticationFailed`` (stalled): 401/403, ``Permission denied (publickey)``, rejected
  credentials, git wanting to prompt for a username.
- ``HostKeyVerificationFailed`` (stalled): host key unknown or changed.
- ``RepositoryNotFound`` (transient): the remote says the repository is not there (404,
  ``does not appear to be a git repository``, ``not exported``); it may come back.
- ``GitOperationTimedOut`` (transient): our deadline (``spec.timeout``) or a connect timeout.
- ``GitOperationFailed`` (transient): anything else (connection refused, server errors...).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

from gitops_tasks import children
from gitops_tasks.metrics.instruments import git_operation
from gitops_tasks.objects.durations import format_duration
from gitops_tasks.sources import wire
from gitops_tasks.sources.credentials import Remote, Transport, base_env, redact
from gitops_tasks.sources.errors import GitError
from gitops_tasks.sources.refs import RemoteRefs

#: ``protocol.version`` per transport. Measured here (median ls-remote): git daemon v0 ~12 ms vs
#: v2 ~56 ms; file:// v0 ~6 ms vs v2 ~7 ms; smart HTTP and SSH cost the same either way, and v2
#: lets the server filter refs, so those use v2.
PROTOCOL_VERSION: dict[Transport, int] = {"file": 0, "git": 0, "http": 2, "ssh": 2}
#: Characters of git's stderr kept in a message.
MAX_DETAIL_CHARS = 600

_AUTH = re.compile(
    r"permission denied \(|authentication failed|could not read (username|password)|terminal prompts disabled"
    r"|returned error: 40[13]\b|http basic: access denied|invalid username or password"
    r"|too many authentication failures|load key .*: invalid format"
)
_HOST_KEY = re.compile(
    r"host key verification failed|remote host identification has changed|no \S+ host key is known"
    r"|host key for .* has changed"
)
_NOT_FOUND = re.compile(
    r"does not appear to be a git repository|repository '.*' not found|repository not found"
    r"|returned error: 404\b|not exported|no such repository"
)
_TIMED_OUT = re.compile(r"timed out|operation timed out")
_NOISE = re.compile(
    r"^(fatal: could not read from remote repository\.|please make sure you have the correct access rights"
    r"|and the repository exists\.|error: unable to read askpass response.*|@+)$"
)


def _detail(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines()]
    kept = [ln for ln in lines if ln and not _NOISE.match(ln.lower())]
    text = "; ".join(kept) or "no error output"
    return text if len(text) <= MAX_DETAIL_CHARS else text[: MAX_DETAIL_CHARS - 3] + "..."


def classify(stderr: str, *, operation: str, display_url: str, secrets: Sequence[str] = ()) -> GitError:
    """Turn git's stderr into a :class:`GitError` with a reason, a redacted message and a result."""
    lowered = stderr.lower()
    detail = _detail(stderr)
    if _HOST_KEY.search(lowered):
        detail = _detail("\n".join(ln for ln in stderr.splitlines() if _HOST_KEY.search(ln.lower())))
        reason, stalled, hint = (
            "HostKeyVerificationFailed",
            True,
            ("; the server's host key is not the one in the Secret's known_hosts"),
        )
    elif _AUTH.search(lowered):
        reason, stalled, hint = "AuthenticationFailed", True, "; check the credentials in spec.secretRef"
    elif _NOT_FOUND.search(lowered):
        reason, stalled, hint = "RepositoryNotFound", False, ""
    elif _TIMED_OUT.search(lowered):
        reason, stalled, hint = "GitOperationTimedOut", False, ""
    else:
        reason, stalled, hint = "GitOperationFailed", False, ""
    message = redact(f"{operation} {display_url} failed: {detail}{hint}", secrets)
    return GitError(reason, message, stalled=stalled)


def _timed_out(operation: str, display: str, budget: str, secrets: Sequence[str]) -> GitError:
    return GitError("GitOperationTimedOut", redact(f"{operation} {display} timed out ({budget})", secrets))


def run_git(
    args: Sequence[str],
    *,
    timeout_s: float,
    remote: Remote | None = None,
    cwd: Path | None = None,
    operation: str = "git",
    protocol_version: int | None = None,
) -> str:
    """Run ``git <args>`` and return its stdout (text).

    ``remote`` supplies the environment (credentials) and the masked URL for messages; without
    it git runs with :func:`base_env` (local operations). ``timeout_s`` bounds the whole run
    (seconds; the process group is killed when it expires). Raises :class:`GitError`.
    """
    if remote is None:
        return _run_git(
            args, timeout_s=timeout_s, cwd=cwd, operation=operation, protocol_version=protocol_version
        )
    with git_operation(operation, remote.transport):
        return _run_git(
            args,
            timeout_s=timeout_s,
            remote=remote,
            cwd=cwd,
            operation=operation,
            protocol_version=protocol_version,
        )


def _run_git(
    args: Sequence[str],
    *,
    timeout_s: float,
    remote: Remote | None = None,
    cwd: Path | None = None,
    operation: str,
    protocol_version: int | None,
) -> str:
    env = dict(remote.env) if remote is not None else base_env()
    secrets = remote.secrets if remote is not None else ()
    display = remote.display_url if remote is not None else str(cwd or "")
    cmd = ["git"]
    if protocol_version is None and remote is not None:
        protocol_version = PROTOCOL_VERSION[remote.transport]
    if protocol_version is not None:
        cmd += ["-c", f"protocol.version={protocol_version}"]
    cmd += list(args)
    try:
        proc = children.run(cmd, timeout_s=timeout_s, env=env, cwd=cwd)
    except subprocess.TimeoutExpired:
        budget = f"spec.timeout {format_duration(remote.timeout_s)}" if remote else format_duration(timeout_s)
        raise _timed_out(operation, display, budget, secrets) from None
    out, err = proc.stdout, proc.stderr
    if proc.returncode != 0:
        stderr = err.decode("utf-8", errors="replace")
        if remote is None:
            raise GitError(
                "GitOperationFailed", redact(f"{operation} in {display} failed: {_detail(stderr)}", secrets)
            )
        raise classify(stderr, operation=operation, display_url=display, secrets=secrets)
    return out.decode("utf-8", errors="replace")


def git_succeeds(args: Sequence[str], *, cwd: Path, timeout_s: float) -> bool:
    """Whether a local, quiet git command (``cat-file -e``, ``merge-base --is-ancestor``) exits 0."""
    try:
        proc = children.run(["git", *args], cwd=cwd, env=base_env(), timeout_s=timeout_s)
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0


def ls_remote(remote: Remote, *, timeout_s: float) -> RemoteRefs:
    """List the remote's refs and HEAD's symref target (one round trip). Raises :class:`GitError`.

    ``git://`` with protocol v0 is listed natively (:mod:`.wire`, no git process); every other
    transport runs ``git ls-remote --symref``. Both give the same refs and the same errors.
    """
    if remote.transport == "git" and PROTOCOL_VERSION["git"] == 0:
        with git_operation("ls-remote", remote.transport):
            return _ls_remote_native(remote, timeout_s=timeout_s)
    out = run_git(
        ["ls-remote", "--symref", "--end-of-options", remote.url],
        timeout_s=timeout_s,
        remote=remote,
        operation="ls-remote",
    )
    return RemoteRefs.parse(out)


def _ls_remote_native(remote: Remote, *, timeout_s: float) -> RemoteRefs:
    operation, display = "ls-remote", remote.display_url
    try:
        return wire.list_refs(remote.url, timeout_s=max(timeout_s, 0.001))
    except TimeoutError:
        budget = f"spec.timeout {format_duration(remote.timeout_s)}"
        raise _timed_out(operation, display, budget, remote.secrets) from None
    except wire.ProtocolError as exc:
        raise GitError("GitOperationFailed", remote.redact(f"{operation} {display} failed: {exc}")) from None
    except wire.WireError as exc:
        # Worded as git words it (remote error, lookup, connect), so classify() reads it alike.
        raise classify(str(exc), operation=operation, display_url=display, secrets=remote.secrets) from None
