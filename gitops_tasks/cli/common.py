"""What every command group shares: settings, the Redis stores, the catalog's verdict, kinds.

Errors the user must fix leave through ``SystemExit`` with a message (exit status 1).
"""

from __future__ import annotations

import sys
from typing import Any

from gitops_tasks.settings import Settings

#: Exit status of a command that finds the catalog it saw before gone (Redis lost its data).
EXIT_CATALOG_GONE = 3


def settings() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None


def stores(settings: Settings) -> Any:
    """The stores (``tasks.context.Context``) on a Redis that answers; exits with advice otherwise."""
    from gitops_tasks.store.client import unreachable
    from gitops_tasks.tasks.context import Context

    ctx = Context(settings)
    try:
        ctx.client.ping()
    except Exception as exc:
        raise SystemExit(unreachable(settings.effective_redis_url(), exc)) from None
    return ctx


def catalog_verdict(ctx: Any, settings: Settings) -> Any:
    """What the catalog's marker says against the epoch this command line saw last:
    ``store.marker.Verdict`` (the epoch found is remembered for next time)."""
    from gitops_tasks.store import marker

    return marker.seen_by_command_line(
        ctx.client, ctx.keys, url=settings.effective_redis_url(), memory_file=settings.epoch_memory_file
    )


def loss_text(ctx: Any, settings: Settings, verdict: Any) -> str:
    from gitops_tasks.store import marker

    return marker.loss_advice(verdict, url=settings.effective_redis_url(), keys=ctx.keys)


def exit_if_gone(ctx: Any, settings: Settings) -> Any:
    """The catalog's verdict; exits with :data:`EXIT_CATALOG_GONE` and the likely cause when the
    catalog this command line saw is gone, warns when it was re-created since."""
    verdict = catalog_verdict(ctx, settings)
    if verdict.state == "vanished":
        print(f"error: {loss_text(ctx, settings, verdict)}", file=sys.stderr)
        raise SystemExit(EXIT_CATALOG_GONE)
    if verdict.state == "replaced":
        print(f"warning: {loss_text(ctx, settings, verdict)}", file=sys.stderr)
    return verdict


def remember_epoch(ctx: Any, settings: Settings) -> None:
    """After a write: remember the catalog's epoch (the write may have created it)."""
    catalog_verdict(ctx, settings)


def kind(text: str) -> str:
    """The kind a user typed (``gitrepository``, ``gitrepo``, ``ks``…) as its canonical name."""
    from gitops_tasks.objects import kind_from_cli

    try:
        return kind_from_cli(text)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None


def fail(message: str, code: int = 1) -> int:
    """Print ``error: message`` on stderr; return ``code`` (the command's exit status)."""
    print(f"error: {message}", file=sys.stderr)
    return code
