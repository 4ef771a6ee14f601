"""``events``: the event stream as a table, newest last, filtered by object, kind, namespace and
type, optionally followed."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import textwrap
import time
from collections.abc import Sequence

from gitops_tasks.cli import common
from gitops_tasks.store.events import Event

_EXAMPLES = """\
examples:
  # the newest events of every namespace
  gitops-tasks events
  # the events of namespace team-a
  gitops-tasks events -n team-a
  # one object's events, then new ones as they happen
  gitops-tasks events --for Kustomization/apps --watch
  # every Kustomization's failures (--types Warning is flux's spelling of --severity error)
  gitops-tasks events --kind Kustomization --severity error -A
"""

#: Narrowest MESSAGE column worth wrapping into; on a narrower terminal messages run on.
MIN_MESSAGE_WIDTH = 20

#: flux's event types (``--types``) and the severities they stand for.
_TYPES = {"normal": "info", "warning": "error"}
#: The TYPE column: flux's word for each severity.
_TYPE_OF = {"info": "Normal", "error": "Warning"}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "events",
        help="print events (newest last)",
        description="Print the events of catalog objects as a table: LAST SEEN, TYPE, REASON, OBJECT, "
        "MESSAGE (and NAMESPACE first when they come from several namespaces).",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--for",
        dest="for_",
        metavar="KIND[/NAME]",
        help="only this object's events (KIND/NAME), or every object's of a kind (KIND)",
    )
    p.add_argument("--kind", help="only events of objects of this kind (as --for KIND)")
    p.add_argument(
        "--severity",
        action="append",
        choices=["info", "error"],
        help="only events of this severity (repeatable)",
    )
    p.add_argument(
        "--types",
        metavar="Normal,Warning",
        help="flux's name for --severity: Normal is info, Warning is error (comma-separated)",
    )
    p.add_argument(
        "-n",
        "--namespace",
        help="only events of this namespace (default: every namespace; with --for KIND/NAME: default)",
    )
    p.add_argument("-A", "--all-namespaces", action="store_true", help="events of every namespace")
    p.add_argument(
        "--follow", "-f", "--watch", "-w", action="store_true", help="keep printing new events (Ctrl-C stops)"
    )
    p.add_argument("--limit", type=int, default=50, help="how many past events to print (default 50)")
    p.set_defaults(func=cmd_events)


def cmd_events(args: argparse.Namespace) -> int:
    from gitops_tasks.objects.model import ObjectRef

    settings = common.settings()
    severities = _severities(args)
    kind_filter, ref = None, None
    namespace = None if args.all_namespaces else args.namespace
    spec = args.for_ or args.kind
    if args.for_ and args.kind:
        raise SystemExit("error: give --for or --kind, not both")
    if spec:
        kind, _, name = spec.partition("/")
        kind_filter = common.kind(kind)
        if name and args.kind:
            raise SystemExit("error: --kind takes a kind only; use --for KIND/NAME for one object")
        if name:
            ref = ObjectRef(kind_filter, args.namespace or settings.default_namespace, name)
            namespace = ref.namespace
    ctx = common.stores(settings)

    def match(event: Event) -> bool:
        return (
            (kind_filter is None or event.kind == kind_filter)
            and (namespace is None or event.namespace == namespace)
            and (severities is None or event.severity in severities)
        )

    table = EventTable(show_namespace=namespace is None, width=terminal_width())
    text = table.render(ctx.events.recent(count=args.limit, ref=ref, match=match), now=time.time())
    if text:
        print(text, flush=True)
    if args.follow:
        try:
            for event in ctx.events.follow(ref=ref, match=match):
                print(table.follow_row(event, now=time.time()), flush=True)
        except KeyboardInterrupt:
            return 0
    return 0


def terminal_width() -> int | None:
    """``COLUMNS`` when set, else the terminal's width; None when writing to a pipe or file (a
    script's ``grep`` sees each event on one line)."""
    if os.environ.get("COLUMNS", "").isdigit():
        return int(os.environ["COLUMNS"])
    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


def _severities(args: argparse.Namespace) -> set[str] | None:
    chosen = set(args.severity or [])
    for word in (args.types or "").split(","):
        if not word.strip():
            continue
        if word.strip().lower() not in _TYPES:
            raise SystemExit(f"error: --types: {word.strip()!r} is not Normal or Warning")
        chosen.add(_TYPES[word.strip().lower()])
    return chosen or None


class EventTable:
    """Events as aligned columns (a local table helper: the column widths of the first rows are kept
    for the rows ``--follow`` prints later, so a followed stream stays aligned)."""

    HEADERS = ("LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE")

    def __init__(self, *, show_namespace: bool, width: int | None = None) -> None:
        self.headers = (("NAMESPACE",) if show_namespace else ()) + self.HEADERS
        self.widths = [len(h) for h in self.headers]
        self.header_printed = False
        #: The terminal's width: a longer MESSAGE wraps under its column (never cut). None: no wrapping.
        self.width = width

    def _cells(self, event: Event, now: float) -> list[str]:
        message = event.message.replace("\n", " ")
        if event.revision:
            message += f" [{_short_revision(event.revision)}]"
        cells = [
            age(now - event.time),
            _TYPE_OF.get(event.severity, event.severity),
            event.reason,
            f"{event.kind}/{event.name}",
            message,
        ]
        return ([event.namespace] if len(self.headers) > len(self.HEADERS) else []) + cells

    def _line(self, cells: Sequence[str]) -> str:
        *head, last = cells
        lead = "".join(f"{c:<{w}}  " for c, w in zip(head, self.widths, strict=False))
        room = (self.width or 0) - len(lead)
        if self.width is None or room < MIN_MESSAGE_WIDTH or len(last) <= room:
            return lead + last
        parts = textwrap.wrap(last, room, break_long_words=False, break_on_hyphens=False) or [""]
        return "\n".join([lead + parts[0], *(" " * len(lead) + part for part in parts[1:])])

    def render(self, events: list[Event], *, now: float) -> str:
        """The header and a row per event; "" when there are none."""
        rows = [self._cells(e, now) for e in events]
        if not rows:
            return ""
        self.widths = [max(w, *(len(r[i]) for r in rows)) for i, w in enumerate(self.widths)]
        self.header_printed = True
        return "\n".join(self._line(cells).rstrip() for cells in [self.headers, *rows])

    def follow_row(self, event: Event, *, now: float) -> str:
        """One followed event's row (after the header, printed before the first one)."""
        row = self._line(self._cells(event, now)).rstrip()
        if self.header_printed:
            return row
        self.header_printed = True
        return self._line(self.headers).rstrip() + "\n" + row


def age(seconds: float) -> str:
    """How long ago, in kubectl's short style: ``45s``, ``12m``, ``5h``, ``3d``, ``2y``."""
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s"
    if s < 3 * 3600:
        return f"{s // 60}m"
    if s < 48 * 3600:
        return f"{s // 3600}h"
    if s < 730 * 86400:
        return f"{s // 86400}d"
    return f"{s // (365 * 86400)}y"


def _short_revision(rev: str) -> str:
    """``main@sha1:0123456789abcdef…`` as ``main@sha1:0123456789ab``."""
    head, sep, sha = rev.partition("sha1:")
    return f"{head}{sep}{sha[:12]}" if sep else rev
