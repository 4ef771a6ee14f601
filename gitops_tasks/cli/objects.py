"""The catalog commands: ``apply``, ``get``, ``delete``."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from gitops_tasks.cli import common


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("apply", help="validate object YAML and store it in the catalog (all or nothing)")
    p.add_argument("-f", "--filename", action="append", required=True, help="file or directory (repeatable)")
    p.add_argument(
        "--dry-run", action="store_true", help="validate and show what would change; store nothing"
    )
    p.set_defaults(func=cmd_apply)

    p = sub.add_parser("delete", help="remove one object from the catalog")
    object_args(p)
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("get", help="show objects with their status")
    p.add_argument("kind")
    p.add_argument("name", nargs="?")
    p.add_argument("-n", "--namespace")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("-o", "--output", choices=["table", "json", "yaml"], default="table")
    p.set_defaults(func=cmd_get)


def object_args(parser: argparse.ArgumentParser) -> None:
    """``KIND NAME [-n NAMESPACE]``: the arguments naming one catalog object."""
    parser.add_argument("kind", help="GitRepository, ImageRepository, ImagePolicy, Kustomization, …")
    parser.add_argument("name")
    parser.add_argument("-n", "--namespace", help="namespace (default: default)")


def cmd_apply(args: argparse.Namespace) -> int:
    from beat_schedule import entry_for
    from gitops_tasks.objects import LoadError, load_paths

    settings = common.settings()
    try:
        objects = load_paths(args.filename, default_namespace=settings.default_namespace)
    except LoadError as exc:
        for error in exc.errors:
            print(f"error: {error}", file=sys.stderr)
        print(f"nothing applied: {len(exc.errors)} error(s)", file=sys.stderr)
        return 1
    ctx = common.stores(settings)
    verdict = common.catalog_verdict(ctx, settings)
    if verdict.lost:
        print(f"warning: {common.loss_text(ctx, settings, verdict)}", file=sys.stderr)
    results = ctx.catalog.apply(
        objects, entry_for=entry_for, dry_run=args.dry_run, replaces=verdict.seen if verdict.lost else ""
    )
    common.remember_epoch(ctx, settings)
    suffix = " (dry run)" if args.dry_run else ""
    for applied in results:
        print(f"{applied.ref.kind}/{applied.ref.namespace}/{applied.ref.name} {applied.action}{suffix}")
    if not results:
        print("no objects found", file=sys.stderr)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from gitops_tasks.objects.model import ObjectRef

    settings = common.settings()
    ctx = common.stores(settings)
    ref = ObjectRef(common.kind(args.kind), args.namespace or settings.default_namespace, args.name)
    if not ctx.catalog.delete(ref):
        common.exit_if_gone(ctx, settings)
        print(f"error: {ref} not found", file=sys.stderr)
        return 1
    ctx.events.emit(ref, severity="info", reason="Deleted", message=f"{ref} deleted from the catalog")
    print(f"{ref.key} deleted")
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    from gitops_tasks.cli import view
    from gitops_tasks.objects.model import ObjectRef

    settings = common.settings()
    ctx = common.stores(settings)
    kind = common.kind(args.kind)
    verdict = common.exit_if_gone(ctx, settings)
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
    items = view.rows(objects, ctx.status.get_many(refs), ctx.catalog.next_run(refs))
    if args.output == "table":
        text = view.table(items, all_namespaces=args.all_namespaces)
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
        print(view.dump(items, args.output, named=bool(args.name)))
    return 0
