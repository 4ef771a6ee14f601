"""Figures and Markdown: percentiles, tables, and the sections of ``BENCHMARKS.md``.

Each benchmark returns a :class:`Section`. ``BENCHMARKS.md`` keeps every section between HTML
comment markers naming it, so a run of some benchmarks (``run.py --only``) replaces those
sections and keeps the others as they were, with the date and command they were measured with.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_MARK = re.compile(
    r"<!-- section:(?P<name>[a-z_]+):begin -->\n(?P<body>.*?)<!-- section:(?P=name):end -->\n", re.S
)


@dataclass
class Section:
    """One benchmark's part of ``BENCHMARKS.md``: ``name`` is its stable id, ``markdown`` its text."""

    name: str
    markdown: str


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) by the nearest-rank method; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table; the first column is left-aligned, the others right-aligned."""
    align = [":---"] + ["---:"] * (len(headers) - 1)
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def read_sections(path: Path) -> dict[str, str]:
    """Section name → body of an existing ``BENCHMARKS.md`` (empty if there is none)."""
    if not path.is_file():
        return {}
    return {m.group("name"): m.group("body") for m in _MARK.finditer(path.read_text())}


def render(header: str, sections: dict[str, str], order: Sequence[str]) -> str:
    """The whole file: ``header`` then the sections in ``order`` (unknown names last)."""
    names = [n for n in order if n in sections] + sorted(n for n in sections if n not in order)
    parts = [header.rstrip("\n") + "\n"]
    for name in names:
        body = sections[name] if sections[name].endswith("\n") else sections[name] + "\n"
        parts.append(f"\n<!-- section:{name}:begin -->\n{body}<!-- section:{name}:end -->\n")
    return "".join(parts)
