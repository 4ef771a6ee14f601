"""The start-up objects (``GITOPS_TASKS_CATALOG_PATHS`` and the files given to ``up -f``).

Applied when beat (or ``up``) starts, and again by beat when it finds the catalog lost, so a Redis
that lost its data gets back every object the start-up paths declare.
"""

from __future__ import annotations

from collections.abc import Sequence

from beat_schedule.entries import entry_for
from gitops_tasks.objects import load_paths
from gitops_tasks.settings import Settings
from gitops_tasks.store import Catalog
from gitops_tasks.store.catalog import Applied


def apply_startup_paths(
    catalog: Catalog,
    settings: Settings,
    paths: Sequence[str] | None = None,
    *,
    created_by: str,
    replaces: str = "",
) -> list[Applied]:
    """Load ``paths`` (default: the configured start-up paths) and apply them all or nothing.

    Raises ``objects.LoadError`` with every error when a document is invalid (nothing applied).
    """
    paths = list(settings.catalog_paths if paths is None else paths)
    if not paths:
        return []
    objects = load_paths(paths, default_namespace=settings.default_namespace)
    return catalog.apply(objects, entry_for=entry_for, created_by=created_by, replaces=replaces)
