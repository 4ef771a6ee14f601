"""The three ordering strategies of Flux's ImagePolicy: semver, alphabetical, numerical.

Each sees the tags already filtered (and, with ``extract``, the extracted values): see
:mod:`.filter`. Ties are broken by the greater tag so the choice never depends on list order.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from gitops_tasks.objects.semver_range import SemverRange
from gitops_tasks.policy.base import NoMatchingTag

Order = Literal["asc", "desc"]
#: ``order`` when the spec leaves it out (Flux's default).
DEFAULT_ORDER: Order = "asc"

# Decimal numbers as Go's strconv.ParseFloat reads them, minus its hex, inf and nan forms.
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


@dataclass(frozen=True)
class SemverPolicy:
    """The highest version ``range`` allows.

    Tags are read strictly, as Flux does: ``[v]MAJOR.MINOR.PATCH[-pre][+build]``; anything else
    (``latest``, ``1.2``, ``1.0.0.1``, ``1.0.0p``) is ignored. Prereleases qualify only when the
    range names one (``>=1.0.0-0``). Equal versions (``v1.0.0`` and ``1.0.0``): the greater tag.
    """

    range: SemverRange

    def latest(self, tags: Iterable[str]) -> str:
        tags = list(tags)
        found = self.range.highest(tags, strict=True)
        if found is None:
            raise NoMatchingTag(
                f"none is a semver version (MAJOR.MINOR.PATCH, optional leading v) "
                f"in range {self.range.text!r}",
                considered=len(tags),
            )
        return found


@dataclass(frozen=True)
class AlphabeticalPolicy:
    """By code point: ``asc`` picks the greatest tag (from A..Z, Z), ``desc`` the smallest (A)."""

    order: Order = DEFAULT_ORDER

    def latest(self, tags: Iterable[str]) -> str:
        tags = list(tags)
        if not tags:
            raise NoMatchingTag("no tags to order", considered=0)
        return max(tags) if self.order == "asc" else min(tags)


def parse_number(tag: str) -> float | None:
    """The decimal number ``tag`` spells (``-1.5``, ``20240115093000``, ``1e3``), else ``None``."""
    if not _DECIMAL.fullmatch(tag):
        return None
    value = float(tag)
    return None if math.isinf(value) else value


@dataclass(frozen=True)
class NumericalPolicy:
    """By value as a float: ``asc`` picks the greatest (from 0..9, 9), ``desc`` the smallest.

    Tags that are not decimal numbers are ignored (Flux fails the whole policy on one). Equal
    values (``1`` and ``1.0``): the greater tag.
    """

    order: Order = DEFAULT_ORDER

    def latest(self, tags: Iterable[str]) -> str:
        tags = list(tags)
        sign = 1.0 if self.order == "asc" else -1.0
        best: tuple[float, str] | None = None
        for tag in tags:
            value = parse_number(tag)
            if value is None:
                continue
            key = (sign * value, tag)
            if best is None or key > best:
                best = key
        if best is None:
            raise NoMatchingTag("none is a number", considered=len(tags))
        return best[1]
