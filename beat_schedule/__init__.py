"""Catalog → Celery beat: one schedule entry per object, changed while beat runs.

``entries.entry_for`` builds the metadata beat needs for an object (task, queue, interval,
timeout); ``scheduler.CatalogScheduler`` is the beat scheduler that sends due objects from the Redis
schedule. Imports ``gitops_tasks.objects``, ``gitops_tasks.store`` and Celery; does Redis I/O.
"""

from beat_schedule.entries import entry_for

__all__ = ["entry_for"]
