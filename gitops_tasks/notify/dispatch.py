"""One dispatch run: route the inbox, then send every lane that is due, several at once.

Nothing here waits for a message to arrive: the state is in Redis (inbox, outbox, due times), so
a run that dies, a dispatch task the broker lost, or a worker killed mid-send only delays
delivery until the next run (every worker's tick starts one when something is due).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from gitops_tasks.notify.deliver import Deliverer
from gitops_tasks.notify.route import Router

#: How long a claimed lane stays with its sender: a sender killed mid-send has its lane sent again
#: this long after the claim (at-least-once). Provider timeouts are capped below it.
DEFAULT_LEASE_S = 60.0
#: How often a run with every thread busy looks for new events and lanes come due.
DEFAULT_POLL_S = 0.2
#: Longest stretch of routing between two rounds of sends.
DEFAULT_ROUTE_SLICE_S = 0.25
#: How long one dispatch run may go on before it hands over to the next.
DEFAULT_BUDGET_S = 20.0


def run_once(
    router: Router,
    deliverer: Deliverer,
    *,
    concurrency: int,
    budget_s: float = DEFAULT_BUDGET_S,
    lease_s: float = DEFAULT_LEASE_S,
    clock: Callable[[], float] = time.time,
) -> dict[str, int]:
    """Route, then deliver what is due until nothing is (or ``budget_s`` passed). Returns counts
    per outcome (``routed``, ``delivered``, ``retry``, ``wait``, ``failed``, ``skipped``)."""
    counts: Counter[str] = Counter()
    deadline = time.monotonic() + budget_s
    width = max(1, concurrency)
    in_flight: set[Future[str]] = set()
    with ThreadPoolExecutor(max_workers=width, thread_name_prefix="notify") as pool:
        while time.monotonic() < deadline:
            if router.outbox.inbox_waiting():
                # In slices, so that a burst of events does not hold back the sends.
                counts["routed"] += router.route_all(budget_s=DEFAULT_ROUTE_SLICE_S)
            # No more lanes than can be sent at once: a claimed lane waiting for a thread would use
            # up its lease and could be claimed (and sent) a second time.
            free = width - len(in_flight)
            lanes = deliverer.outbox.claim(now=clock(), lease_s=lease_s, limit=free) if free else []
            in_flight.update(pool.submit(deliverer.deliver_lane, lane) for lane in lanes)
            if not in_flight:
                if router.outbox.inbox_waiting():
                    time.sleep(DEFAULT_POLL_S / 4)  # routed in slices, or by another process now
                    continue
                break
            done, in_flight = wait(in_flight, timeout=DEFAULT_POLL_S, return_when=FIRST_COMPLETED)
            counts.update(f.result() for f in done)
        done, _ = wait(in_flight)
        counts.update(f.result() for f in done)
    return dict(counts)
