"""Triggering work: ``reconcile`` (now, on the priority queue), ``suspend``, ``resume``."""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from datetime import UTC, datetime

from gitops_tasks.cli import common
from gitops_tasks.cli.objects import object_args


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("reconcile", help="reconcile an object now (priority queue)")
    object_args(p)
    p.add_argument("--wait", action="store_true", help="wait for the result; exit 1 if it fails")
    p.add_argument("--timeout", default="60s", help="how long --wait waits (Go duration, default 60s)")
    p.set_defaults(func=cmd_reconcile)

    for name, flag in (("suspend", True), ("resume", False)):
        p = sub.add_parser(name, help=f"{name} reconciliation of an object")
        object_args(p)
        p.set_defaults(func=lambda a, flag=flag: set_suspended(a, flag))


def cmd_reconcile(args: argparse.Namespace) -> int:
    from gitops_tasks import tasknames
    from gitops_tasks.app import app
    from gitops_tasks.objects import parse_duration
    from gitops_tasks.objects.model import ObjectRef
    from gitops_tasks.store.summary import condition
    from gitops_tasks.tasks.enqueue import enqueue

    settings = common.settings()
    ctx = common.stores(settings)
    ref = ObjectRef(common.kind(args.kind), args.namespace or settings.default_namespace, args.name)
    obj = ctx.catalog.get(ref)
    if obj is None:
        common.exit_if_gone(ctx, settings)
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


def set_suspended(args: argparse.Namespace, suspended: bool) -> int:
    from beat_schedule import entry_for
    from gitops_tasks.objects.model import ObjectRef

    settings = common.settings()
    ctx = common.stores(settings)
    ref = ObjectRef(common.kind(args.kind), args.namespace or settings.default_namespace, args.name)
    try:
        ctx.catalog.set_suspended(ref, suspended, entry_for=entry_for)
    except KeyError:
        common.exit_if_gone(ctx, settings)
        print(f"✗ {ref} not found", file=sys.stderr)
        return 1
    verb = "suspended" if suspended else "resumed"
    ctx.events.emit(ref, severity="info", reason=verb.capitalize(), message=f"{ref} {verb}")
    print(f"✔ {ref} {verb}")
    return 0
