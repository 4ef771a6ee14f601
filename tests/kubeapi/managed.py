"""Field ownership: ``metadata.managedFields`` for Apply and Update operations. Pure.

An entry is identified by manager, operation and subresource (and apiVersion for Update entries, as on a
real server). Update operations (create, PUT, non-apply PATCH) never conflict: the writer takes over
every field whose value it changed and every manager loses the fields it removed. An Apply replaces the
applier's set with the fields in its configuration; it conflicts when it would change a field another
manager owns (unless forced, which moves ownership to the applier), and it removes the fields it
applied before and no longer applies, unless another manager still owns them or something below them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.kubeapi.errors import ApiError
from tests.kubeapi.fieldsets import (
    Path,
    describe,
    from_fields_v1,
    is_key_field,
    leaves,
    prefixes,
    remove_path,
    to_fields_v1,
)
from tests.kubeapi.merge import apply_merge
from tests.kubeapi.schema import SchemaNode

_MISSING = object()


@dataclass
class Entry:
    manager: str
    operation: str  # "Apply" or "Update"
    api_version: str
    subresource: str
    time: str
    fields: set[Path]

    @property
    def identity(self) -> tuple[str, str, str, str]:
        version = "" if self.operation == "Apply" else self.api_version
        return (self.manager, self.operation, version, self.subresource)

    def encode(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": to_fields_v1(self.fields),
        }
        if self.subresource:
            out["subresource"] = self.subresource
        return out

    def label(self) -> str:
        """How a conflict message names this manager."""
        label = f'"{self.manager}"'
        if self.subresource:
            label += f' with subresource "{self.subresource}"'
        return label if self.operation == "Apply" else f"{label} using {self.api_version}"


def decode(managed_fields: Any) -> list[Entry]:
    entries = []
    for raw in managed_fields or []:
        if not isinstance(raw, dict) or (not raw.get("manager") and not raw.get("fieldsV1")):
            continue
        entries.append(
            Entry(
                manager=raw.get("manager", ""),
                operation=raw.get("operation", "Update"),
                api_version=raw.get("apiVersion", ""),
                subresource=raw.get("subresource", ""),
                time=raw.get("time", ""),
                fields=from_fields_v1(raw.get("fieldsV1") or {}),
            )
        )
    return entries


def encode(entries: list[Entry]) -> list[dict[str, Any]]:
    return [entry.encode() for entry in entries if entry.fields]


def _replace(entries: list[Entry], mine: Entry) -> list[Entry]:
    """``entries`` with ``mine`` in place of its previous version (or appended); empty entries dropped."""
    out, placed = [], False
    for entry in entries:
        if entry.identity == mine.identity:
            if entry.fields == mine.fields:
                mine.time = entry.time  # unchanged ownership keeps its timestamp: the write can stay a no-op
            out.append(mine)
            placed = True
        else:
            out.append(entry)
    if not placed:
        out.append(mine)
    return [entry for entry in out if entry.fields]


def track_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    entries: list[Entry],
    *,
    manager: str,
    api_version: str,
    subresource: str,
    root: SchemaNode,
    with_status: bool,
    now: str,
) -> list[Entry]:
    """Ownership after a non-apply write of ``new`` over ``old`` (None for a create)."""
    before = leaves(old, root, with_status=with_status) if old is not None else {}
    after = leaves(new, root, with_status=with_status)
    changed = {path for path, value in after.items() if before.get(path, _MISSING) != value}
    removed = set(before) - set(after)
    mine = Entry(manager, "Update", api_version, subresource, now, set())
    for entry in entries:
        if entry.identity == mine.identity:
            mine.fields = set(entry.fields)
        else:
            entry.fields = entry.fields - changed - removed
    mine.fields = (mine.fields | changed) - removed
    return _replace(entries, mine)


def apply(
    live: dict[str, Any],
    applied: dict[str, Any],
    entries: list[Entry],
    *,
    manager: str,
    api_version: str,
    force: bool,
    root: SchemaNode,
    with_status: bool,
    now: str,
) -> tuple[dict[str, Any], list[Entry], list[tuple[Entry, Path]]]:
    """Merge ``applied`` into ``live`` for ``manager``; returns the object, the entries and conflicts.

    When there are conflicts and ``force`` is false, nothing is merged: the caller raises
    :func:`conflict_error`. ``live`` and ``applied`` are not modified; ``entries`` are.
    """
    applied_leaves = leaves(applied, root, with_status=with_status)
    mine = Entry(manager, "Apply", api_version, "", now, set(applied_leaves))
    live_leaves = leaves(live, root, with_status=with_status)
    changing = {path for path, value in applied_leaves.items() if live_leaves.get(path, _MISSING) != value}
    previous: set[Path] = set()
    conflicts: list[tuple[Entry, Path]] = []
    for entry in entries:
        if entry.identity == mine.identity:
            previous = entry.fields
        else:
            conflicts.extend((entry, path) for path in sorted(entry.fields & changing))
    if conflicts and not force:
        return live, entries, conflicts
    others = [entry for entry in entries if entry.identity != mine.identity]
    for entry in others:
        entry.fields = entry.fields - changing
    merged = apply_merge(live, applied, root)
    keep = prefixes(mine.fields.union(*(entry.fields for entry in others)))
    for path in sorted(previous - mine.fields, key=len):
        if path not in keep and not is_key_field(path):
            remove_path(merged, path)
    return merged, _replace(entries, mine), []


def conflict_error(conflicts: list[tuple[Entry, Path]]) -> ApiError:
    """409 Conflict listing each conflicting field and its manager, worded like kube-apiserver."""
    by_manager: dict[str, list[str]] = {}
    for entry, path in conflicts:
        by_manager.setdefault(entry.label(), []).append(describe(path))
    count = len(conflicts)
    if count == 1:
        ((label, (field,)),) = by_manager.items()
        summary = f"conflict with {label}: {field}"
    else:
        summary = "\n".join(
            f"conflicts with {label}:\n" + "\n".join(f"- {field}" for field in by_manager[label])
            for label in sorted(by_manager)
        )
    return ApiError(
        409,
        "Conflict",
        f"Apply failed with {count} conflict{'s' if count > 1 else ''}: {summary}",
        {
            "causes": [
                {
                    "reason": "FieldManagerConflict",
                    "message": f"conflict with {entry.label()}",
                    "field": describe(path),
                }
                for entry, path in conflicts
            ]
        },
    )
