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
from gitops_tasks.policy.base import NoMatchingTag, UnorderableTag

Order = Literal["asc", "desc"]
#: ``order`` when the spec leaves it out (Flux's default).
DEFAULT_ORDER: Order = "asc"

# What Go's strconv.ParseFloat reads (Flux's numerical policy): decimals with ``_`` between digits,
# ``inf``/``infinity``/``nan`` in any case, hexadecimal with a ``p`` exponent.
_DIGITS = r"[0-9](?:_?[0-9])*"
_DECIMAL = re.compile(
    rf"[+-]?(?:{_DIGITS}(?:\.(?:{_DIGITS})?)?|\.{_DIGITS})(?:[eE][+-]?{_DIGITS})?"
    r"|[+-]?(?:inf|infinity)|nan",
    re.IGNORECASE,
)
_HEX_DIGITS = r"[0-9a-f](?:_?[0-9a-f])*"
_HEX = re.compile(
    rf"[+-]?0x_?(?:{_HEX_DIGITS}(?:\.(?:{_HEX_DIGITS})?)?|\.{_HEX_DIGITS})p[+-]?{_DIGITS}",
    re.IGNORECASE,
)


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
    """The number ``tag`` spells as Go's ``strconv.ParseFloat`` reads it (``-1.5``,
    ``20240115093000``, ``1e3``, ``1_000``, ``0x1p4``, ``inf``, ``nan``), else ``None``.

    Like Go, a finite spelling out of float range (``1e400``) is not a number."""
    if _HEX.fullmatch(tag):
        try:
            return float.fromhex(tag.replace("_", ""))
        except OverflowError:
            return None
    if not _DECIMAL.fullmatch(tag):
        return None
    value = float(tag)
    if math.isinf(value) and "inf" not in tag.lower():
        return None
    return value


@dataclass(frozen=True)
class NumericalPolicy:
    """By value as a float: ``asc`` picks the greatest (from 0..9, 9), ``desc`` the smallest.

    Every tag must be a number (after ``filterTags``, the extracted values): one that is not
    fails the policy with :class:`UnorderableTag`, as Flux's does. Equal values (``1`` and
    ``1.0``): the greater tag. ``nan`` orders below every number.
    """

    order: Order = DEFAULT_ORDER

    def latest(self, tags: Iterable[str]) -> str:
        tags = list(tags)
        sign = 1.0 if self.order == "asc" else -1.0
        best: tuple[bool, float, str] | None = None
        for tag in tags:
            value = parse_number(tag)
            if value is None:
                raise UnorderableTag(tag, f"{tag!r} is not a number")
            key = (not math.isnan(value), 0.0 if math.isnan(value) else sign * value, tag)
            if best is None or key > best:
                best = key
        if best is None:
            raise NoMatchingTag("no tags to order", considered=0)
        return best[2]
