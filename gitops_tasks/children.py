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
import select
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gitops_tasks import reaper

log = logging.getLogger(__name__)

#: The environment variable that marks a worker's children.
MARK_ENV = reaper.MARK_ENV
#: Seconds to wait for the watchdog to exit when the worker exits normally.
DEFAULT_WATCHDOG_EXIT_S = 5.0
#: Longest wait, after killing a child's tree, for its processes to close their pipes (be gone).
DEFAULT_KILL_DRAIN_S = 5.0
#: Most bytes read from a child's stdout or stderr at a time.
READ_CHUNK_BYTES = 64 * 1024


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


class OutputTooLarge(subprocess.SubprocessError):
    """A child printed more than its caller's bound on one stream; its process tree was killed.

    ``read_bytes`` (what was read of ``stream`` before the kill) is at most ``limit + 1``.
    """

    def __init__(self, argv: Sequence[str], *, stream: str, limit: int, read_bytes: int) -> None:
        super().__init__(argv, stream, limit, read_bytes)
        self.argv = list(argv)
        self.stream = stream
        self.limit = limit
        self.read_bytes = read_bytes

    def __str__(self) -> str:
        return (
            f"{Path(self.argv[0]).name} printed more than {self.limit} bytes on {self.stream}; "
            f"stopped after {self.read_bytes}"
        )


def run(
    argv: Sequence[str],
    *,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    input: bytes | None = None,
    max_stdout_bytes: int | None = None,
    max_stderr_bytes: int | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``argv`` (no shell) to completion and return its exit code, stdout and stderr (bytes).

    The child gets a session of its own and the watchdog's mark; ``timeout_s`` (seconds) bounds the
    whole run, after which its process tree is killed and :class:`subprocess.TimeoutExpired` is
    raised. ``max_stdout_bytes`` and ``max_stderr_bytes`` (default: unbounded) bound what is read
    of each stream: the output is read as it comes, and the first byte past a bound kills the
    process tree and raises :class:`OutputTooLarge`, so a child printing gigabytes costs this
    process at most the bound. Raises :class:`OSError` when the program cannot be started.
    """
    deadline = time.monotonic() + max(timeout_s, 0.001)
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
        out, err = _communicate(
            proc,
            input,
            argv=argv,
            deadline=deadline,
            timeout_s=timeout_s,
            limits=(max_stdout_bytes, max_stderr_bytes),
        )
        proc.wait(max(deadline - time.monotonic(), 0.001))
    except BaseException:  # the deadline, a bound, or the task's soft time limit
        kill_tree(proc)
        _drain(proc, time.monotonic() + DEFAULT_KILL_DRAIN_S)
        _close_pipes(proc)
        proc.wait()
        raise
    return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)


def _drain(proc: subprocess.Popen[bytes], deadline: float) -> None:
    """After a kill: discard output until the killed processes have closed their pipes (they are
    gone then), or until ``deadline`` (a daemon that left the session may hold them open)."""
    pipes = [pipe.fileno() for pipe in (proc.stdout, proc.stderr) if pipe is not None and not pipe.closed]
    with selectors.DefaultSelector() as selector:
        for fd in pipes:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map() and (left := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(left):
                if not os.read(key.fd, READ_CHUNK_BYTES):
                    selector.unregister(key.fd)


def _close_pipes(proc: subprocess.Popen[bytes]) -> None:
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


def _communicate(
    proc: subprocess.Popen[bytes],
    input: bytes | None,
    *,
    argv: Sequence[str],
    deadline: float,
    timeout_s: float,
    limits: tuple[int | None, int | None],
) -> tuple[bytes, bytes]:
    """Feed ``input`` and read stdout and stderr to their ends, within ``deadline`` and ``limits``.

    Reads go straight to the file descriptors (never through the pipes' buffers), at most
    :data:`READ_CHUNK_BYTES` at a time and never more than one byte past a stream's limit.
    """
    assert proc.stdout is not None and proc.stderr is not None
    names = {proc.stdout.fileno(): "stdout", proc.stderr.fileno(): "stderr"}
    bounds = {"stdout": limits[0], "stderr": limits[1]}
    chunks: dict[str, list[bytes]] = {"stdout": [], "stderr": []}
    counts = {"stdout": 0, "stderr": 0}
    sent = 0
    with selectors.DefaultSelector() as selector:
        for fd in names:
            selector.register(fd, selectors.EVENT_READ)
        if proc.stdin is not None:
            if input:
                selector.register(proc.stdin.fileno(), selectors.EVENT_WRITE)
            else:
                proc.stdin.close()
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(list(argv), timeout_s)
            for key, _ in selector.select(left):
                if key.fd not in names:  # stdin is writable: at most PIPE_BUF bytes never block
                    assert proc.stdin is not None and input is not None
                    try:
                        sent += os.write(key.fd, input[sent : sent + select.PIPE_BUF])
                    except BrokenPipeError:
                        sent = len(input)
                    if sent >= len(input):
                        selector.unregister(key.fd)
                        proc.stdin.close()
                    continue
                name = names[key.fd]
                bound = bounds[name]
                want = READ_CHUNK_BYTES if bound is None else min(READ_CHUNK_BYTES, bound - counts[name] + 1)
                data = os.read(key.fd, want)
                if not data:
                    selector.unregister(key.fd)
                    continue
                chunks[name].append(data)
                counts[name] += len(data)
                if bound is not None and counts[name] > bound:
                    raise OutputTooLarge(argv, stream=name, limit=bound, read_bytes=counts[name])
    _close_pipes(proc)
    return b"".join(chunks["stdout"]), b"".join(chunks["stderr"])
