"""The start-up objects (``GITOPS_TASKS_CATALOG_PATHS`` and the files given to ``up -f``).

Applied when beat (or ``up``) starts, and again by beat when it finds the catalog lost, so a Redis
that lost its data gets back every object the start-up paths declare.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from beat_schedule.entries import entry_for
from gitops_tasks.objects import LoadError, load_paths
from gitops_tasks.settings import Settings
from gitops_tasks.store import Catalog, Keys, connect, marker
from gitops_tasks.store.catalog import Applied
from gitops_tasks.store.client import unreachable


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


def apply_startup_objects(settings: Settings, paths: list[str]) -> None:
    """Apply the start-up object files as ``beat`` and ``up`` start (all or nothing), saying so on
    stdout; exits with the errors if any is bad, or if Redis does not answer.

    A catalog this data dir saw before and that is gone now is reported on stderr, and re-created.
    """
    if not paths:
        return
    url = settings.effective_redis_url()
    client, keys = connect(settings), Keys(settings.key_prefix)
    try:
        try:
            client.ping()
        except Exception as exc:
            raise SystemExit(unreachable(url, exc)) from None
        memory_file = settings.epoch_memory_file
        verdict = marker.seen_by_command_line(client, keys, url=url, memory_file=memory_file)
        if verdict.lost:
            print(f"error: {marker.loss_advice(verdict, url=url, keys=keys)}", file=sys.stderr, flush=True)
        try:
            results = apply_startup_paths(
                Catalog(client, keys),
                settings,
                paths,
                created_by="start-up",
                replaces=verdict.seen if verdict.lost and verdict.seen else "",
            )
        except LoadError as exc:
            raise SystemExit("error: start-up objects are invalid:\n" + "\n".join(exc.errors)) from None
        marker.seen_by_command_line(client, keys, url=url, memory_file=memory_file)
    finally:
        client.close()
    print(f"applied {len(results)} object(s) from {', '.join(paths)}", flush=True)
