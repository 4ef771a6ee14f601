"""Thin Celery tasks: load the object, call its concern, save status and events.

The only package that imports Celery (with ``app.py``). One module per queue.
"""

from gitops_tasks.tasks import dispatch, git, registry

__all__ = ["dispatch", "git", "registry"]
