"""Semver ranges in the constraint syntax Flux uses (Masterminds/semver v3), pure.

Accepted: comparators ``=``, ``!=``, ``>``, ``<``, ``>=`` (``=>``), ``<=`` (``=<``), ``~`` (``~>``),
``^``; AND by comma or whitespace (``>=1.0.0 <2.0.0``, ``>1, <2``); OR by ``||``; hyphen ranges
(``1.2 - 1.4.5``); wildcards ``x``, ``X``, ``*`` and missing parts (``1.x``, ``1.2``, ``*``);
a leading ``v`` on any version. Missing parts behave like wildcards: ``<=1.2`` is ``<1.3.0``,
``>1`` is ``>=2.0.0``, ``~1.2`` is ``>=1.2.0 <1.3.0``, ``^0.3`` is ``>=0.3.0 <0.4.0``.

Prereleases follow Masterminds: a prerelease version passes a comparator only when that
comparator's own version names a prerelease (``>=1.0.0-0`` admits ``1.2.0-rc.1``; ``>=1.0.0``
does not). A plain ``!=X.Y.Z`` is the one comparator that does not exclude prereleases.

Tags are parsed leniently by default: ``v1``, ``1.2``, ``v1.2.3-rc.1+build`` are versions;
anything else (``latest``, ``release-1``) is ignored. With ``strict=True`` they are parsed as Flux's
``version.ParseVersion`` does (Masterminds ``StrictNewVersion`` after dropping one leading ``v``):
exactly ``MAJOR.MINOR.PATCH`` without leading zeros, an optional prerelease whose numeric
identifiers have no leading zeros, optional build metadata; ``1.2``, ``01.2.3`` and ``1.0.0.1``
are not versions. ImagePolicy's semver policy is strict.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import semver

_OPS = {
    "": "=",
    "=": "=",
    "!=": "!=",
    ">": ">",
    "<": "<",
    ">=": ">=",
    "=>": ">=",
    "<=": "<=",
    "=<": "<=",
    "~": "~",
    "~>": "~",
    "^": "^",
}
_IDENT = r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*"
_PART = r"(?:\d+|[xX*])"
_COMPARATOR = re.compile(
    rf"\s*(?P<op>!=|>=|=>|<=|=<|~>|[=<>~^])?\s*v?(?P<maj>{_PART})(?:\.(?P<min>{_PART}))?"
    rf"(?:\.(?P<pat>{_PART}))?(?:-(?P<pre>{_IDENT}))?(?:\+{_IDENT})?\s*"
)
_HYPHEN = re.compile(r"(\S+)\s+-\s+(\S+)")
_TAG_VERSION = re.compile(rf"v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-({_IDENT}))?(?:\+({_IDENT}))?")
_NUM = r"(?:0|[1-9][0-9]*)"
_PRE_ID = rf"(?:{_NUM}|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_STRICT_VERSION = re.compile(
    rf"v?({_NUM})\.({_NUM})\.({_NUM})(?:-({_PRE_ID}(?:\.{_PRE_ID})*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)
#: Masterminds parses each of MAJOR, MINOR, PATCH as a uint64.
_MAX_PART = 2**64 - 1


def parse_version(tag: str, *, strict: bool = False) -> semver.Version | None:
    """The version a tag names (``v1.2`` → 1.2.0), or ``None`` for tags that are not versions.

    ``strict``: only ``[v]MAJOR.MINOR.PATCH[-pre][+build]`` as Flux's ImagePolicy reads tags.
    """
    match = (_STRICT_VERSION if strict else _TAG_VERSION).fullmatch(tag)
    if match is None:
        return None
    major, minor, patch, pre, build = match.groups()
    parts = (int(major), int(minor or 0), int(patch or 0))
    if strict and max(parts) > _MAX_PART:
        return None
    return semver.Version(*parts, pre, build)


@dataclass(frozen=True)
class _Comparator:
    op: str
    base: semver.Version
    #: Index of the first wildcard or missing part (0 major, 1 minor, 2 patch); 3 when exact.
    wild: int

    def allows(self, v: semver.Version) -> bool:
        exact_ne = self.op == "!=" and self.wild == 3
        if v.prerelease and not self.base.prerelease and not exact_ne:
            return False
        return _CHECKS[self.op](self, v)


def _eq(c: _Comparator, v: semver.Version) -> bool:
    if c.wild == 3:
        return v.compare(c.base) == 0
    return (v.major, v.minor)[: c.wild] == (c.base.major, c.base.minor)[: c.wild]


def _gt(c: _Comparator, v: semver.Version) -> bool:
    if c.wild in (0, 3):
        return v.compare(c.base) > 0
    return (v.major, v.minor)[: c.wild] > (c.base.major, c.base.minor)[: c.wild]


def _le(c: _Comparator, v: semver.Version) -> bool:
    if c.wild == 0:
        return True
    if c.wild == 3:
        return v.compare(c.base) <= 0
    return (v.major, v.minor)[: c.wild] <= (c.base.major, c.base.minor)[: c.wild]


def _tilde(c: _Comparator, v: semver.Version) -> bool:
    if v.compare(c.base) < 0:
        return False
    if c.wild == 0 or (c.wild == 3 and (c.base.major, c.base.minor, c.base.patch) == (0, 0, 0)):
        return True
    return v.major == c.base.major and (c.wild == 1 or v.minor == c.base.minor)


def _caret(c: _Comparator, v: semver.Version) -> bool:
    if v.compare(c.base) < 0:
        return False
    if c.wild == 0:
        return True
    if c.base.major > 0 or c.wild == 1:
        return v.major == c.base.major
    if v.major > 0:
        return False
    if c.base.minor > 0 or c.wild == 2:
        return v.minor == c.base.minor
    return v.minor == 0 and v.patch == c.base.patch


_CHECKS: dict[str, Callable[[_Comparator, semver.Version], bool]] = {
    "=": _eq,
    "!=": lambda c, v: not _eq(c, v),
    ">": _gt,
    ">=": lambda c, v: v.compare(c.base) >= 0,
    "<": lambda c, v: v.compare(c.base) < 0,
    "<=": _le,
    "~": _tilde,
    "^": _caret,
}


def _comparator(match: re.Match[str]) -> _Comparator:
    parts = [match.group("maj"), match.group("min"), match.group("pat")]
    wild = next((i for i, p in enumerate(parts) if p is None or p in "xX*"), 3)
    nums = [int(p or 0) if i < wild else 0 for i, p in enumerate(parts)]
    base = semver.Version(nums[0], nums[1], nums[2], match.group("pre"))
    return _Comparator(_OPS[match.group("op") or ""], base, wild)


def _parse_and(text: str) -> tuple[_Comparator, ...]:
    text = _HYPHEN.sub(r">=\1 <=\2", text)
    out: list[_Comparator] = []
    for piece in text.split(","):
        pos = 0
        piece = piece.strip()
        if not piece:
            raise ValueError("empty comparator")
        while pos < len(piece):
            match = _COMPARATOR.match(piece, pos)
            if match is None or match.end() == pos:
                raise ValueError(f"cannot read {piece[pos:]!r}")
            out.append(_comparator(match))
            pos = match.end()
    return tuple(out)


@dataclass(frozen=True)
class SemverRange:
    """A parsed range: OR of AND-groups of comparators. Build with :meth:`parse`."""

    text: str
    alternatives: tuple[tuple[_Comparator, ...], ...]

    @classmethod
    def parse(cls, text: str) -> SemverRange:
        """Parse ``text``. Raises ``ValueError`` saying what was not understood and the expected form."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"semver range {text!r} is empty; expected e.g. '>=1.0.0 <2.0.0' or '~1.2'")
        try:
            alts = tuple(_parse_and(alt) for alt in text.split("||"))
        except ValueError as exc:
            raise ValueError(
                f"semver range {text!r}: {exc}; expected comparators such as '>=1.0.0 <2.0.0', "
                "'~1.2', '^1.0', '1.x' or '>1, <2', joined by '||'"
            ) from None
        return cls(text, alts)

    def allows(self, version: semver.Version) -> bool:
        return any(all(c.allows(version) for c in alt) for alt in self.alternatives)

    def highest(self, tags: Iterable[str], *, strict: bool = False) -> str | None:
        """The tag with the highest version in range (ties: the greater tag name), or ``None``.

        ``strict``: read tags as :func:`parse_version` does with ``strict=True``.
        """
        best: tuple[semver.Version, str] | None = None
        for tag in tags:
            version = parse_version(tag, strict=strict)
            if version is None or not self.allows(version):
                continue
            if (
                best is None
                or version.compare(best[0]) > 0
                or (version.compare(best[0]) == 0 and tag > best[1])
            ):
                best = (version, tag)
        return None if best is None else best[1]
