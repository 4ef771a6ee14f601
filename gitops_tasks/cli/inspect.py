"""``stats``, ``tree`` and ``trace``: what the catalog holds, what a Kustomization manages, and
where a cluster object comes from.

- ``stats``: per kind, the objects, how many are ready, failing and suspended, and the Redis
  storage of their catalog and status entries (and ImageRepositories' tag lists).
- ``tree kustomization NAME``: the objects in its inventory (``status.inventory``), nesting the
  inventory of any Kustomization of the catalog found there.
- ``trace KIND/NAME`` (or ``trace NAME --kind K --api-version V``): the Kustomization that applied
  a cluster object (the ``gitops-tasks.io/name`` and ``/namespace`` labels), its source and revision.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import yaml

from gitops_tasks.cli import common

_STATS_EXAMPLES = """examples:
  gitops-tasks stats                    # every namespace
  gitops-tasks stats -n apps            # objects of one namespace
"""

_TREE_EXAMPLES = """examples:
  gitops-tasks tree kustomization app
  gitops-tasks tree ks infra -n platform -o json
"""

_TRACE_EXAMPLES = """examples:
  gitops-tasks trace Deployment/podinfo -n apps
  gitops-tasks trace podinfo --kind Deployment --api-version apps/v1 -n apps
  gitops-tasks trace Namespace/apps     # cluster-scoped objects need no -n
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "stats",
        help="count objects per kind (ready, failing, suspended) and the storage they use",
        description="Per kind: objects, ready, failing and suspended, and the bytes of their "
        "catalog and status entries in Redis (with ImageRepositories' tag lists).",
        epilog=_STATS_EXAMPLES,
        formatter_class=formatter,
    )
    p.add_argument("-n", "--namespace", help="count one namespace's objects only (default: all)")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser(
        "tree",
        help="print what a Kustomization manages, as a tree",
        description="Print the objects in a Kustomization's inventory (what its last sync applied); "
        "Kustomizations of the catalog found there are expanded in turn.",
        epilog=_TREE_EXAMPLES,
        formatter_class=formatter,
    )
    p.add_argument("kind", choices=["kustomization", "kustomizations", "ks"], help="kustomization")
    p.add_argument("name", help="the Kustomization's name")
    p.add_argument("-n", "--namespace", help="the Kustomization's namespace (default: default)")
    p.add_argument("-o", "--output", choices=["tree", "json", "yaml"], default="tree", help="output format")
    p.set_defaults(func=cmd_tree)

    p = sub.add_parser(
        "trace",
        help="print which Kustomization and source applied a cluster object",
        description="Read the object from the cluster, find the Kustomization that applied it (its "
        "gitops-tasks.io labels), and print that Kustomization's and its source's revision and status.",
        epilog=_TRACE_EXAMPLES,
        formatter_class=formatter,
    )
    p.add_argument("object", metavar="KIND/NAME", help="the cluster object: Kind/name, or a name with --kind")
    p.add_argument("--kind", help="the object's kind (with a bare NAME)")
    p.add_argument(
        "--api-version", help="the object's apiVersion, e.g. apps/v1 (default: the cluster's preferred)"
    )
    p.add_argument("-n", "--namespace", help="the object's namespace (default: default)")
    p.set_defaults(func=cmd_trace)


# -- stats ------------------------------------------------------------------------------------


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if count < 1024 or unit == "MiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"  # pragma: no cover


def cmd_stats(args: argparse.Namespace) -> int:
    from gitops_tasks.cli import view
    from gitops_tasks.objects import KINDS

    settings = common.settings()
    ctx = common.stores(settings)
    common.exit_if_gone(ctx, settings)
    rows = []
    for kind in KINDS:
        objects = list(ctx.catalog.iter_kind(kind, args.namespace))
        statuses = ctx.status.get_many([o.ref for o in objects])
        states = [view.state(o, s) for o, s in zip(objects, statuses, strict=True)]
        rows.append(
            [
                kind,
                str(len(objects)),
                str(states.count("Ready")),
                str(sum(s in ("Failed", "Stalled") for s in states)),
                str(sum(o.suspended for o in objects)),
                _size(_storage(ctx, kind, [o.ref.key for o in objects])),
            ]
        )
    print(_table(["KIND", "OBJECTS", "READY", "FAILING", "SUSPENDED", "STORAGE"], rows))
    return 0


def _storage(ctx: Any, kind: str, keys: list[str]) -> int:
    """Bytes of the objects' catalog and status values (and tag lists): what they cost in Redis,
    leaving out Redis' own per-entry overhead."""
    if not keys:
        return 0
    pipe = ctx.client.pipeline(transaction=False)
    for key in keys:
        pipe.hstrlen(ctx.keys.catalog, key)
        pipe.hstrlen(ctx.keys.status, key)
        if kind == "ImageRepository":
            pipe.strlen(ctx.keys.tags(key))
    return sum(int(n or 0) for n in pipe.execute())


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """Left-aligned columns two spaces apart (a local helper: ``view.table`` is the get table)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*row).rstrip() for row in [headers, *rows])


# -- tree -------------------------------------------------------------------------------------

_KUSTOMIZE_GROUP = "kustomize.toolkit.fluxcd.io"


def inventory_tree(ctx: Any, ref: Any, *, seen: frozenset[str] = frozenset()) -> dict[str, Any]:
    """``{"resource": "Kind/ns/name", "resources": [...]}``: the inventory of Kustomization ``ref``,
    each Kustomization of the catalog in it expanded in turn (once: a loop stops there)."""
    from gitops_tasks.objects.model import ObjectRef
    from gitops_tasks.sync.inventory import from_status

    node: dict[str, Any] = {"resource": f"{ref.kind}/{ref.namespace}/{ref.name}", "resources": []}
    for oid in from_status(ctx.status.get(ref)):
        child = ObjectRef(oid.kind, oid.namespace, oid.name)
        if (
            oid.kind == "Kustomization"
            and oid.group in (_KUSTOMIZE_GROUP, "")
            and child.key not in seen
            and ctx.catalog.get(child) is not None
        ):
            node["resources"].append(inventory_tree(ctx, child, seen=seen | {ref.key}))
        else:
            node["resources"].append({"resource": str(oid)})
    return node


def render_tree(node: dict[str, Any]) -> str:
    """``flux tree``'s layout: the root, then ``├── `` / ``└── `` branches, nested."""
    lines = [node["resource"]]

    def walk(children: list[dict[str, Any]], indent: str) -> None:
        for i, child in enumerate(children):
            last = i == len(children) - 1
            lines.append(f"{indent}{'└── ' if last else '├── '}{child['resource']}")
            walk(child.get("resources", []), indent + ("    " if last else "│   "))

    walk(node["resources"], "")
    return "\n".join(lines)


def cmd_tree(args: argparse.Namespace) -> int:
    from gitops_tasks.objects.model import ObjectRef

    settings = common.settings()
    ctx = common.stores(settings)
    ref = ObjectRef("Kustomization", args.namespace or settings.default_namespace, args.name)
    if ctx.catalog.get(ref) is None:
        common.exit_if_gone(ctx, settings)
        return common.fail(f"Kustomization {ref.namespace}/{ref.name} not found")
    tree = inventory_tree(ctx, ref)
    if args.output == "json":
        print(json.dumps(tree, indent=2))
    elif args.output == "yaml":
        print(yaml.safe_dump(tree, sort_keys=False).rstrip())
    else:
        print(render_tree(tree))
        if not tree["resources"]:
            print(f"note: {ref} has no inventory yet (it has not applied anything)", file=sys.stderr)
    return 0


# -- trace ------------------------------------------------------------------------------------


def _target(args: argparse.Namespace) -> tuple[str, str]:
    if args.kind:
        if "/" in args.object:
            raise SystemExit("error: give NAME with --kind, or KIND/NAME without it")
        return args.kind, args.object
    kind, _, name = args.object.partition("/")
    if not name or "/" in name:
        raise SystemExit("error: expected KIND/NAME (e.g. Deployment/podinfo), or NAME --kind KIND")
    return kind, name


def _preferred_api_version(cluster: Any, kind: str) -> str:
    """The apiVersion the cluster prefers for ``kind`` (matched case-insensitively)."""
    from gitops_tasks.sync.errors import ClusterError

    found = [
        r
        for r in cluster.dynamic.resources.search()
        if getattr(r, "kind", "").lower() == kind.lower() and "/" not in getattr(r, "name", "/")
    ]
    if not found:
        raise ClusterError(f"kind {kind} is not served by the cluster", status=404, reason="NoKindMatch")
    preferred = [r for r in found if getattr(r, "preferred", False)] or found
    return str(preferred[0].group_version)


def cmd_trace(args: argparse.Namespace) -> int:
    from gitops_tasks.sync.errors import ClusterError, KubeConfigError
    from gitops_tasks.tasks.sync import connector, sync_settings

    settings = common.settings()
    kind, name = _target(args)
    namespace = args.namespace or settings.default_namespace
    try:
        cluster = connector(sync_settings(settings))(None)
    except KubeConfigError as exc:
        return common.fail(f"trace needs the cluster: {exc.message}")
    try:
        api_version = args.api_version or _preferred_api_version(cluster, kind)
        if not args.api_version:
            kind = next(  # the kind as the cluster spells it
                r.kind
                for r in cluster.dynamic.resources.search(group_version=api_version)
                if r.kind.lower() == kind.lower()
            )
        live = cluster.get(api_version, kind, name, namespace)
        namespaced = cluster.scope(api_version, kind)
    except ClusterError as exc:
        return common.fail(exc.message)
    finally:
        cluster.close()
    where = f"{kind}/{namespace}/{name}" if namespaced else f"{kind}/{name}"
    if live is None:
        return common.fail(f"{where} not found in the cluster")
    ctx = common.stores(settings)
    return _print_trace(ctx, where, api_version, live)


def _print_trace(ctx: Any, where: str, api_version: str, live: dict[str, Any]) -> int:
    from gitops_tasks.objects.model import ObjectRef
    from gitops_tasks.redact import redact
    from gitops_tasks.sync.inventory import from_status, obj_id
    from gitops_tasks.sync.plan import OWNER_NAME_LABEL, OWNER_NAMESPACE_LABEL

    labels = (live.get("metadata") or {}).get("labels") or {}
    owner_name, owner_ns = labels.get(OWNER_NAME_LABEL), labels.get(OWNER_NAMESPACE_LABEL)
    if not owner_name or not owner_ns:
        return common.fail(f"{where} is not managed by gitops-tasks (no {OWNER_NAME_LABEL} label)")
    ks_ref = ObjectRef("Kustomization", owner_ns, owner_name)
    sections = [[("Object", where), ("API version", api_version)]]
    ks = ctx.catalog.get(ks_ref)
    if ks is None:
        missing = f"labelled by Kustomization {owner_ns}/{owner_name}, which is not in the catalog"
        sections[0].append(("Status", missing))
        print(_sections(sections))
        return 1
    ks_status = ctx.status.get(ks_ref)
    in_inventory = obj_id(live) in from_status(ks_status)
    managed = (
        "managed by gitops-tasks" if in_inventory else "labelled, but not in the Kustomization's inventory"
    )
    sections[0].append(("Status", managed))
    sections.append(_object_section(ks, ks_status, [("Path", ks.spec.get("path") or "./")]))
    source = ks.spec.get("sourceRef") or {}
    if source.get("name"):
        src_ref = ObjectRef(
            str(source.get("kind") or "GitRepository"),
            source.get("namespace") or ks.namespace,
            source["name"],
        )
        src = ctx.catalog.get(src_ref)
        if src is None:
            sections.append([(src_ref.kind, f"{src_ref.namespace}/{src_ref.name} (not in the catalog)")])
        else:
            ref_spec = src.spec.get("ref") or {}
            extra = [("URL", redact(str(src.spec.get("url", ""))))]
            extra += [(k.capitalize(), str(v)) for k, v in ref_spec.items() if v]
            sections.append(_object_section(src, ctx.status.get(src_ref), extra))
    print(_sections(sections))
    return 0


def _object_section(obj: Any, status: dict[str, Any], extra: list[tuple[str, str]]) -> list[tuple[str, str]]:
    from gitops_tasks.cli import view
    from gitops_tasks.store.summary import condition

    ready = condition(status, "Ready") or {}
    last = status.get("lastRunTime")
    return [
        (obj.kind, obj.name),
        ("Namespace", obj.namespace),
        *extra,
        ("Revision", view.revision(status) or "-"),
        ("Status", f"{view.state(obj, status)}" + (f", last run {last}" if last else "")),
        ("Message", ready.get("message") or "-"),
    ]


def _sections(sections: list[list[tuple[str, str]]]) -> str:
    width = max(len(k) for section in sections for k, _ in section) + 2
    blocks = ["\n".join(f"{k + ':':<{width}}{v}" for k, v in section) for section in sections]
    return "\n---\n".join(blocks)
