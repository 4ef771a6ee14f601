"""Starting the metrics and health endpoints of a worker, of beat and of the catalog collector.

- worker (``GITOPS_TASKS_WORKER_METRICS_PORT``): ``/metrics`` of the worker and, under
  ``-P prefork``, of every pool process (multiprocess mode, in ``$DATA_DIR/metrics/worker-PID``,
  emptied at start); ``/healthz`` 503 once the consumer loop's heartbeat is stale; ``/readyz`` 200
  once the loop runs and while it does.
- beat (``GITOPS_TASKS_BEAT_METRICS_PORT``): ``/metrics``; ``/healthz`` from the scheduling loop's
  heartbeat; ``/readyz`` the same and, with ``?role=leader``, 200 only on the beat that schedules.
- ``gitops-tasks metrics`` (``GITOPS_TASKS_METRICS_PORT``): the catalog collector at
  ``/metrics``; ``/healthz`` 200 while it serves; ``/readyz`` 200 while Redis answers.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gitops_tasks.metrics import health
from gitops_tasks.metrics.multiproc import use_multiprocess_dir
from gitops_tasks.settings import Settings


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prepare_worker(settings: Settings, *, pool: str) -> Path | None:
    """Before the worker imports anything: choose multiprocess mode for a forking pool (and tell
    the heartbeat whether tasks run inside the consumer loop, as with ``solo``).

    Directories left by workers that no longer run are removed. Returns the directory in use.
    """
    health.CONSUMER.inline_tasks = pool == "solo"
    if pool != "prefork" or not settings.worker_metrics_port:
        return None
    base = settings.data_dir / "metrics"
    if base.is_dir():
        for old in base.glob("worker-*"):
            pid = old.name.removeprefix("worker-")
            if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                shutil.rmtree(old, ignore_errors=True)
    return use_multiprocess_dir(base / f"worker-{os.getpid()}")


def _heartbeat_check(beat: health.Heartbeat, *, ready: bool) -> Callable[[Mapping[str, list[str]]], Any]:
    def check(query: Mapping[str, list[str]]) -> tuple[bool, dict[str, Any]]:
        report = beat.report()
        ok = bool(report["ready" if ready else "alive"])
        wanted = query.get("role", [""])[0]
        if ready and wanted:
            ok = ok and report.get("role") == wanted
        return ok, report

    return check


def start_loop_server(settings: Settings, beat: health.Heartbeat, *, port: int) -> Any:
    """Serve this process's metrics and ``beat``'s health on ``port`` (0: nothing is served), and
    keep the heartbeat file when one is configured."""
    if settings.heartbeat_file is not None:
        settings.heartbeat_file.parent.mkdir(parents=True, exist_ok=True)
        beat.path = settings.heartbeat_file
    beat.stale_s = settings.heartbeat_stale_s
    if not port:
        return None
    from gitops_tasks.metrics.exposition import process_metrics
    from gitops_tasks.metrics.server import MetricsServer

    checks = {
        "/healthz": _heartbeat_check(beat, ready=False),
        "/readyz": _heartbeat_check(beat, ready=True),
    }
    return MetricsServer(settings.metrics_address, port, metrics=process_metrics, checks=checks).start()


def start_worker_server(settings: Settings) -> Any:
    return start_loop_server(settings, health.CONSUMER, port=settings.worker_metrics_port)


def start_beat_server(settings: Settings) -> Any:
    return start_loop_server(settings, health.SCHEDULER, port=settings.beat_metrics_port)
