"""gitops-tasks processes for benchmarks: environment, start-up waits, CPU accounting."""

from __future__ import annotations

import os
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


def start_worker(name: str, env: dict[str, str], log_dir: Path, *args: str) -> Proc:
    """A ``gitops-tasks worker`` process, returned once Celery logs that it is ready."""
    proc = Proc(name, cli_argv("worker", *args), env, log_dir)
    wait_for(
        lambda: "ready." in proc.log() or proc.proc.poll() is not None,
        timeout_s=DEFAULT_START_TIMEOUT_S,
        interval_s=0.1,
        what=f"{name} to be ready",
    )
    if proc.proc.poll() is not None:
        raise RuntimeError(f"{name} exited with {proc.proc.returncode}:\n{proc.log()[-3000:]}")
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
