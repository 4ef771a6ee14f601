"""Child processes of a worker (git, ssh, kubectl, gpg): bounded in time, and dead with the worker.

Each child runs in a session of its own, so its deadline kills its whole process tree (git with
its ssh, remote helpers and index-pack) without touching the worker. But a killed worker takes
nothing with it: the kernel signals only the process that ``kill -9`` or the OOM killer chose, and
its git processes would go on writing into the mirrors, next to the run another worker starts for
the same object. So each worker process starts one watchdog (:mod:`gitops_tasks.reaper`, a
standard-library script) that holds the read end of a pipe whose write end only the worker has;
however the worker ends, the kernel closes it, and the watchdog kills every process marked with the
worker's token in its environment (``GITOPS_TASKS_CHILD_OF``), which every descendant inherits,
daemons that leave the session (gpg-agent) included.

``PR_SET_PDEATHSIG`` was not used: it must be set in the child through ``preexec_fn``, which is
unsafe in a threaded worker (the child can deadlock before ``exec``) and turns off ``vfork``; it
fires when the *thread* that forked exits, not the process; and it is not inherited by the child's
own children, so git's ssh or index-pack would live on.

Standard library only; I/O: starts processes (the watchdog once per worker process).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gitops_tasks import reaper

log = logging.getLogger(__name__)

#: The environment variable that marks a worker's children.
MARK_ENV = reaper.MARK_ENV
#: Seconds to wait for the watchdog to exit when the worker exits normally.
DEFAULT_WATCHDOG_EXIT_S = 5.0


@dataclass
class _Watchdog:
    owner_pid: int
    token: str
    write_fd: int
    proc: subprocess.Popen[bytes]


_lock = threading.Lock()
_watchdog: _Watchdog | None = None
#: A forked child keeps its parent's watchdog object (never collected there: not its child to reap).
_inherited: list[_Watchdog] = []


def _start_watchdog() -> _Watchdog:
    token = f"{os.getpid()}-{secrets.token_hex(8)}"
    read_fd, write_fd = os.pipe()  # both close-on-exec: no other child inherits the write end
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", str(Path(reaper.__file__).resolve()), token],
            stdin=read_fd,
            stdout=subprocess.DEVNULL,
            start_new_session=True,  # outlives a kill of the worker's process group
        )
    except BaseException:
        os.close(write_fd)
        raise
    finally:
        os.close(read_fd)
    return _Watchdog(os.getpid(), token, write_fd, proc)


def _watchdog_token() -> str | None:
    """This process's watchdog token, starting (or restarting) the watchdog when needed."""
    global _watchdog
    with _lock:
        current = _watchdog
        if current is not None and current.owner_pid == os.getpid() and current.proc.poll() is None:
            return current.token
        if current is not None and current.owner_pid == os.getpid():
            with contextlib.suppress(OSError):
                os.close(current.write_fd)
        try:
            _watchdog = _start_watchdog()
        except OSError as exc:
            _watchdog = None
            log.warning("cannot start the child-process watchdog (%s): children may outlive this worker", exc)
            return None
        return _watchdog.token


def _forget_in_child() -> None:
    """In a forked child (a prefork pool process): drop the parent's watchdog; start its own later."""
    global _watchdog
    if _watchdog is not None:
        with contextlib.suppress(OSError):
            os.close(_watchdog.write_fd)
        _inherited.append(_watchdog)
    _watchdog = None


def _stop_watchdog() -> None:
    """At a normal exit: close the pipe, so the watchdog ends (killing leftovers), and reap it."""
    current = _watchdog
    if current is None or current.owner_pid != os.getpid():
        return
    with contextlib.suppress(OSError):
        os.close(current.write_fd)
    with contextlib.suppress(subprocess.TimeoutExpired):
        current.proc.wait(DEFAULT_WATCHDOG_EXIT_S)


os.register_at_fork(after_in_child=_forget_in_child)
atexit.register(_stop_watchdog)


def child_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's environment) plus the mark the watchdog looks for."""
    out = dict(os.environ if env is None else env)
    token = _watchdog_token()
    if token is not None:
        out[MARK_ENV] = token
    return out


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child's session (it leads its own process group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def run(
    argv: Sequence[str],
    *,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    input: bytes | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``argv`` (no shell) to completion and return its exit code, stdout and stderr (bytes).

    The child gets a session of its own and the watchdog's mark; ``timeout_s`` (seconds) bounds the
    whole run, after which its process tree is killed and :class:`subprocess.TimeoutExpired` is
    raised. Raises :class:`OSError` when the program cannot be started.
    """
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=child_env(env),
        stdin=subprocess.DEVNULL if input is None else subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(input, timeout=max(timeout_s, 0.001))
    except BaseException:  # the deadline, or the task's soft time limit
        kill_tree(proc)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)


def run_text(
    argv: Sequence[str],
    *,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
) -> subprocess.CompletedProcess[str]:
    """:func:`run`, with stdout and stderr decoded as UTF-8 (undecodable bytes replaced)."""
    done = run(argv, timeout_s=timeout_s, env=env, cwd=cwd)
    out, err = (done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace"))
    return subprocess.CompletedProcess(done.args, done.returncode, out, err)
