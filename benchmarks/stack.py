"""gitops-tasks processes for benchmarks: environment, start-up waits, CPU accounting."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

from gitops_tasks.settings import Settings
from tests.procs import Proc, cli_argv, wait_for

#: How long a worker or beat may take to start (seconds).
DEFAULT_START_TIMEOUT_S = 60.0
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def gt_env(redis_url: str, base: Path, *, key_prefix: str = "gt:", **extra: str) -> dict[str, str]:
    """Environment for gitops-tasks processes: a private Redis, data, secrets and cache dirs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITOPS_TASKS_", "FLOWER_"))}
    env.update(
        {
            "GITOPS_TASKS_REDIS_URL": redis_url,
            "GITOPS_TASKS_KEY_PREFIX": key_prefix,
            "GITOPS_TASKS_DATA_DIR": str(base / "data"),
            "GITOPS_TASKS_SECRETS_DIR": str(base / "secrets"),
            "GITOPS_TASKS_CACHE_DIR": str(base / "cache"),
            "PYTHONUNBUFFERED": "1",
            **extra,
        }
    )
    return env


def settings_of(env: dict[str, str]) -> Settings:
    return Settings.from_env(env)


def start_worker(
    name: str, env: dict[str, str], log_dir: Path, *args: str, module: str = "gitops_tasks.cli"
) -> Proc:
    """A ``python -m <module> worker ARGS`` process (gitops-tasks CLI), once Celery says it is ready."""
    from gitops_tasks.app import make_app

    argv = cli_argv("worker", *args, "-n", f"{name}@%h")
    argv[2] = module
    proc = Proc(name, argv, env, log_dir)
    app = make_app(settings_of(env))
    node = f"{name}@{socket.gethostname()}"

    def ready() -> bool:
        if proc.proc.poll() is not None or "ready." in proc.log():
            return True
        return bool(app.control.ping(destination=[node], timeout=0.5))

    try:
        wait_for(ready, timeout_s=DEFAULT_START_TIMEOUT_S, interval_s=0.2, what=f"{name} to be ready")
        if proc.proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.proc.returncode}:\n{proc.log()[-3000:]}")
    except BaseException:
        proc.stop()
        raise
    finally:
        app.close()
    return proc


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads) from ``/proc/<pid>/stat``, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def children_cpu_seconds(pid: int) -> float:
    """cutime + cstime of ``pid``: CPU of its waited-for children (git subprocesses), seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[13]) + int(fields[14])) / _CLK_TCK


class Stopwatch:
    """``with Stopwatch() as sw: …`` then ``sw.s`` (perf_counter seconds)."""

    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        self.s = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.s = time.perf_counter() - self.start


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (from ``/proc/<pid>/task/*/children``)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores, from ``/proc/stat``."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return (total - idle) / _CLK_TCK, total / _CLK_TCK


def listen_overflows() -> int:
    """The kernel's count of connections dropped because a listen queue was full (all sockets)."""
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for head, values in zip(lines[::2], lines[1::2], strict=False):
        if head.startswith("TcpExt:"):
            return int(dict(zip(head.split()[1:], values.split()[1:], strict=True))["ListenOverflows"])
    return 0


def exit_cleanly_on_signals() -> None:
    """Turn SIGTERM and SIGINT into ``SystemExit``, so ``finally`` blocks stop every server started.

    A job started in the background by a non-interactive shell ignores SIGINT, and Python's default
    SIGTERM kills without unwinding; either way the servers would be left running.
    """

    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGINT, _exit)
