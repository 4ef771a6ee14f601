"""The catalog commands: ``apply``, ``get``, ``export``, ``delete``."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gitops_tasks.cli import common

if TYPE_CHECKING:
    from gitops_tasks.objects.model import Object


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = _with_examples(
        sub,
        "apply",
        "validate object YAML and store it in the catalog (all or nothing)",
        "examples:\n  gitops-tasks apply -f clusters/staging --dry-run\n"
        "  gitops-tasks apply -f repo.yaml -f policies/\n"
        "a directory is read as a sync builds it (kustomize where a kustomization.yaml is); only\n"
        "gitops-tasks objects (Flux's and gitops-tasks.io kinds) are stored, cluster objects skipped",
    )
    p.add_argument("-f", "--filename", action="append", required=True, help="file or directory (repeatable)")
    p.add_argument(
        "--dry-run", action="store_true", help="validate and show what would change; store nothing"
    )
    p.set_defaults(func=cmd_apply)

    p = _with_examples(
        sub, "delete", "remove one object from the catalog (asks first unless --silent)", _DELETE_EXAMPLES
    )
    object_args(p)
    p.add_argument(
        "-s", "--silent", action="store_true", help="delete without asking for confirmation (for scripts)"
    )
    p.add_argument(
        "--wait",
        action="store_true",
        help="for a Kustomization with prune: true, wait until its objects are collected and it is gone",
    )
    p.add_argument("--timeout", default="5m", help="how long --wait waits (Go duration; default 5m)")
    p.set_defaults(func=cmd_delete)

    p = _with_examples(
        sub,
        "export",
        "print objects as YAML that apply -f takes back unchanged (no status)",
        _EXPORT_EXAMPLES,
    )
    p.add_argument("kind", help="a kind (GitRepository, ks, …) or 'all' for every kind")
    p.add_argument("name", nargs="?", help="one object's name (default: every object of the kind)")
    _namespace_args(p)
    p.set_defaults(func=cmd_export)

    p = _with_examples(sub, "get", "show objects with their status", _GET_EXAMPLES)
    p.add_argument("kind", help="a kind (GitRepository, ks, …), 'all' for every kind, or 'sources'")
    p.add_argument(
        "name",
        nargs="*",
        metavar="NAME",
        help="one object's name; after 'sources': all|git|oci|helm|bucket, then optionally a name",
    )
    _namespace_args(p)
    p.add_argument(
        "-o",
        "--output",
        choices=["table", "wide", "json", "yaml"],
        default="table",
        help="table (default), wide (every column, messages in full), json or yaml",
    )
    p.add_argument(
        "-w", "--watch", action="store_true", help="after the table, print a row whenever an object changes"
    )
    p.set_defaults(func=cmd_get)


_GET_EXAMPLES = """\
examples:
  gitops-tasks get gitrepositories -A                 # every namespace
  gitops-tasks get kustomization apps -n flux-system  # one object
  gitops-tasks get all -A                             # every kind, one table each
  gitops-tasks get sources git                        # the sources (flux's grouping)
  gitops-tasks get ks -o wide                         # interval, suspended, messages in full
  gitops-tasks get ks -o json | jq '.items[]'         # a List without NAME, the object with one
  gitops-tasks get gitrepositories --watch            # then a row at each change; Ctrl-C ends it
tables fit COLUMNS (or the terminal); a long message wraps, never cut. Colour on a terminal only,
never with NO_COLOR set.
"""

_DELETE_EXAMPLES = """\
examples:
  gitops-tasks delete gitrepository podinfo -n flux-system      # asks: y deletes, anything else keeps
  gitops-tasks delete kustomization apps --silent               # no question (scripts, CI)
  gitops-tasks delete ks apps -s --wait    # prune: true: its objects go first (cluster and catalog)
  echo y | gitops-tasks delete gitrepository podinfo            # the answer may come from a pipe
"""

_EXPORT_EXAMPLES = """\
examples:
  gitops-tasks export gitrepository podinfo -n flux-system      # one object
  gitops-tasks export kustomization -A > kustomizations.yaml   # every namespace, a multi-document stream
  gitops-tasks export all -A > backup.yaml && gitops-tasks apply -f backup.yaml
"""


def _with_examples(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help_text: str, examples: str
) -> argparse.ArgumentParser:
    return sub.add_parser(
        name, help=help_text, epilog=examples, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def _namespace_args(parser: argparse.ArgumentParser) -> None:
    """``[-n NAMESPACE | -A]``: the objects of one namespace or of all."""
    parser.add_argument("-n", "--namespace", help="namespace (default: default)")
    parser.add_argument("-A", "--all-namespaces", action="store_true", help="objects of every namespace")


def object_args(parser: argparse.ArgumentParser) -> None:
    """``KIND NAME [-n NAMESPACE]``: the arguments naming one catalog object."""
    parser.add_argument("kind", help="GitRepository, ImageRepository, ImagePolicy, Kustomization, …")
    parser.add_argument("name", help="the object's name")
    parser.add_argument("-n", "--namespace", help="namespace (default: default)")


def cmd_apply(args: argparse.Namespace) -> int:
    from beat_schedule import entry_for
    from gitops_tasks.objects import LoadError

    settings = common.settings()
    try:
        tree = load_fleet(args.filename, default_namespace=settings.default_namespace)
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
        tree.objects, entry_for=entry_for, dry_run=args.dry_run, replaces=verdict.seen if verdict.lost else ""
    )
    common.remember_epoch(ctx, settings)
    suffix = " (dry run)" if args.dry_run else ""
    for applied in results:
        line = f"{applied.ref.kind}/{applied.ref.namespace}/{applied.ref.name} {applied.action}{suffix}"
        if applied.owner is not None and applied.owner != applied.ref and applied.action != "unchanged":
            line += f" (managed by {applied.owner}: its next sync restores the copy in Git)"
        print(line)
    if tree.skipped:
        shown = ", ".join(tree.skipped[:3]) + (
            f", and {len(tree.skipped) - 3} more" if len(tree.skipped) > 3 else ""
        )
        noun = "object" if len(tree.skipped) == 1 else "objects"
        print(
            f"skipped {len(tree.skipped)} cluster {noun} ({shown}): a Kustomization's sync applies "
            "them to the cluster, apply stores only gitops-tasks objects",
            file=sys.stderr,
        )
    if not results:
        print("no objects found", file=sys.stderr)
    return 0


def load_fleet(paths: list[str], *, default_namespace: str) -> Any:
    """``apply -f``'s reading: files, and directories built as a sync builds them (a directory
    with a kustomization file through kustomize). Raises ``LoadError``."""
    from pathlib import Path

    from gitops_tasks.objects.loader import load_tree
    from gitops_tasks.sync.build import Builder, kustomization_file
    from gitops_tasks.sync.errors import SyncError

    def kustomize(directory: Path) -> list[tuple[dict[str, Any], str]]:
        here = Path.cwd().resolve()
        real = directory.resolve()
        root = here if real == here or here in real.parents else real
        try:
            built = Builder(root).kustomize(real, check_refs=False)
        except SyncError as exc:
            raise ValueError(f"{directory}: {exc.message}") from None
        return [(m.obj, m.origin) for m in built]

    return load_tree(
        paths,
        kustomize=kustomize,
        is_overlay=lambda d: kustomization_file(d) is not None,
        default_namespace=default_namespace,
    )


def cmd_delete(args: argparse.Namespace) -> int:
    from beat_schedule import entry_for
    from gitops_tasks.objects.model import ObjectRef
    from gitops_tasks.objects.ownership import owner_of

    settings = common.settings()
    ctx = common.stores(settings)
    ref = ObjectRef(common.kind(args.kind), args.namespace or settings.default_namespace, args.name)
    obj = ctx.catalog.get(ref)
    if obj is None:
        common.exit_if_gone(ctx, settings)
        print(f"error: {ref} not found", file=sys.stderr)
        return 1
    if not args.silent and not _confirmed(f"Are you sure you want to delete {ref}? [y/N] "):
        return 1
    owner = owner_of(obj)
    if owner is not None and owner != ref:
        print(
            f"warning: {ref} is managed by {owner}; its next sync creates it again unless it is "
            "removed from Git",
            file=sys.stderr,
        )
    removed = ctx.catalog.remove(obj, entry_for=entry_for)
    if removed.action == "gone":
        common.exit_if_gone(ctx, settings)
        print(f"error: {ref} not found", file=sys.stderr)
        return 1
    if removed.action == "deleting":
        from gitops_tasks.cli.run import request_reconcile

        ctx.events.emit(
            ref, severity="info", reason="Deleting", message=f"{ref} marked for deletion: {removed.detail}"
        )
        request_reconcile(ctx, ref, quiet=True)
        print(
            f"{ref.key} marked for deletion; a worker garbage-collects what it owns "
            "(prune: true), then deletes it"
        )
        return _wait_deleted(ctx, ref, args.timeout) if args.wait else 0
    ctx.events.emit(ref, severity="info", reason="Deleted", message=f"{ref} deleted from the catalog")
    print(f"{ref.key} deleted")
    return 0


def _wait_deleted(ctx: Any, ref: Any, timeout: str) -> int:
    import time

    from gitops_tasks.objects import parse_duration
    from gitops_tasks.store.summary import condition

    deadline = time.monotonic() + parse_duration(timeout)
    shown = ""
    while time.monotonic() < deadline:
        if ctx.catalog.get(ref) is None:
            print(f"✔ {ref} deleted", flush=True)
            return 0
        ready = condition(ctx.status.get(ref), "Ready") or {}
        if ready.get("status") == "False" and ready.get("message") != shown:
            shown = str(ready.get("message"))
            print(f"◎ {ready.get('reason')}: {shown}", flush=True)
        time.sleep(0.2)
    print(
        f"✗ timed out after {timeout} waiting for {ref} to be deleted (is a worker running?)", file=sys.stderr
    )
    return 1


#: ``get sources WHAT``: the kinds each of flux's groupings holds in this version.
SOURCE_GROUPS: dict[str, tuple[str, ...]] = {
    "all": ("GitRepository",),
    "git": ("GitRepository",),
    "oci": (),
    "helm": (),
    "bucket": (),
    "chart": (),
}
_FLUX_SOURCE_KINDS = {
    "oci": "OCIRepository",
    "helm": "HelmRepository",
    "bucket": "Bucket",
    "chart": "HelmChart",
}


def _get_target(args: argparse.Namespace) -> tuple[list[str], str | None] | str:
    """``(kinds, name)`` of ``get KIND [NAME]``, ``get all`` or ``get sources WHAT [NAME]``; the
    error text when the words name nothing."""
    words = list(args.name)
    if args.kind.lower() in ("sources", "source"):
        if not words:
            return f"get sources needs one of: {', '.join(SOURCE_GROUPS)}"
        group = words.pop(0).lower()
        if group not in SOURCE_GROUPS:
            return f"unknown source group {group!r}; expected one of: {', '.join(SOURCE_GROUPS)}"
        if not SOURCE_GROUPS[group]:
            return f"no {_FLUX_SOURCE_KINDS[group]} kind in this version (its sources: GitRepository)"
        kinds = list(SOURCE_GROUPS[group])
    else:
        kinds = _kinds(args.kind)
    if len(words) > 1:
        return f"too many names: {' '.join(words)}"
    if words and len(kinds) > 1:
        return f"get {args.kind} takes no NAME"
    return kinds, (words[0] if words else None)


def cmd_get(args: argparse.Namespace) -> int:
    target = _get_target(args)
    if isinstance(target, str):
        return common.fail(target)
    kinds, name = target
    if args.watch and args.output in ("json", "yaml"):
        return common.fail("--watch prints tables: use it with -o table or -o wide")
    settings = common.settings()
    ctx = common.stores(settings)
    verdict = common.exit_if_gone(ctx, settings)
    args.name = name
    objects = _selected(ctx, settings, args, kinds)
    if objects is None:
        return 1
    namespace = None if args.all_namespaces else (args.namespace or settings.default_namespace)
    if args.output in ("json", "yaml"):
        from gitops_tasks.cli import view

        print(view.dump(_rows(ctx, objects), args.output, named=bool(name)))
        return 0
    items = _rows(ctx, objects)
    printed = _print_tables(items, kinds, args)
    if not printed:
        what = "objects" if len(kinds) > 1 else f"{kinds[0]} objects"
        print(f"no {what} found" + ("" if namespace is None else f" in {namespace}"))
        if verdict.marker is not None and verdict.marker.replaces:
            when = datetime.fromtimestamp(verdict.marker.lost_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            print(
                f"note: this catalog was re-created at {when}, after the previous one (epoch "
                f"{verdict.marker.replaces}) was lost; objects applied before then may need applying again",
                file=sys.stderr,
            )
    sys.stdout.flush()
    if args.watch:
        try:
            _watch(ctx, settings, kinds, args, items)
        except KeyboardInterrupt:
            return 130  # Ctrl-C ends a watch: quietly, with the shell's status for SIGINT
    return 0


#: How often ``get --watch`` reads the catalog and the status again.
WATCH_POLL_S = 1.0


def _watch(
    ctx: Any, settings: Any, kinds: list[str], args: argparse.Namespace, shown: list[dict[str, Any]]
) -> None:
    """Print a row (or with several kinds a kind-prefixed table) for every object whose status,
    spec or suspension changes, and a line for every object that goes, until interrupted."""
    import time

    from gitops_tasks.cli import view

    style = view.Style.for_stdout(wide=args.output == "wide")
    seen = {_item_key(item): _fingerprint(item) for item in shown}
    while True:
        time.sleep(WATCH_POLL_S)
        items = _rows(ctx, _selected(ctx, settings, args, kinds, report_missing=False) or [])
        changed = [item for item in items if seen.get(_item_key(item)) != _fingerprint(item)]
        keys = {_item_key(item) for item in items}
        for gone in sorted(set(seen) - keys):
            print(f"{gone} deleted")
            del seen[gone]
        for kind in kinds:
            rows = [item for item in changed if item["kind"] == kind]
            if rows:
                text = view.table(rows, all_namespaces=args.all_namespaces, style=style, header=False)
                print(f"{style.heading(kind)}\n{text}" if len(kinds) > 1 else text)
        seen.update((_item_key(item), _fingerprint(item)) for item in changed)
        sys.stdout.flush()


def _item_key(item: dict[str, Any]) -> str:
    return f"{item['kind']}/{item['namespace']}/{item['name']}"


def _fingerprint(item: dict[str, Any]) -> str:
    import json

    return json.dumps([item["status"], item["spec"], item["suspended"]], sort_keys=True)


def _rows(ctx: Any, objects: list[Object]) -> list[dict[str, Any]]:
    from gitops_tasks.cli import view

    refs = [o.ref for o in objects]
    return view.rows(objects, ctx.status.get_many(refs), ctx.catalog.next_run(refs), _deliveries(ctx, refs))


#: Kinds whose ``get`` rows carry delivery figures (pending, last delivery, last error).
_DELIVERING_KINDS = ("Alert", "Provider")


def _deliveries(ctx: Any, refs: list[Any]) -> list[dict[str, Any] | None]:
    from gitops_tasks.cli import view

    wanted = [ref for ref in refs if ref.kind in _DELIVERING_KINDS]
    if not wanted:
        return [None] * len(refs)
    pipe = ctx.client.pipeline(transaction=False)
    for ref in wanted:
        pipe.hgetall(ctx.keys.notify_stats(ref.key))
    found = dict(zip([ref.key for ref in wanted], pipe.execute(), strict=True))
    return [view.delivery(found[ref.key]) if ref.key in found else None for ref in refs]


def _print_tables(items: list[dict[str, Any]], kinds: list[str], args: argparse.Namespace) -> bool:
    """One table, or with several kinds one per kind that has objects, under its kind's name.
    Whether anything was printed."""
    from gitops_tasks.cli import view

    style = view.Style.for_stdout(wide=args.output == "wide")
    by_kind = [(kind, [item for item in items if item["kind"] == kind]) for kind in kinds]
    tables = [
        (kind, view.table(group, all_namespaces=args.all_namespaces, style=style))
        for kind, group in by_kind
        if group
    ]
    if len(kinds) == 1:
        if tables:
            print(tables[0][1])
        return bool(tables)
    if tables:
        print("\n\n".join(f"{style.heading(kind)}\n{text}" for kind, text in tables))
    return bool(tables)


def _confirmed(question: str) -> bool:
    """Ask on stderr, read one line of stdin: ``y``/``yes`` is yes; anything else, or stdin at its
    end (no terminal, ``< /dev/null``), is no, said with how to delete without asking."""
    print(question, end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline()
    if not answer:
        print(file=sys.stderr)
        print(
            "error: no answer (stdin is closed); nothing deleted; use --silent to delete without asking",
            file=sys.stderr,
        )
        return False
    if answer.strip().lower() in ("y", "yes"):
        return True
    print("nothing deleted", file=sys.stderr)
    return False


def _selected(
    ctx: Any, settings: Any, args: argparse.Namespace, kinds: list[str], *, report_missing: bool = True
) -> list[Object] | None:
    """The objects a ``KIND [NAME] [-n NS | -A]`` names, sorted by kind, namespace, name; ``None``
    (with the error printed) when a named object is not found."""
    from gitops_tasks.objects.model import ObjectRef

    namespace = None if args.all_namespaces else (args.namespace or settings.default_namespace)
    if args.name:
        ref = ObjectRef(kinds[0], namespace or settings.default_namespace, args.name)
        obj = ctx.catalog.get(ref)
        if obj is None:
            if report_missing:
                print(f"error: {ref} not found", file=sys.stderr)
            return None
        return [obj]
    return [
        obj
        for kind in kinds
        for obj in sorted(ctx.catalog.iter_kind(kind, namespace), key=lambda o: (o.namespace, o.name))
    ]


def _kinds(text: str) -> list[str]:
    """``all`` → every kind (sources first); otherwise the one kind the text names."""
    from gitops_tasks.objects.kinds import KINDS

    return list(KINDS) if text.lower() == "all" else [common.kind(text)]


def cmd_export(args: argparse.Namespace) -> int:
    from gitops_tasks.cli import view

    kinds = _kinds(args.kind)
    if args.name and len(kinds) > 1:
        return common.fail("export all takes no NAME")
    settings = common.settings()
    ctx = common.stores(settings)
    common.exit_if_gone(ctx, settings)
    objects = _selected(ctx, settings, args, kinds)
    if objects is None:
        return 1
    if objects:
        print(view.export(objects), end="")
    return 0
