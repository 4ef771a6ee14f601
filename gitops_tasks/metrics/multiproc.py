"""Prometheus multiprocess mode for a worker whose pool forks (``-P prefork``).

Each pool process writes its samples to files in one directory, and the worker's HTTP server
merges them at scrape time. The directory is private to one worker and emptied when it starts, so
a restarted worker never serves the counters of its previous life. This module does not import
``prometheus_client``: the directory must be chosen before anything does.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

#: prometheus_client's own variable naming the directory.
ENV = "PROMETHEUS_MULTIPROC_DIR"


def use_multiprocess_dir(directory: Path) -> Path:
    """Empty (or create) ``directory`` and make this process and its children record there.

    Raises ``RuntimeError`` when ``prometheus_client`` is already imported: its metrics would keep
    counting in memory, invisible to the merged view.
    """
    if "prometheus_client.values" in sys.modules:
        raise RuntimeError("prometheus_client was imported before its multiprocess directory was chosen")
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True, mode=0o700)
    os.environ[ENV] = str(directory)
    return directory


def multiprocess_dir() -> Path | None:
    """The directory in use, ``None`` outside multiprocess mode."""
    value = os.environ.get(ENV)
    return Path(value) if value else None


def process_exited(pid: int) -> None:
    """A pool process ended: its live gauges stop counting (counters and histograms stay)."""
    directory = multiprocess_dir()
    if directory is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, str(directory))
