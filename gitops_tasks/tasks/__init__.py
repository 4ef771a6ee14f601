"""Thin Celery tasks: load the object, call its concern, save status and events.

The only package that imports Celery (with ``app.py``). One module per queue.
"""

from gitops_tasks.tasks import automation, dispatch, git, registry, sync

__all__ = ["automation", "dispatch", "git", "registry", "sync"]
