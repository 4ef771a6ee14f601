"""The branch lock: one writer per ``(url, branch)`` at a time, across all workers (DESIGN §4).

:func:`redis_branch_lock` builds the lock the workers share: a :class:`~gitops_tasks.store.RunLock`
on ``Keys.branch_lock(url, branch)`` (renewed while held, expiring if the holder dies), waited for
up to ``wait_s`` since a push takes seconds. :func:`process_branch_lock` is the in-process
equivalent for the CLI and tests without Redis. Both raise
:class:`~gitops_tasks.sources.GitError` ``BranchLocked`` (waiting) when the wait runs out.

I/O: Redis (the Redis lock only).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import redis

from gitops_tasks.settings import DEFAULT_RUN_LOCK_TTL_S
from gitops_tasks.sources import GitError, mask_url
from gitops_tasks.store.keys import Keys
from gitops_tasks.store.locks import RunLock

#: How long a writer waits for another one on the same branch (seconds).
DEFAULT_BRANCH_LOCK_WAIT_S = 30.0
#: Lifetime of the branch lock; renewed every third of it while held. As the run lock's
#: (``GITOPS_TASKS_RUN_LOCK_TTL_S``; workers pass theirs), so a branch whose writer died is free
#: again by the time its automation is sent again.
DEFAULT_BRANCH_LOCK_TTL_S = float(DEFAULT_RUN_LOCK_TTL_S)
#: Seconds between attempts to take a busy lock.
LOCK_POLL_S = 0.05

BranchLock = Callable[[str, str], AbstractContextManager[object]]


def _busy(url: str, branch: str, wait_s: float, holder: str | None = None) -> GitError:
    who = f" (held by {holder})" if holder else ""
    return GitError(
        "BranchLocked",
        f"branch '{branch}' of {mask_url(url)} is being written by another automation{who}; "
        f"waited {wait_s:g}s",
        waiting=True,
    )


def redis_branch_lock(
    client: redis.Redis,
    keys: Keys,
    *,
    owner: str = "",
    ttl_s: float = DEFAULT_BRANCH_LOCK_TTL_S,
    wait_s: float = DEFAULT_BRANCH_LOCK_WAIT_S,
) -> BranchLock:
    """A :data:`BranchLock` shared by every process using ``client``'s Redis and ``keys``' prefix."""

    @contextmanager
    def hold(url: str, branch: str) -> Iterator[RunLock]:
        lock = RunLock(client, keys.branch_lock(url, branch), ttl_s=ttl_s, owner=owner)
        deadline = time.monotonic() + wait_s
        while not lock.acquire():
            if time.monotonic() >= deadline:
                raise _busy(url, branch, wait_s, lock.holder())
            time.sleep(LOCK_POLL_S)
        try:
            yield lock
        finally:
            lock.release()

    return hold


def process_branch_lock(*, wait_s: float = DEFAULT_BRANCH_LOCK_WAIT_S) -> BranchLock:
    """A :data:`BranchLock` that only serialises the threads of this process."""
    guard = threading.Lock()
    locks: dict[tuple[str, str], threading.Lock] = {}

    @contextmanager
    def hold(url: str, branch: str) -> Iterator[None]:
        with guard:
            lock = locks.setdefault((url, branch), threading.Lock())
        if not lock.acquire(timeout=wait_s):
            raise _busy(url, branch, wait_s)
        try:
            yield None
        finally:
            lock.release()

    return hold
