"""Thin Celery tasks: load the object, call its concern, save status and events.

The only package that imports Celery (with ``app.py``). One module per queue.
"""

from gitops_tasks.tasks import automation, catalogwatch, dispatch, git, notify, registry, sync, workers

__all__ = ["automation", "catalogwatch", "dispatch", "git", "notify", "registry", "sync", "workers"]
