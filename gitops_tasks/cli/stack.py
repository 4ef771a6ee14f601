"""Running the parts: ``worker``, ``beat``, ``flower``, and ``up`` (all of them, supervised)."""

from __future__ import annotations

import argparse
import logging
import os
import time

from gitops_tasks.cli import common
from gitops_tasks.settings import ALL_QUEUES, Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "worker",
        help="run a Celery worker",
        epilog="examples:\n"
        "  gitops-tasks worker                          # every queue, the default pool\n"
        "  gitops-tasks worker -Q git,registry -c 16    # polls and scans only, 16 threads\n"
        "  gitops-tasks worker -Q sync -P prefork -c 2  # syncs in two processes\n"
        "  GITOPS_TASKS_WORKER_METRICS_PORT=9808 gitops-tasks worker  # /metrics, /healthz, /readyz",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-Q", "--queues", help=f"comma-separated queues (default: {','.join(ALL_QUEUES)})")
    p.add_argument("-c", "--concurrency", type=int, help="threads (or processes with -P prefork) per worker")
    p.add_argument(
        "-P", "--pool", choices=["threads", "prefork", "solo"], help="Celery pool (default: threads)"
    )
    p.add_argument("-n", "--hostname", help="worker node name (default gitops-PID@HOST)")
    p.add_argument("--loglevel", help="DEBUG, INFO (default), WARNING or ERROR")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser(
        "beat",
        help="run the scheduler (applies GITOPS_TASKS_CATALOG_PATHS first)",
        epilog="examples:\n"
        "  gitops-tasks beat\n"
        "  GITOPS_TASKS_CATALOG_PATHS=clusters/prod gitops-tasks beat --loglevel DEBUG\n"
        "  GITOPS_TASKS_BEAT_METRICS_PORT=9808 gitops-tasks beat  # /metrics, /healthz, /readyz",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--loglevel", help="DEBUG, INFO (default), WARNING or ERROR")
    p.set_defaults(func=cmd_beat)

    p = sub.add_parser(
        "flower",
        help="run the Flower monitoring UI",
        epilog="examples:\n  gitops-tasks flower\n  gitops-tasks flower --address 0.0.0.0 --port 5556",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--address", help="address to listen on (default: GITOPS_TASKS_FLOWER_ADDRESS or 127.0.0.1)"
    )
    p.add_argument("--port", type=int, help="port to listen on (default: GITOPS_TASKS_FLOWER_PORT or 5555)")
    p.set_defaults(func=cmd_flower)

    p = sub.add_parser(
        "up",
        help="run everything here: embedded Redis (if none configured), worker, beat, Flower",
        epilog="examples:\n"
        "  gitops-tasks up -f examples/git\n"
        "  GITOPS_TASKS_REDIS_URL=redis://127.0.0.1:6379/0 gitops-tasks up -f clusters/ --no-flower",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-f", "--filename", action="append", help="object files to apply at start (repeatable)")
    p.add_argument("--no-flower", action="store_true", help="start no Flower")
    p.set_defaults(func=cmd_up)


def _worker_name() -> str:
    return f"gitops-{os.getpid()}@%h"


def cmd_worker(args: argparse.Namespace) -> int:
    settings = common.settings()
    from gitops_tasks.metrics import serve

    # Before the app's import: the metrics of a prefork pool go to files (multiprocess mode).
    serve.prepare_worker(settings, pool=args.pool or settings.worker_pool)
    from gitops_tasks.app import app

    serve.start_worker_server(settings)

    queues = args.queues or ",".join(ALL_QUEUES)
    argv = [
        "worker",
        "-Q",
        queues,
        "-c",
        str(args.concurrency or settings.worker_concurrency),
        "-P",
        args.pool or settings.worker_pool,
        "-n",
        args.hostname or _worker_name(),
        "--loglevel",
        args.loglevel or settings.log_level,
    ]
    if settings.task_events:
        argv.append("-E")
    app.worker_main(_quiet_for_json(settings) + argv)
    return 0


def _quiet_for_json(settings: Settings) -> list[str]:
    """With JSON log lines, no start-up banner (plain text on stdout) among them."""
    return ["--quiet"] if settings.log_format == "json" else []


def _wait_for_redis(settings: Settings) -> None:
    """Until Redis answers (beat started during an outage waits it out, as it does once running)."""
    from beat_schedule.outage import UNREACHABLE, Outage
    from gitops_tasks.redact import redact
    from gitops_tasks.store import connect

    client, outage, where = connect(settings), Outage(), redact(settings.effective_redis_url())
    try:
        while True:
            try:
                client.ping()
            except UNREACHABLE as exc:
                time.sleep(outage.failed(exc, where=where))
                continue
            outage.recovered(where=where)
            return
    finally:
        client.close()


def cmd_beat(args: argparse.Namespace) -> int:
    from beat_schedule.startup import apply_startup_objects

    settings = common.settings()
    from gitops_tasks.app import app
    from gitops_tasks.metrics import serve

    serve.start_beat_server(settings)
    _wait_for_redis(settings)
    apply_startup_objects(settings, list(settings.catalog_paths))
    app.start(
        [
            *_quiet_for_json(settings),
            "beat",
            "-S",
            "beat_schedule.scheduler:CatalogScheduler",
            "--pidfile=",
            "-s",
            str(settings.data_dir / "beat-schedule"),
            "--loglevel",
            args.loglevel or settings.log_level,
        ]
    )
    return 0


def cmd_flower(args: argparse.Namespace) -> int:
    settings = common.settings()
    from gitops_tasks.app import app

    # Flower logs through this process's masked handler (see gitops_tasks.logsetup), not tornado's.
    logging.getLogger().setLevel(settings.log_level.upper())
    app.start(
        [
            "flower",
            f"--address={args.address or settings.flower_address}",
            f"--port={args.port or settings.flower_port}",
            "--logging=none",
        ]
    )
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from gitops_tasks.supervisor import Supervisor

    settings = common.settings()
    logging.getLogger().setLevel(settings.log_level.upper())
    supervisor = Supervisor(settings, paths=args.filename or [], flower=not args.no_flower)
    return supervisor.run()
