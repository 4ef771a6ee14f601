"""The ``gitops-tasks`` command: declare objects, see status, trigger work, run the parts."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
import time
from datetime import UTC, datetime
from typing import Any

from gitops_tasks import __version__
from gitops_tasks.settings import ALL_QUEUES, Settings

#: Exit status of a command that finds the catalog it saw before gone (Redis lost its data).
EXIT_CATALOG_GONE = 3


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None


def _stores(settings: Settings) -> Any:
    from gitops_tasks.tasks.context import Context

    ctx = Context(settings)
    try:
        ctx.client.ping()
    except Exception as exc:
        from gitops_tasks.redact import redact

        raise SystemExit(
            f"error: cannot reach Redis at {redact(settings.effective_redis_url())}: {exc}\n"
            "Set GITOPS_TASKS_REDIS_URL, or start the stack with `gitops-tasks up`."
        ) from None
    return ctx


def _catalog_verdict(ctx: Any, settings: Settings) -> Any:
    """What the catalog's marker says against the epoch this command line saw last (remembered in
    the data dir): ``store.marker.Verdict``. The epoch found is remembered for next time."""
    from gitops_tasks.store import marker

    memory = marker.EpochMemory(settings.epoch_memory_file)
    name = marker.where(settings.effective_redis_url(), ctx.keys)
    verdict = marker.judge(memory.seen(name), marker.read(ctx.client, ctx.keys))
    if verdict.marker is not None and verdict.marker.epoch != verdict.seen:
        memory.remember(name, verdict.marker.epoch)
    return verdict


def _loss_text(ctx: Any, settings: Settings, verdict: Any) -> str:
    from gitops_tasks.store import marker

    text = marker.describe_loss(verdict, marker.where(settings.effective_redis_url(), ctx.keys))
    return (
        f"{text}.\nA running beat re-applies GITOPS_TASKS_CATALOG_PATHS when it notices; apply any other "
        "objects again with `gitops-tasks apply -f`."
    )


def _exit_if_gone(ctx: Any, settings: Settings) -> Any:
    """The catalog's verdict; exits with :data:`EXIT_CATALOG_GONE` and the likely cause when the
    catalog this command line saw is gone, warns when it was re-created since."""
    verdict = _catalog_verdict(ctx, settings)
    if verdict.state == "vanished":
        print(f"error: {_loss_text(ctx, settings, verdict)}", file=sys.stderr)
        raise SystemExit(EXIT_CATALOG_GONE)
    if verdict.state == "replaced":
        print(f"warning: {_loss_text(ctx, settings, verdict)}", file=sys.stderr)
    return verdict


def _remember_epoch(ctx: Any, settings: Settings) -> None:
    """After a write: remember the catalog's epoch (the write may have created it)."""
    _catalog_verdict(ctx, settings)


def _kind(text: str) -> str:
    from gitops_tasks.objects import kind_from_cli

    try:
        return kind_from_cli(text)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None


# ---------------------------------------------------------------- catalog commands


def cmd_apply(args: argparse.Namespace) -> int:
    from beat_schedule import entry_for
    from gitops_tasks.objects import LoadError, load_paths

    settings = _settings()
    try:
        objects = load_paths(args.filename, default_namespace=settings.default_namespace)
    except LoadError as exc:
        for error in exc.errors:
            print(f"error: {error}", file=sys.stderr)
        print(f"nothing applied: {len(exc.errors)} error(s)", file=sys.stderr)
        return 1
    ctx = _stores(settings)
    verdict = _catalog_verdict(ctx, settings)
    if verdict.lost:
        print(f"warning: {_loss_text(ctx, settings, verdict)}", file=sys.stderr)
    results = ctx.catalog.apply(
        objects, entry_for=entry_for, dry_run=args.dry_run, replaces=verdict.seen if verdict.lost else ""
    )
    _remember_epoch(ctx, settings)
    suffix = " (dry run)" if args.dry_run else ""
    for applied in results:
        print(f"{applied.ref.kind}/{applied.ref.namespace}/{applied.ref.name} {applied.action}{suffix}")
    if not results:
        print("no objects found", file=sys.stderr)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from gitops_tasks.objects.model import ObjectRef

    settings = _settings()
    ctx = _stores(settings)
    ref = ObjectRef(_kind(args.kind), args.namespace or settings.default_namespace, args.name)
    if not ctx.catalog.delete(ref):
        _exit_if_gone(ctx, settings)
        print(f"error: {ref} not found", file=sys.stderr)
        return 1
    ctx.events.emit(ref, severity="info", reason="Deleted", message=f"{ref} deleted from the catalog")
    print(f"{ref.key} deleted")
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    from gitops_tasks import cliview
    from gitops_tasks.objects.model import ObjectRef

    settings = _settings()
    ctx = _stores(settings)
    kind = _kind(args.kind)
    verdict = _exit_if_gone(ctx, settings)
    namespace = None if args.all_namespaces else (args.namespace or settings.default_namespace)
    if args.name:
        obj = ctx.catalog.get(ObjectRef(kind, namespace or settings.default_namespace, args.name))
        if obj is None:
            print(f"error: {kind} {namespace}/{args.name} not found", file=sys.stderr)
            return 1
        objects = [obj]
    else:
        objects = sorted(ctx.catalog.iter_kind(kind, namespace), key=lambda o: (o.namespace, o.name))
    refs = [o.ref for o in objects]
    items = cliview.rows(objects, ctx.status.get_many(refs), ctx.catalog.next_run(refs))
    if args.output == "table":
        text = cliview.table(items, all_namespaces=args.all_namespaces)
        print(
            text if text else f"no {kind} objects found" + ("" if args.all_namespaces else f" in {namespace}")
        )
        if not text and verdict.marker is not None and verdict.marker.replaces:
            when = datetime.fromtimestamp(verdict.marker.lost_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            print(
                f"note: this catalog was re-created at {when}, after the previous one (epoch "
                f"{verdict.marker.replaces}) was lost; objects applied before then may need applying again",
                file=sys.stderr,
            )
    else:
        print(cliview.dump(items, args.output))
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    from gitops_tasks import cliview
    from gitops_tasks.objects.model import ObjectRef

    settings = _settings()
    ctx = _stores(settings)
    ref = None
    if args.for_:
        kind, _, name = args.for_.partition("/")
        if not name:
            raise SystemExit("error: --for expects KIND/NAME, e.g. --for GitRepository/podinfo")
        ref = ObjectRef(_kind(kind), args.namespace or settings.default_namespace, name)
    for event in ctx.events.recent(count=args.limit, ref=ref):
        print(cliview.event_line(event), flush=True)
    if args.follow:
        try:
            for event in ctx.events.follow(ref=ref):
                print(cliview.event_line(event), flush=True)
        except KeyboardInterrupt:
            return 0
    return 0


# ---------------------------------------------------------------- triggering work


def cmd_reconcile(args: argparse.Namespace) -> int:
    from gitops_tasks import tasknames
    from gitops_tasks.app import app
    from gitops_tasks.objects import parse_duration
    from gitops_tasks.objects.model import ObjectRef
    from gitops_tasks.store.summary import condition
    from gitops_tasks.tasks.enqueue import enqueue

    settings = _settings()
    ctx = _stores(settings)
    ref = ObjectRef(_kind(args.kind), args.namespace or settings.default_namespace, args.name)
    obj = ctx.catalog.get(ref)
    if obj is None:
        _exit_if_gone(ctx, settings)
        print(f"✗ {ref} not found", file=sys.stderr)
        return 1
    if obj.suspended:
        print(f"✗ {ref} is suspended; run `gitops-tasks resume` first", file=sys.stderr)
        return 1
    if ref.kind not in tasknames.TASK_BY_KIND:
        print(f"✗ {ref.kind} has no reconciler in this version", file=sys.stderr)
        return 1
    try:
        timeout_s = parse_duration(args.timeout)
    except ValueError as exc:
        raise SystemExit(f"error: --timeout: {exc}") from None
    token = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") + "-" + secrets.token_hex(3)
    ctx.status.request(ref, token)
    enqueue(app, ctx.guard, ctx.keys, ref, reason="manual", queue="priority", force=True)
    print(f"► requested reconcile of {ref} ({token})", flush=True)
    if not args.wait:
        return 0
    print(f"◎ waiting for {ref} to be reconciled", flush=True)
    deadline = time.monotonic() + timeout_s
    shown = ""
    while time.monotonic() < deadline:
        status = ctx.status.get(ref)
        reconciling = (condition(status, "Reconciling") or {}).get("status") == "True"
        if reconciling and shown != "running":
            print("◎ reconciling…", flush=True)
            shown = "running"
        if status.get("lastHandledReconcileAt") == token and not reconciling:
            ready = condition(status, "Ready") or {}
            if ready.get("status") == "True":
                print(f"✔ {ref} reconciled: {ready.get('message', '')}")
                return 0
            print(f"✗ {ref}: {ready.get('reason', 'Failed')}: {ready.get('message', '')}", file=sys.stderr)
            return 1
        time.sleep(0.2)
    print(f"✗ timed out after {args.timeout} waiting for {ref} (is a worker running?)", file=sys.stderr)
    return 1


def _set_suspended(args: argparse.Namespace, suspended: bool) -> int:
    from beat_schedule import entry_for
    from gitops_tasks.objects.model import ObjectRef

    settings = _settings()
    ctx = _stores(settings)
    ref = ObjectRef(_kind(args.kind), args.namespace or settings.default_namespace, args.name)
    try:
        ctx.catalog.set_suspended(ref, suspended, entry_for=entry_for)
    except KeyError:
        _exit_if_gone(ctx, settings)
        print(f"✗ {ref} not found", file=sys.stderr)
        return 1
    verb = "suspended" if suspended else "resumed"
    ctx.events.emit(ref, severity="info", reason=verb.capitalize(), message=f"{ref} {verb}")
    print(f"✔ {ref} {verb}")
    return 0


# ---------------------------------------------------------------- running the parts


def _worker_name() -> str:
    return f"gitops-{os.getpid()}@%h"


def cmd_worker(args: argparse.Namespace) -> int:
    settings = _settings()
    from gitops_tasks.app import app

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
    app.worker_main(argv)
    return 0


def apply_startup_objects(settings: Settings, paths: list[str]) -> None:
    """Apply the start-up object files (all or nothing); exits with the errors if any is bad.

    A catalog this data dir saw before and that is gone now is reported, and re-created.
    """
    from beat_schedule.startup import apply_startup_paths
    from gitops_tasks.objects import LoadError

    if not paths:
        return
    ctx = _stores(settings)
    verdict = _catalog_verdict(ctx, settings)
    if verdict.lost:
        print(f"error: {_loss_text(ctx, settings, verdict)}", file=sys.stderr, flush=True)
    try:
        results = apply_startup_paths(
            ctx.catalog, settings, paths, created_by="start-up", replaces=verdict.seen if verdict.lost else ""
        )
    except LoadError as exc:
        raise SystemExit("error: start-up objects are invalid:\n" + "\n".join(exc.errors)) from None
    _remember_epoch(ctx, settings)
    print(f"applied {len(results)} object(s) from {', '.join(paths)}", flush=True)


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
    settings = _settings()
    from gitops_tasks.app import app

    _wait_for_redis(settings)
    apply_startup_objects(settings, list(settings.catalog_paths))
    app.start(
        [
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
    settings = _settings()
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

    settings = _settings()
    logging.getLogger().setLevel(settings.log_level.upper())
    supervisor = Supervisor(settings, paths=args.filename or [], flower=not args.no_flower)
    return supervisor.run()


def cmd_version(_args: argparse.Namespace) -> int:
    print(f"gitops-tasks {__version__}")
    return 0


# ---------------------------------------------------------------- argument parsing


def _object_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", help="GitRepository, ImageRepository, ImagePolicy, Kustomization, …")
    parser.add_argument("name")
    parser.add_argument("-n", "--namespace", help="namespace (default: default)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gitops-tasks", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("apply", help="validate object YAML and store it in the catalog (all or nothing)")
    p.add_argument("-f", "--filename", action="append", required=True, help="file or directory (repeatable)")
    p.add_argument(
        "--dry-run", action="store_true", help="validate and show what would change; store nothing"
    )
    p.set_defaults(func=cmd_apply)

    p = sub.add_parser("delete", help="remove one object from the catalog")
    _object_args(p)
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("get", help="show objects with their status")
    p.add_argument("kind")
    p.add_argument("name", nargs="?")
    p.add_argument("-n", "--namespace")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("-o", "--output", choices=["table", "json", "yaml"], default="table")
    p.set_defaults(func=cmd_get)

    p = sub.add_parser("events", help="print events (newest last)")
    p.add_argument("--for", dest="for_", metavar="KIND/NAME", help="only this object's events")
    p.add_argument("-n", "--namespace")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=cmd_events)

    p = sub.add_parser("reconcile", help="reconcile an object now (priority queue)")
    _object_args(p)
    p.add_argument("--wait", action="store_true", help="wait for the result; exit 1 if it fails")
    p.add_argument("--timeout", default="60s", help="how long --wait waits (Go duration, default 60s)")
    p.set_defaults(func=cmd_reconcile)

    for name, flag in (("suspend", True), ("resume", False)):
        p = sub.add_parser(name, help=f"{name} reconciliation of an object")
        _object_args(p)
        p.set_defaults(func=lambda a, flag=flag: _set_suspended(a, flag))

    p = sub.add_parser("worker", help="run a Celery worker")
    p.add_argument("-Q", "--queues", help=f"comma-separated queues (default: {','.join(ALL_QUEUES)})")
    p.add_argument("-c", "--concurrency", type=int)
    p.add_argument("-P", "--pool", choices=["threads", "prefork", "solo"])
    p.add_argument("-n", "--hostname", help="worker node name (default gitops-PID@HOST)")
    p.add_argument("--loglevel")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("beat", help="run the scheduler (applies GITOPS_TASKS_CATALOG_PATHS first)")
    p.add_argument("--loglevel")
    p.set_defaults(func=cmd_beat)

    p = sub.add_parser("flower", help="run the Flower monitoring UI")
    p.add_argument("--address")
    p.add_argument("--port", type=int)
    p.set_defaults(func=cmd_flower)

    p = sub.add_parser(
        "up", help="run everything here: embedded Redis (if none configured), worker, beat, Flower"
    )
    p.add_argument("-f", "--filename", action="append", help="object files to apply at start (repeatable)")
    p.add_argument("--no-flower", action="store_true")
    p.set_defaults(func=cmd_up)

    from gitops_tasks import cli_policy

    cli_policy.register(sub)

    from gitops_tasks import cli_automation

    cli_automation.register(sub)

    from gitops_tasks import cli_sync

    cli_sync.register(sub)

    p = sub.add_parser("version", help="print the version")
    p.set_defaults(func=cmd_version)
    return parser


def main(argv: list[str] | None = None) -> int:
    from gitops_tasks import logsetup

    logsetup.configure()
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
