"""A gitops-tasks worker with candidate optimisations patched in, to measure what each would save.

Used by ``bench_poll --whatif`` only; the code under test is not changed. Each change is named
in ``GT_BENCH_WHATIF`` (comma-separated) and approximates a change proposed in BENCHMARKS.md:

- ``no_events``: no Celery task events (``-E`` dropped, ``worker_send_task_events`` off).
- ``memo_commit``: skip the ``git cat-file -e`` subprocess of an unchanged poll when this process
  already saw the commit in the mirror, or put it there (mirrors only grow, so a positive answer
  stays true as long as the cache directory is not wiped).
- ``no_renew_thread``: no renewal thread per run lock (stands in for one shared renewer thread
  per process; the polls here finish far within the lock TTL, so renewal never matters).

``python -m benchmarks.whatif_worker worker -c 8 -P threads -Q git`` (same arguments as the CLI).
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

#: Environment variable naming the changes to apply.
ENV_VAR = "GT_BENCH_WHATIF"
CHANGES = ("no_events", "memo_commit", "no_renew_thread")


def _memo_commit() -> None:
    from gitops_tasks.sources import mirror, poll

    seen: set[tuple[str, str]] = set()
    lock = threading.Lock()

    class MemoMirror(mirror.Mirror):
        def has_commit(self, sha: str, *, timeout_s: float = 10.0) -> bool:
            key = (str(self.path), sha)
            with lock:
                if key in seen:
                    return True
            found = super().has_commit(sha, timeout_s=timeout_s)
            if found:
                with lock:
                    seen.add(key)
            return found

    ensure_commit = poll.ensure_commit

    def remembering_ensure_commit(
        remote: Any, ref_name: Any, sha: str, *, cache_dir: Any, timeout_s: float
    ) -> bool:
        fetched = ensure_commit(remote, ref_name, sha, cache_dir=cache_dir, timeout_s=timeout_s)
        with lock:
            seen.add((str(mirror.mirror_path(cache_dir, remote.url)), sha))
        return fetched

    poll.Mirror = MemoMirror  # type: ignore[misc]
    poll.ensure_commit = remembering_ensure_commit  # type: ignore[assignment]


def _no_renew_thread() -> None:
    from gitops_tasks.store import locks
    from gitops_tasks.tasks import runner

    class NoThreadLock(locks.RunLock):
        def acquire(self) -> bool:
            return bool(self.client.set(self.key, self.token, nx=True, px=self.ttl_ms))

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
    patches = {"no_events": _no_events, "memo_commit": _memo_commit, "no_renew_thread": _no_renew_thread}
    for change in wanted:
        patches[change]()
    from gitops_tasks.cli import main as cli_main

    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
