"""A worker's watch on the catalog's marker: a catalog that vanished is logged at ERROR.

Started in the worker's main process once it is ready (``worker_ready``), a daemon thread reads
the marker every :data:`DEFAULT_CHECK_S` (one HGETALL) and reports a lost catalog once
(``store.marker.CatalogWatch``). Redis being unreachable is left to Celery's own reconnection.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import redis
from celery.signals import worker_ready, worker_shutdown

from gitops_tasks.store import marker
from gitops_tasks.tasks.context import context

log = logging.getLogger(__name__)

#: Seconds between two reads of the catalog's marker.
DEFAULT_CHECK_S = 5.0

_stop = threading.Event()


def _watch() -> None:
    ctx = context()
    where = marker.where(ctx.settings.effective_redis_url(), ctx.keys)
    watch = marker.CatalogWatch(ctx.client, ctx.keys, where=where, log=log)
    while not _stop.is_set():
        try:
            watch.check()
        except redis.RedisError as exc:
            log.debug("catalog marker not read: %s", exc)
        _stop.wait(DEFAULT_CHECK_S)


@worker_ready.connect
def _start(**_: Any) -> None:
    _stop.clear()
    threading.Thread(target=_watch, name="catalog-watch", daemon=True).start()


@worker_shutdown.connect
def _shutdown(**_: Any) -> None:
    _stop.set()
