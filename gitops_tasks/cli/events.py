"""``events``: the event stream, newest last, optionally one object's, optionally followed."""

from __future__ import annotations

import argparse

from gitops_tasks.cli import common


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("events", help="print events (newest last)")
    p.add_argument("--for", dest="for_", metavar="KIND/NAME", help="only this object's events")
    p.add_argument("-n", "--namespace")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=cmd_events)


def cmd_events(args: argparse.Namespace) -> int:
    from gitops_tasks.cli import view
    from gitops_tasks.objects.model import ObjectRef

    settings = common.settings()
    ctx = common.stores(settings)
    ref = None
    if args.for_:
        kind, _, name = args.for_.partition("/")
        if not name:
            raise SystemExit("error: --for expects KIND/NAME, e.g. --for GitRepository/podinfo")
        ref = ObjectRef(common.kind(kind), args.namespace or settings.default_namespace, name)
    for event in ctx.events.recent(count=args.limit, ref=ref):
        print(view.event_line(event), flush=True)
    if args.follow:
        try:
            for event in ctx.events.follow(ref=ref):
                print(view.event_line(event), flush=True)
        except KeyboardInterrupt:
            return 0
    return 0
