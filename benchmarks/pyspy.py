"""Sampling a worker with py-spy (GIL holders only) and sorting its Python time into buckets.

py-spy is optional (``pip install py-spy`` into the venv); :func:`available` says whether it is
there. ``--gil`` keeps only samples of the thread holding the GIL, so the buckets split the
worker's Python CPU, the part that one process cannot spread over cores.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: Samples per second.
DEFAULT_RATE_HZ = 200
#: Seconds py-spy may take to attach, and to write its output after SIGINT.
ATTACH_S = 1.5
STOP_TIMEOUT_S = 30

_LINE_NO = re.compile(r":\d+\)$")

#: (bucket, test on one stack's frames), first match wins. Frames read ``function (file)``.
BUCKETS: list[tuple[str, str]] = [
    ("Celery consumer loop (main thread: receive, QoS bookkeeping, ack, task events)", "asynloop (celery/"),
    ("run-lock renewal threads", "_renew_loop (gitops_tasks/store/locks.py)"),
]
_TASK = "run_kind (gitops_tasks/tasks/dispatch.py)"
_TASK_BUCKETS: list[tuple[str, str]] = [
    ("task: git subprocesses (spawn, pipes, wait)", "subprocess.py)"),
    ("task: logging", "logging/__init__.py)"),
    ("task: run-lock thread start/stop", "RunLock."),
    ("task: Redis calls (client side)", "redis/"),
]


def executable() -> str | None:
    here = Path(sys.executable).with_name("py-spy")
    return str(here) if here.is_file() else shutil.which("py-spy")


def available() -> bool:
    return executable() is not None


@contextmanager
def record(pids: list[int], out_dir: Path, *, rate_hz: int = DEFAULT_RATE_HZ) -> Iterator[list[Path]]:
    """Record ``pids`` while the ``with`` body runs; yields the raw (collapsed-stack) output files."""
    exe = executable()
    if exe is None:
        raise RuntimeError("py-spy is not installed (pip install py-spy)")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"pyspy-{pid}.txt" for pid in pids]
    procs = [
        subprocess.Popen(
            [
                exe,
                "record",
                "--gil",
                "--nonblocking",
                "-r",
                str(rate_hz),
                "-f",
                "raw",
                "-o",
                str(path),
                "-p",
                str(pid),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid, path in zip(pids, paths, strict=True)
    ]
    time.sleep(ATTACH_S)
    try:
        yield paths
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)
        for proc in procs:
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def bucket_of(frames: list[str]) -> str:
    for name, needle in BUCKETS:
        if any(needle in f for f in frames):
            return name
    if any(_TASK in f for f in frames):
        for name, needle in _TASK_BUCKETS:
            if any(needle in f for f in frames):
                return name
        return "task: other Python (status JSON, summary, refs, object parsing)"
    if any("trace_task" in f or "apply_target" in f for f in frames):
        return "Celery task tracing around the task"
    return "other (thread pool, idle bookkeeping)"


def summarise(paths: list[Path]) -> Counter[str]:
    """Bucket → samples over all ``paths``."""
    counts: Counter[str] = Counter()
    for path in paths:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            stack, _, n = line.rpartition(" ")
            if not stack or not n.isdigit():
                continue
            counts[bucket_of([_LINE_NO.sub(")", f) for f in stack.split(";")])] += int(n)
    return counts
