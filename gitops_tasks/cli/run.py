"""Triggering work: ``reconcile`` (now, on the priority queue), ``suspend``, ``resume``."""

from __future__ import annotations

import argparse
import itertools
import secrets
import sys
import time
from datetime import UTC, datetime
from typing import Any

from gitops_tasks.cli import common
from gitops_tasks.cli.objects import object_args

_RECONCILE_EXAMPLES = """\
examples:
  # poll a GitRepository now
  gitops-tasks reconcile gitrepository podinfo
  # fetch the Kustomization's GitRepository first, then apply it, and wait for both
  gitops-tasks reconcile kustomization apps --with-source --wait
  # in another namespace, waiting at most two minutes
  gitops-tasks reconcile ks apps -n team-a --wait --timeout 2m
"""

_SUSPEND_EXAMPLES = """\
examples:
  # {verb} one Kustomization
  gitops-tasks {verb} kustomization apps
  # {verb} every GitRepository of namespace team-a
  gitops-tasks {verb} gitrepository --all -n team-a
  # {verb} every Kustomization of every namespace
  gitops-tasks {verb} kustomization --all -A
"""

#: Spinner frames drawn on a terminal while ``--wait`` waits.
_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "reconcile",
        help="reconcile an object now (priority queue)",
        description="Ask a worker to reconcile one object now, on the priority queue.",
        epilog=_RECONCILE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    object_args(p)
    p.add_argument("--wait", action="store_true", help="wait for the result; exit 1 if it fails")
    p.add_argument(
        "--timeout",
        default="60s",
        help="how long --wait (and --with-source, for both runs) waits (Go duration, default 60s)",
    )
    p.add_argument(
        "--with-source",
        action="store_true",
        help="reconcile the object's source first (a Kustomization's or ImageUpdateAutomation's "
        "sourceRef) and wait for its run to finish",
    )
    p.set_defaults(func=cmd_reconcile)

    for name, flag in (("suspend", True), ("resume", False)):
        verb = "stop" if flag else "restart"
        p = sub.add_parser(
            name,
            help=f"{name} reconciliation of an object, or of every object of a kind with --all",
            description=f"{verb.capitalize()} the scheduled reconciliation of catalog objects."
            + ("" if flag else " A resumed object is due at once."),
            epilog=_SUSPEND_EXAMPLES.format(verb=name),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument("kind", help="GitRepository, ImageRepository, ImagePolicy, Kustomization, …")
        p.add_argument("name", nargs="?", help="the object's name (omit with --all)")
        p.add_argument("-n", "--namespace", help="namespace (default: default)")
        p.add_argument("--all", action="store_true", help=f"{name} every object of KIND in the namespace")
        p.add_argument(
            "-A", "--all-namespaces", action="store_true", help=f"with --all: {name} them in every namespace"
        )
        p.set_defaults(func=lambda a, flag=flag: set_suspended(a, flag))


def cmd_reconcile(args: argparse.Namespace) -> int:
    from gitops_tasks import tasknames
    from gitops_tasks.objects import parse_duration
    from gitops_tasks.objects.kinds import source_ref
    from gitops_tasks.objects.model import ObjectRef

    settings = common.settings()
    ctx = common.stores(settings)
    ref = ObjectRef(common.kind(args.kind), args.namespace or settings.default_namespace, args.name)
    try:
        timeout_s = parse_duration(args.timeout)
    except ValueError as exc:
        raise SystemExit(f"error: --timeout: {exc}") from None
    obj = _runnable(ctx, settings, ref, tasknames.TASK_BY_KIND)
    if obj is None:
        return 1
    deadline = time.monotonic() + timeout_s
    if args.with_source:
        source = source_ref(obj) if ref.kind in ("Kustomization", "ImageUpdateAutomation") else None
        if source is None:
            print(f"✗ --with-source: {ref} has no source to reconcile", file=sys.stderr)
            return 1
        if _runnable(ctx, settings, source, tasknames.TASK_BY_KIND) is None:
            return 1
        token = _request(ctx, source)
        if not _wait(ctx, source, token, deadline, args.timeout):
            return 1
    token = _request(ctx, ref)
    if not args.wait:
        return 0
    return 0 if _wait(ctx, ref, token, deadline, args.timeout) else 1


def _runnable(ctx: Any, settings: Any, ref: Any, task_by_kind: dict[str, str]) -> Any:
    """The catalog object ``ref`` if a worker can reconcile it now; None (and why, on stderr) if not."""
    obj = ctx.catalog.get(ref)
    if obj is None:
        common.exit_if_gone(ctx, settings)
        print(f"✗ {ref} not found", file=sys.stderr)
        return None
    if obj.suspended:
        print(f"✗ {ref} is suspended; run `gitops-tasks resume` first", file=sys.stderr)
        return None
    if ref.kind not in task_by_kind:
        print(f"✗ {ref.kind} has no reconciler in this version", file=sys.stderr)
        return None
    return obj


def _request(ctx: Any, ref: Any) -> str:
    return request_reconcile(ctx, ref)


def request_reconcile(ctx: Any, ref: Any, *, quiet: bool = False) -> str:
    """Record a reconcile request for ``ref`` and queue its task on the priority queue: the token."""
    from gitops_tasks.app import app
    from gitops_tasks.tasks.enqueue import enqueue

    token = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") + "-" + secrets.token_hex(3)
    ctx.status.request(ref, token)
    enqueue(app, ctx.guard, ctx.keys, ref, reason="manual", queue="priority", force=True)
    if not quiet:
        print(f"► requested reconcile of {ref} ({token})", flush=True)
    return token


def _wait(ctx: Any, ref: Any, token: str, deadline: float, timeout: str) -> bool:
    """Wait until the run answering ``token`` ends (or ``deadline``); print its outcome. True if Ready.

    On a terminal a spinner line redraws in place; elsewhere the progress is plain lines."""
    from gitops_tasks.store.summary import condition

    tty = sys.stdout.isatty()
    waiting = f"waiting for {ref} to be reconciled"
    if not tty:
        print(f"◎ {waiting}", flush=True)
    started = time.monotonic()
    frames = itertools.cycle(_FRAMES)
    shown = ""
    while time.monotonic() < deadline:
        status = ctx.status.get(ref)
        reconciling = (condition(status, "Reconciling") or {}).get("status") == "True"
        if status.get("lastHandledReconcileAt") == token and not reconciling:
            if tty:
                sys.stdout.write("\r\x1b[K")
            ready = condition(status, "Ready") or {}
            if ready.get("status") == "True":
                print(f"✔ {ref} reconciled: {ready.get('message', '')}", flush=True)
                done = _done_line(ref, status)
                if done:
                    print(f"✔ {done}", flush=True)
                return True
            sys.stdout.flush()
            print(f"✗ {ref}: {ready.get('reason', 'Failed')}: {ready.get('message', '')}", file=sys.stderr)
            return False
        if tty:
            phase = "reconciling" if reconciling else "waiting"
            elapsed = int(time.monotonic() - started)
            text = f"{next(frames)} {waiting} ({phase}, {elapsed}s)"
            sys.stdout.write(f"\r\x1b[K{text}")
            sys.stdout.flush()
        elif reconciling and shown != "running":
            print("◎ reconciling…", flush=True)
            shown = "running"
        time.sleep(0.1 if tty else 0.2)
    if tty:
        sys.stdout.write("\r\x1b[K")
        sys.stdout.flush()
    print(f"✗ timed out after {timeout} waiting for {ref} (is a worker running?)", file=sys.stderr)
    return False


def _done_line(ref: Any, status: dict[str, Any]) -> str:
    """What the run produced, as flux words it: ``applied revision …``, ``fetched revision …``."""
    if ref.kind == "Kustomization" and status.get("lastAppliedRevision"):
        return f"applied revision {status['lastAppliedRevision']}"
    revision = (status.get("artifact") or {}).get("revision")
    if ref.kind == "GitRepository" and revision:
        return f"fetched revision {revision}"
    return ""


def set_suspended(args: argparse.Namespace, suspended: bool) -> int:
    from beat_schedule import entry_for
    from gitops_tasks.objects.model import ObjectRef

    settings = common.settings()
    kind = common.kind(args.kind)
    if args.all == bool(args.name):
        raise SystemExit("error: give either NAME or --all")
    if args.all_namespaces and not args.all:
        raise SystemExit("error: -A goes with --all")
    ctx = common.stores(settings)
    if args.all:
        namespace = None if args.all_namespaces else (args.namespace or settings.default_namespace)
        refs = sorted((obj.ref for obj in ctx.catalog.iter_kind(kind, namespace)), key=lambda r: r.key)
        if not refs:
            common.exit_if_gone(ctx, settings)
            where = "any namespace" if namespace is None else f"namespace {namespace}"
            print(f"✗ no {kind} in {where}", file=sys.stderr)
            return 1
    else:
        refs = [ObjectRef(kind, args.namespace or settings.default_namespace, args.name)]
    verb = "suspended" if suspended else "resumed"
    for ref in refs:
        try:
            ctx.catalog.set_suspended(ref, suspended, entry_for=entry_for)
        except KeyError:
            common.exit_if_gone(ctx, settings)
            print(f"✗ {ref} not found", file=sys.stderr)
            return 1
        ctx.events.emit(ref, severity="info", reason=verb.capitalize(), message=f"{ref} {verb}")
        print(f"✔ {ref} {verb}")
    return 0
