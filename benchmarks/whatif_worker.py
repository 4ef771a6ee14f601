"""A gitops-tasks worker with candidate optimisations patched in, to measure what each would save.

Used by ``bench_poll --whatif`` only; the code under test is not changed. Each change is named
in ``GT_BENCH_WHATIF`` (comma-separated) and approximates a change proposed in BENCHMARKS.md:

- ``no_events``: no Celery task events (``-E`` dropped, ``worker_send_task_events`` off).
- ``no_renew_thread``: no renewal thread per run lock (stands in for one shared renewer thread
  per process; the polls here finish far within the lock TTL, so renewal never matters).

``python -m benchmarks.whatif_worker worker -c 8 -P threads -Q git`` (same arguments as the CLI).
"""

from __future__ import annotations

import os
import sys
from typing import Any

#: Environment variable naming the changes to apply.
ENV_VAR = "GT_BENCH_WHATIF"
CHANGES = ("no_events", "no_renew_thread")


def _no_renew_thread() -> None:
    from gitops_tasks.store import locks
    from gitops_tasks.tasks import runner

    class NoThreadLock(locks.RunLock):
        def keep_alive(self) -> None:
            return None

        def stop_renewing(self) -> None:
            return None

    runner.RunLock = NoThreadLock  # type: ignore[misc]


def _no_events() -> None:
    from gitops_tasks.app import app

    app.conf.worker_send_task_events = False
    app.conf.task_send_sent_event = False
    original = app.worker_main

    def worker_main(argv: list[str] | None = None) -> Any:
        return original([a for a in (argv or []) if a != "-E"])

    app.worker_main = worker_main  # type: ignore[method-assign]


def main() -> int:
    wanted = [c for c in os.environ.get(ENV_VAR, "").split(",") if c]
    unknown = sorted(set(wanted) - set(CHANGES))
    if unknown:
        raise SystemExit(f"{ENV_VAR}: unknown change(s) {', '.join(unknown)}; expected {', '.join(CHANGES)}")
    patches = {"no_events": _no_events, "no_renew_thread": _no_renew_thread}
    for change in wanted:
        patches[change]()
    from gitops_tasks.cli import main as cli_main

    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
