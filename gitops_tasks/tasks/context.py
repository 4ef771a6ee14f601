"""Per-process handles (settings, Redis, stores) shared by every task in a worker."""

from __future__ import annotations

import copy
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import redis
from celery import Celery

from gitops_tasks.settings import Settings
from gitops_tasks.store import Catalog, EnqueueGuard, EventLog, Keys, StatusStore, connect


def _no_lock() -> None:
    """``ensure_held`` outside a run: there is no run lock to lose."""


@dataclass
class Context:
    settings: Settings
    #: Raises :class:`~gitops_tasks.objects.outcome.LockLost` when the run lock of the reconcile
    #: this context serves is lost; reconcilers call it before each side effect (a push, an
    #: apply, a prune). The process-wide context has no run lock; see :meth:`for_run`.
    ensure_held: Callable[[], None] = field(default=_no_lock, compare=False)
    #: Queue a notify dispatch after each event (workers; the command line leaves it to their tick).
    notify_on_emit: bool = False

    def for_run(self, ensure_held: Callable[[], None]) -> Context:
        """This context (same Redis client and stores) for one run guarded by ``ensure_held``."""
        # Built here, before the copy, so every run's copy shares them.
        _ = (self.client, self.catalog, self.status, self.events, self.guard)
        run = copy.copy(self)
        run.ensure_held = ensure_held
        return run

    @cached_property
    def client(self) -> redis.Redis:
        return connect(self.settings)

    @cached_property
    def keys(self) -> Keys:
        return Keys(self.settings.key_prefix)

    @cached_property
    def catalog(self) -> Catalog:
        return Catalog(self.client, self.keys)

    @cached_property
    def status(self) -> StatusStore:
        return StatusStore(self.client, self.keys)

    @cached_property
    def events(self) -> EventLog:
        return EventLog(
            self.client,
            self.keys,
            maxlen=self.settings.events_maxlen,
            inbox_maxlen=self.settings.notify_inbox_maxlen,
            on_emit=self._kick_notify if self.notify_on_emit else None,
        )

    def _kick_notify(self) -> None:
        from gitops_tasks.tasks.notify import kick

        kick(self)

    @cached_property
    def guard(self) -> EnqueueGuard:
        return EnqueueGuard(self.client, self.keys, ttl_s=self.settings.enqueue_guard_ttl_s)

    @cached_property
    def app(self) -> Celery:
        """The Celery app publishing with these settings (the worker's own app inside a worker)."""
        from celery import current_app

        if getattr(current_app.conf, "gitops_settings", None) == self.settings:
            return current_app
        from gitops_tasks.app import make_app

        return make_app(self.settings, set_as_current=False)

    @property
    def owner(self) -> str:
        return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


_lock = threading.Lock()
_context: Context | None = None
_pid = 0


def context() -> Context:
    """The process-wide :class:`Context` (rebuilt after a fork, since sockets do not survive it)."""
    global _context, _pid
    with _lock:
        if _context is None or _pid != os.getpid():
            from celery import current_app

            settings = getattr(current_app.conf, "gitops_settings", None) or Settings.from_env()
            _context = Context(settings, notify_on_emit=True)
            _pid = os.getpid()
        return _context
