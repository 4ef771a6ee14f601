"""Kombu's Redis transport with one client object per channel instead of one per command.

Kombu's Redis channel builds a new ``redis.Redis`` object (``Channel._create_client``) for every
publish, acknowledgement and event it sends. The object is a thin wrapper around the channel's
connection pool, but building one fills a table of about 170 response callbacks: measured here,
a third of the CPU of ``send_task`` and a comparable share of a worker's per-task overhead. The
synchronous client holds no connection of its own (every command checks one out of the pool), so
one per channel, rebuilt when the channel replaces its pool, serves every caller, from any thread,
as the fresh ones did. The asynchronous client (the one that waits in BRPOP) is left as kombu makes
it. :func:`register` makes ``redis://`` broker URLs select this transport (``rediss://`` keeps
kombu's), and :func:`gitops_tasks.app.make_app` calls it.

``GITOPS_TASKS_KEY_PREFIX`` reaches kombu as the ``global_keyprefix`` transport option: every key
the channel writes (queues, ``_kombu.binding.*``, the unacked hash and index, fanout channels of
events and ``celery inspect``) starts with it. This class changes only how clients are built, so
kombu's prefixing clients are what it caches.
"""

from __future__ import annotations

from typing import Any

import redis
from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis

#: What the ``redis`` transport alias names once :func:`register` ran.
TRANSPORT = "gitops_tasks.broker:Transport"


class Channel(kombu_redis.Channel):
    _gt_client: tuple[Any, Any] | None = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:
            return super()._create_client(asynchronous=True)
        pool = self.pool
        cached = self._gt_client
        if cached is None or cached[0] is not pool:
            cached = (pool, super()._create_client())
            self._gt_client = cached
        return cached[1]

    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection.client is None:
            # The connection was closed under this channel (Redis went away). Closing the channel
            # then restores its unacknowledged messages through a new pool, and building one here
            # would fail with an AttributeError that Celery's worker treats as unrecoverable: it
            # exited instead of reconnecting. As a connection error it is ignored like the others
            # (the messages come back through the visibility timeout) and the worker reconnects.
            raise redis.ConnectionError("the broker connection is closed")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel


def register() -> None:
    """Make ``redis://`` URLs resolve to :class:`Transport` in this process (idempotent).

    An alias rather than Celery's ``broker_transport`` setting, so a connection's URI stays
    ``redis://…``: Flower chooses its broker client (the queue lengths of its Broker tab) by that
    scheme and answers "'redis' broker is not supported" for any other.
    """
    TRANSPORT_ALIASES["redis"] = TRANSPORT
