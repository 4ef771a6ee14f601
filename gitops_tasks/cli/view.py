"""How the CLI shows objects, status and events (pure formatting, no I/O)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import yaml

from gitops_tasks.objects.model import Object
from gitops_tasks.redact import redact
from gitops_tasks.store.events import Event
from gitops_tasks.store.summary import condition

#: Longest message shown in a table cell.
DEFAULT_MESSAGE_WIDTH = 70


def state(obj: Object, status: dict[str, Any]) -> str:
    """One word: Suspended, Reconciling, Stalled, Ready, Failed or Pending."""
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


def rows(
    objects: list[Object], statuses: list[dict[str, Any]], next_runs: list[float | None]
) -> list[dict[str, Any]]:
    """Machine-readable view of each object (what ``-o json``/``-o yaml`` print)."""
    out = []
    for obj, status, next_run in zip(objects, statuses, next_runs, strict=True):
        ready = condition(status, "Ready") or {}
        out.append(
            {
                "kind": obj.kind,
                "namespace": obj.namespace,
                "name": obj.name,
                "state": state(obj, status),
                "ready": ready.get("status", "Unknown"),
                "reason": ready.get("reason", ""),
                "message": ready.get("message", ""),
                "revision": revision(status),
                "suspended": obj.suspended,
                "lastRun": status.get("lastRunTime"),
                "nextRun": None if next_run is None or obj.suspended else _iso(next_run),
                "status": _masked(status),
                "spec": _masked(obj.spec),
            }
        )
    return out


def _masked(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with credentials in URLs masked (a URL may carry a token, as Flux allows)."""
    masked: dict[str, Any] = json.loads(redact(json.dumps(data)))
    return masked


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def table(items: list[dict[str, Any]], *, all_namespaces: bool, now: float | None = None) -> str:
    now = time.time() if now is None else now
    headers = ["NAME", "READY", "STATUS", "REASON", "REVISION", "LAST RUN", "NEXT RUN", "MESSAGE"]
    if all_namespaces:
        headers.insert(0, "NAMESPACE")
    lines = []
    for item in items:
        message = item["message"].replace("\n", " ")
        if len(message) > DEFAULT_MESSAGE_WIDTH:
            message = message[: DEFAULT_MESSAGE_WIDTH - 1] + "…"
        cells = [
            item["name"],
            item["ready"],
            item["state"],
            item["reason"] or "-",
            _short_revision(item["revision"]) or "-",
            _relative(_parse_iso(item["lastRun"]), now),
            _relative(_parse_iso(item["nextRun"]), now) if item["nextRun"] else "-",
            message or "-",
        ]
        if all_namespaces:
            cells.insert(0, item["namespace"])
        lines.append(cells)
    if not lines:
        return ""
    widths = [max(len(h), *(len(row[i]) for row in lines)) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*headers).rstrip(), *(fmt.format(*row).rstrip() for row in lines)])


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


def event_line(event: Event) -> str:
    when = datetime.fromtimestamp(event.time, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    rev = f" [{_short_revision(event.revision)}]" if event.revision else ""
    who = f"{event.kind}/{event.namespace}/{event.name}"
    return f"{when}  {event.severity:<5}  {who}  {event.reason}: {event.message}{rev}"
