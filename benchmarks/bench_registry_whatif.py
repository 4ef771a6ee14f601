"""A gitops-tasks worker with candidate changes patched in, to measure what each would save on
registry scans. Used by ``bench_registry`` only; the code under test is not changed.

Changes, named in ``GT_BENCH_REGISTRY_WHATIF`` (comma-separated):

- ``no_renew_thread``: run locks are not kept alive at all (scans here end far within the lock
  TTL). Since 6beec88 the worker has one renewer thread per process instead of one per run, so
  this now measures only the registration with that renewer.
- ``no_events``: no Celery task events (``worker_send_task_events`` and the sent event off, no
  ``-E``); the same as ``GITOPS_TASKS_TASK_EVENTS=false`` since e5cac9b.
- ``record_grants``: changes nothing; appends the Redis time of every token the rate limiter grants
  to the list ``<bucket key>:bench-grants``, so the limit can be checked where it is enforced as
  well as where requests arrive (one RPUSH per granted token, between the grant and the request).

``python -m benchmarks.bench_registry_whatif worker -c 4 -P threads -Q registry`` (the CLI's arguments).
"""

from __future__ import annotations

import os
import sys
from typing import Any

#: Environment variable naming the changes to apply.
ENV_VAR = "GT_BENCH_REGISTRY_WHATIF"
CHANGES = ("no_renew_thread", "no_events", "record_grants")
#: Suffix of the list of grant times (after the host's bucket key).
GRANTS_SUFFIX = ":bench-grants"


def _no_renew_thread() -> None:
    from gitops_tasks.store import locks
    from gitops_tasks.tasks import runner

    class NoThreadLock(locks.RunLock):
        def keep_alive(self) -> None:
            return None

        def stop_renewing(self) -> None:
            return None

    runner.RunLock = NoThreadLock  # type: ignore[misc]


def _record_grants() -> None:
    from gitops_tasks.ratelimit import redis_bucket

    original = redis_bucket.RedisTokenBucket._apply

    def _apply(self: Any, op: Any, host: str, *, now: float | None, **kwargs: Any) -> Any:
        outcome = original(self, op, host, now=now, **kwargs)
        if op in ("take", "reserve") and outcome.taken:
            # The slot's time on Redis's clock: now for a free token, later for a reservation.
            slot = outcome.now + outcome.wait_s
            self.client.rpush(self.keys.rate_bucket(host) + GRANTS_SUFFIX, repr(slot))
        return outcome

    redis_bucket.RedisTokenBucket._apply = _apply  # type: ignore[method-assign]


def _no_events() -> None:
    from gitops_tasks.app import app

    app.conf.worker_send_task_events = False
    app.conf.task_send_sent_event = False
    original = app.worker_main

    def worker_main(argv: list[str] | None = None) -> Any:
        return original([a for a in (argv or []) if a != "-E"])

    app.worker_main = worker_main


def main() -> int:
    wanted = [c for c in os.environ.get(ENV_VAR, "").split(",") if c]
    unknown = sorted(set(wanted) - set(CHANGES))
    if unknown:
        raise SystemExit(f"{ENV_VAR}: unknown change(s) {', '.join(unknown)}; expected {', '.join(CHANGES)}")
    patches = {
        "no_renew_thread": _no_renew_thread,
        "no_events": _no_events,
        "record_grants": _record_grants,
    }
    for change in wanted:
        patches[change]()
    from gitops_tasks.cli import main as cli_main

    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
