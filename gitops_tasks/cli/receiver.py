"""``gitops-tasks receiver``: the webhook receiver service (Flux's Receiver kind, on aiohttp)."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from gitops_tasks.cli import common

#: Flux's receiver port.
DEFAULT_PORT = 9292
#: Requests per second one Receiver path may take, and its burst (the global limiter, in Redis).
DEFAULT_PATH_RPS = 10.0
DEFAULT_PATH_BURST = 20


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from gitops_tasks.receivers.directory import DEFAULT_REFRESH_S
    from gitops_tasks.receivers.server import DEFAULT_MAX_BODY_BYTES
    from gitops_tasks.store.hookgate import DEFAULT_HOOK_WINDOW_S

    p = sub.add_parser(
        "receiver",
        help="run the webhook receiver (POST /hook/<digest>, GET /healthz, /readyz)",
        description="Serve the catalog's Receivers: verify each hook as Flux does and reconcile the "
        "objects it names now, on the priority queue.",
        epilog="examples:\n"
        "  gitops-tasks receiver                         # 127.0.0.1:9292\n"
        "  gitops-tasks receiver --address 0.0.0.0       # what the Helm chart runs\n"
        "  gitops-tasks receiver --port 9393 --rate 50 --burst 100 --window 5",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--address", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default: {DEFAULT_PORT})"
    )
    p.add_argument(
        "--rate",
        type=float,
        default=DEFAULT_PATH_RPS,
        help=f"requests per second each Receiver path may take, for every receiver process together "
        f"(default: {DEFAULT_PATH_RPS:g}); more are answered 429",
    )
    p.add_argument(
        "--burst",
        type=int,
        default=DEFAULT_PATH_BURST,
        help=f"burst of --rate (default: {DEFAULT_PATH_BURST})",
    )
    p.add_argument(
        "--window",
        type=float,
        default=DEFAULT_HOOK_WINDOW_S,
        help="seconds between two webhook-triggered reconciles of one object; hooks in between share "
        f"one trailing reconcile (default: {DEFAULT_HOOK_WINDOW_S:g})",
    )
    p.add_argument(
        "--max-body",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        help="largest request body in bytes; larger ones are answered 413 "
        f"(default: {DEFAULT_MAX_BODY_BYTES})",
    )
    p.add_argument(
        "--refresh",
        type=float,
        default=DEFAULT_REFRESH_S,
        help=f"seconds between re-reads of the catalog's Receivers (default: {DEFAULT_REFRESH_S:g}); "
        "an unknown path re-reads at once (at most once a second)",
    )
    p.add_argument("--loglevel", help="DEBUG, INFO (default), WARNING or ERROR")
    p.set_defaults(func=cmd_receiver)


def cmd_receiver(args: argparse.Namespace) -> int:
    from aiohttp import web

    settings = common.settings()
    logging.getLogger().setLevel((args.loglevel or settings.log_level).upper())
    for name, value in (("--rate", args.rate), ("--window", args.window), ("--refresh", args.refresh)):
        if not value > 0:
            raise SystemExit(f"error: {name} {value}: expected a positive number")
    if args.burst < 1 or args.max_body < 1:
        raise SystemExit("error: --burst and --max-body must be at least 1")
    service = _service(settings, args)
    log = logging.getLogger("gitops_tasks.receivers")
    try:
        count = service.directory.refresh()
    except Exception as exc:  # Redis down at start: /readyz says so until it answers
        log.warning("reading the catalog's Receivers failed: %s", type(exc).__name__)
        count = 0
    log.info("receiver on http://%s:%d with %d Receiver path(s)", args.address, args.port, count)
    app = _with_refresher(service, args.refresh)
    # shutdown_timeout: SIGTERM waits this long for requests in flight (a pod has 30 s in all).
    web.run_app(
        app,
        host=args.address,
        port=args.port,
        access_log=None,
        print=None,
        handle_signals=True,
        shutdown_timeout=5.0,
    )
    return 0


def _service(settings: Any, args: argparse.Namespace) -> Any:
    from gitops_tasks import tasknames
    from gitops_tasks.ratelimit import RedisTokenBucket
    from gitops_tasks.receivers.directory import Directory, directory_secrets
    from gitops_tasks.receivers.server import Service
    from gitops_tasks.store.hookgate import Deliveries
    from gitops_tasks.tasks.context import Context
    from gitops_tasks.tasks.hooks import HookTrigger
    from gitops_tasks.tasks.registry import cluster_secrets

    ctx = Context(settings)
    cluster = cluster_secrets(settings)
    secrets = cluster.secret if cluster is not None else directory_secrets(settings.resolved_secrets_dir)
    bucket = RedisTokenBucket(ctx.client, _PathBuckets(ctx.keys), rps=args.rate, burst=args.burst, margin=0.0)
    return Service(
        directory=Directory(ctx.catalog, ctx.status, secrets, refresh_s=args.refresh),
        objects=ctx.catalog,
        trigger=HookTrigger(ctx, window_s=args.window),
        limiter=bucket.try_acquire,
        deliveries=Deliveries(ctx.client, ctx.keys),
        ping=ctx.client.ping,
        reconcilable=frozenset(tasknames.TASK_BY_KIND),
        max_body_bytes=args.max_body,
    )


class _PathBuckets:
    """The limiter's key names for Receiver paths (it names buckets by "host")."""

    def __init__(self, keys: Any) -> None:
        self.keys = keys

    def rate_bucket(self, host: str) -> str:
        return str(self.keys.receiver_bucket(host))


def _with_refresher(service: Any, refresh_s: float) -> Any:
    """The app, with a task re-reading the Receivers every ``refresh_s`` (status stays current
    even when no hook arrives)."""
    import asyncio
    import contextlib

    from gitops_tasks.receivers.server import make_app

    app = make_app(service)
    log = logging.getLogger("gitops_tasks.receivers")

    async def refresher(app: Any) -> Any:
        async def loop() -> None:
            while True:
                await asyncio.sleep(refresh_s)
                try:
                    await asyncio.get_running_loop().run_in_executor(None, service.directory.refresh)
                except Exception as exc:
                    log.warning("reading the catalog's Receivers failed: %s", type(exc).__name__)

        task = asyncio.create_task(loop())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(refresher)
    return app
