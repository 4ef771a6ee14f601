"""Redis state: the catalog of declared objects, status, events, locks and the schedule.

May import ``objects/`` and the ``redis`` client; does network I/O to Redis. Every key name comes
from :mod:`gitops_tasks.store.keys`. Nothing here knows about Celery.
"""

from gitops_tasks.store.catalog import Catalog
from gitops_tasks.store.client import connect
from gitops_tasks.store.events import EventLog
from gitops_tasks.store.keys import Keys
from gitops_tasks.store.locks import EnqueueGuard, RunLock
from gitops_tasks.store.status import StatusStore

__all__ = ["Catalog", "EnqueueGuard", "EventLog", "Keys", "RunLock", "StatusStore", "connect"]
