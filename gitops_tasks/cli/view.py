"""How the CLI shows objects, status and events (formatting; :class:`Style` alone looks at the
terminal and the environment)."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml

from gitops_tasks.objects.model import Object
from gitops_tasks.objects.ownership import deleting, owner_of
from gitops_tasks.redact import redact
from gitops_tasks.store.events import Event
from gitops_tasks.store.summary import condition


def state(obj: Object, status: dict[str, Any]) -> str:
    """One word: Terminating, Suspended, Reconciling, Stalled, Ready, Failed or Pending."""
    if deleting(obj):
        return "Terminating"
    if obj.suspended:
        return "Suspended"
    if (condition(status, "Reconciling") or {}).get("status") == "True":
        return "Reconciling"
    if (condition(status, "Stalled") or {}).get("status") == "True":
        return "Stalled"
    ready = condition(status, "Ready")
    if ready is None:
        return "Pending"
    return {"True": "Ready", "False": "Failed"}.get(ready.get("status", ""), "Pending")


def revision(status: dict[str, Any]) -> str:
    for path in (("artifact", "revision"), ("lastAppliedRevision",), ("latestImage",)):
        value: Any = status
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if value:
            return str(value)
    scan = status.get("lastScanResult")
    if isinstance(scan, dict) and "tagCount" in scan:
        return f"{scan['tagCount']} tags"
    return ""


def _relative(ts: float | None, now: float) -> str:
    if ts is None:
        return "-"
    delta = ts - now
    span = abs(delta)
    if span < 1:
        return "now"
    text = f"{span:.0f}s" if span < 120 else f"{span / 60:.0f}m" if span < 7200 else f"{span / 3600:.0f}h"
    return f"in {text}" if delta > 0 else f"{text} ago"


def _parse_iso(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def delivery(stats: dict[str, str]) -> dict[str, Any]:
    """An Alert's or Provider's delivery figures (from ``Keys.notify_stats``) as ``get`` shows them."""
    last = float(stats["lastDelivery"]) if stats.get("lastDelivery") else None
    return {
        "pending": max(0, int(stats.get("pending", 0))),
        "delivered": int(stats.get("delivered", 0)),
        "failed": int(stats.get("failed", 0)),
        "lastDelivery": _iso(last) if last is not None else None,
        "lastError": redact(stats.get("lastError", "")),
    }


def rows(
    objects: list[Object],
    statuses: list[dict[str, Any]],
    next_runs: list[float | None],
    deliveries: list[dict[str, Any] | None] | None = None,
) -> list[dict[str, Any]]:
    """Machine-readable view of each object (what ``-o json``/``-o yaml`` print). ``deliveries``:
    per object, its :func:`delivery` figures (Alerts and Providers) or None."""
    out = []
    sent_by = deliveries or [None] * len(objects)
    for obj, status, next_run, sent in zip(objects, statuses, next_runs, sent_by, strict=True):
        ready = condition(status, "Ready") or {}
        row = {
            "kind": obj.kind,
            "namespace": obj.namespace,
            "name": obj.name,
            "state": state(obj, status),
            "ready": ready.get("status", "Unknown"),
            "reason": ready.get("reason", ""),
            "message": ready.get("message", ""),
            "revision": revision(status),
            "suspended": obj.suspended,
            "owner": _owner(obj),
            "lastRun": status.get("lastRunTime"),
            "nextRun": None if next_run is None or obj.suspended else _iso(next_run),
            "status": _masked(status),
            "spec": _masked(obj.spec),
        }
        if sent is not None:
            row["delivery"] = sent
            row["revision"] = f"{sent['pending']} pending"
            row["lastRun"] = sent["lastDelivery"]
            if sent["lastError"] and sent["pending"]:
                row["message"] = f"{row['message']}; last error: {sent['lastError']}".lstrip("; ")
        out.append(row)
    return out


def _owner(obj: Object) -> str:
    """``Kustomization/<namespace>/<name>`` that manages ``obj`` from Git ("" when hand-applied)."""
    owner = owner_of(obj)
    return owner.key if owner is not None else ""


def _masked(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with credentials in URLs masked (a URL may carry a token, as Flux allows)."""
    masked: dict[str, Any] = json.loads(redact(json.dumps(data)))
    return masked


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


#: The narrowest the MESSAGE column gets, however narrow the terminal (it wraps at this width).
MIN_MESSAGE_WIDTH = 20

_RED, _GREEN, _YELLOW, _BOLD, _RESET = "\x1b[31m", "\x1b[32m", "\x1b[33m", "\x1b[1m", "\x1b[0m"
_COLOURS = {
    "True": _GREEN,
    "False": _RED,
    "Ready": _GREEN,
    "Failed": _RED,
    "Stalled": _RED,
    "Suspended": _YELLOW,
    "Reconciling": _YELLOW,
}


@dataclass(frozen=True)
class Style:
    """How a table is laid out: ``width`` of the screen (``None``: no limit, a pipe), ``wide``
    (``-o wide``: every column, messages in full on one line), ``colour`` (escape codes)."""

    width: int | None = None
    wide: bool = False
    colour: bool = False

    @classmethod
    def for_stdout(cls, *, wide: bool = False) -> Style:
        """``COLUMNS`` or the terminal's width (no limit in a pipe); colour on a terminal unless
        ``NO_COLOR`` is set (https://no-color.org)."""
        tty = sys.stdout.isatty()
        width: int | None = None
        columns = os.environ.get("COLUMNS", "")
        if columns.isdigit() and int(columns) > 0:
            width = int(columns)
        elif tty:
            try:
                width = os.get_terminal_size(sys.stdout.fileno()).columns
            except OSError:
                width = None
        return cls(width=width, wide=wide, colour=tty and not os.environ.get("NO_COLOR"))

    def paint(self, text: str, word: str) -> str:
        colour = _COLOURS.get(word) if self.colour else None
        return f"{colour}{text}{_RESET}" if colour else text

    def heading(self, text: str) -> str:
        return f"{_BOLD}{text}{_RESET}" if self.colour else text


def table(
    items: list[dict[str, Any]],
    *,
    all_namespaces: bool,
    now: float | None = None,
    style: Style | None = None,
    header: bool = True,
) -> str:
    """The rows as aligned columns, READY and STATUS coloured by ``style``. A message longer than
    the room left wraps onto continuation lines (never cut); ``-o wide`` adds INTERVAL, SUSPENDED
    and OWNER (the Kustomization managing the object from Git) and shows messages in full on their
    row. ``header=False``: the rows alone (``get --watch``)."""
    style = style or Style()
    lines = [_cells(item, now=time.time() if now is None else now, wide=style.wide) for item in items]
    if not lines:
        return ""
    headers = list(_HEADERS)
    if style.wide:
        headers[-1:-1] = ["INTERVAL", "SUSPENDED", "OWNER"]
    if all_namespaces:
        headers.insert(0, "NAMESPACE")
        for item, row in zip(items, lines, strict=True):
            row.insert(0, item["namespace"])
    widths = [max(len(h), *(len(row[i]) for row in lines)) for i, h in enumerate(headers)]
    room = None
    if style.width is not None and not style.wide:
        room = max(MIN_MESSAGE_WIDTH, style.width - sum(widths[:-1]) - 2 * (len(widths) - 1))
        widths[-1] = min(widths[-1], room)
    ready, status = headers.index("READY"), headers.index("STATUS")
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()] if header else []
    for row in lines:
        parts = (
            textwrap.wrap(row[-1], room, break_long_words=False, break_on_hyphens=False)
            if room
            else [row[-1]]
        )
        cells = [cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=False)]
        cells[ready] = style.paint(cells[ready], row[ready])
        cells[status] = style.paint(cells[status], row[status])
        out.append("  ".join([*cells, parts[0]]).rstrip())
        indent = " " * (sum(widths[:-1]) + 2 * (len(widths) - 1))
        out.extend(indent + part for part in parts[1:])
    return "\n".join(out)


_HEADERS = ("NAME", "READY", "STATUS", "REASON", "REVISION", "LAST RUN", "NEXT RUN", "MESSAGE")


def _cells(item: dict[str, Any], *, now: float, wide: bool) -> list[str]:
    cells = [
        item["name"],
        item["ready"],
        item["state"],
        item["reason"] or "-",
        (item["revision"] if wide else _short_revision(item["revision"])) or "-",
        _relative(_parse_iso(item["lastRun"]), now),
        _relative(_parse_iso(item["nextRun"]), now) if item["nextRun"] else "-",
    ]
    if wide:
        cells += [
            str(item["spec"].get("interval") or "-"),
            "True" if item["suspended"] else "False",
            item.get("owner") or "-",
        ]
    return [*cells, " ".join(item["message"].split()) or "-"]


def _short_revision(rev: str) -> str:
    """``main@sha1:0123456789abcdef...`` → ``main@sha1:0123456789ab`` (as flux get shows)."""
    if "sha1:" in rev:
        head, sha = rev.split("sha1:", 1)
        return f"{head}sha1:{sha[:12]}"
    return rev


def dump(items: list[dict[str, Any]], fmt: str, *, named: bool) -> str:
    """``-o json|yaml``: the object of a named get, a kubectl-style ``List`` of a collection query
    (whatever the number of matches, so ``jq '.items[]'`` always works)."""
    data = items[0] if named else {"apiVersion": "v1", "kind": "List", "items": items}
    if fmt == "json":
        return json.dumps(data, indent=2, sort_keys=False)
    return yaml.safe_dump(data, sort_keys=False).rstrip()


def export(objects: list[Object]) -> str:
    """``export``: each object as ``apply -f`` takes it back, as written (apiVersion, kind, metadata
    with name, namespace, labels and annotations, spec; no generation, no status), every document
    opened by ``---`` as ``flux export`` prints them."""
    docs = []
    for obj in objects:
        metadata: dict[str, Any] = {"name": obj.name, "namespace": obj.namespace}
        for key in ("labels", "annotations"):
            if obj.metadata.get(key) is not None:
                metadata[key] = obj.metadata[key]
        doc = {"apiVersion": obj.api_version, "kind": obj.kind, "metadata": metadata, "spec": obj.spec}
        docs.append("---\n" + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return "".join(docs)


def event_line(event: Event) -> str:
    when = datetime.fromtimestamp(event.time, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    rev = f" [{_short_revision(event.revision)}]" if event.revision else ""
    who = f"{event.kind}/{event.namespace}/{event.name}"
    return f"{when}  {event.severity:<5}  {who}  {event.reason}: {event.message}{rev}"
