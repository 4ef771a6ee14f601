"""One dispatch run: route the inbox, then send every lane that is due, several at once.

Nothing here waits for a message to arrive: the state is in Redis (inbox, outbox, due times), so
a run that dies, a dispatch task the broker lost, or a worker killed mid-send only delays
delivery until the next run (every worker's tick starts one when something is due).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from gitops_tasks.notify.deliver import Deliverer
from gitops_tasks.notify.route import Router

#: How long a claimed lane stays with its sender: a sender killed mid-send has its lane sent again
#: this long after the claim (at-least-once). Provider timeouts are capped below it.
DEFAULT_LEASE_S = 60.0
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
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="notify") as pool:
        while time.monotonic() < deadline:
            counts["routed"] += router.route_all(budget_s=max(0.1, deadline - time.monotonic()))
            # No more lanes than can be sent at once: a claimed lane waiting in the pool would use up
            # its lease and could be claimed (and sent) a second time.
            lanes = deliverer.outbox.claim(now=clock(), lease_s=lease_s, limit=max(1, concurrency))
            if not lanes:
                if router.outbox.inbox_waiting():
                    continue
                break
            counts.update(pool.map(deliverer.deliver_lane, lanes))
    return dict(counts)
