"""Semver ranges in the constraint syntax Flux uses (Masterminds/semver v3), pure.

The grammar is Masterminds': an OR of ``||``-separated groups; a group is comparators separated
by whitespace or by one comma (``>=1.0.0 <2.0.0``, ``>1, <2``), and ``A - B`` with spaces around
the dash is the range ``>=A, <=B``. A comparator is an optional operator (``=``, ``!=``, ``>``,
``<``, ``>=`` / ``=>``, ``<=`` / ``=<``, ``~`` / ``~>``, ``^``; none means ``=``) and a version:
an optional ``v``, one to three dot-separated parts, each a number or a single wildcard ``x``,
``X`` or ``*`` (parts after the first wildcard are not read), an optional ``-prerelease`` and
``+build``. Anything else is invalid, as in Flux: ``1x``, ``x1``, ``1.2.3.4``, ``>=1.0<2.0``
(no separator), ``1.0,`` (dangling comma), ``||``, an empty range, a prerelease number with a
leading zero (``1.0.0-rc.01``).

Missing parts behave like wildcards: ``<=1.2`` is ``<1.3.0``, ``>1`` is ``>=2.0.0``, ``~1.2`` is
``>=1.2.0 <1.3.0``, ``^0.3`` is ``>=0.3.0 <0.4.0``; ``1.2`` and ``1.2.x`` are ``~1.2``.

Prereleases follow Masterminds' ``Check``: a prerelease version can satisfy an AND group only
when some comparator of that group names a prerelease (``>=1.0.0-0 <2.0.0`` admits
``1.2.0-rc.1``; ``>=1.0.0 <2.0.0`` does not), whatever the operator, ``!=`` included.

Tags are parsed leniently by default: ``v1``, ``1.2``, ``v1.2.3-rc.1+build`` are versions;
anything else (``latest``, ``release-1``) is ignored. With ``strict=True`` they are parsed as Flux's
``version.ParseVersion`` does (fluxcd/pkg/version: at least two dots, then Masterminds' coercing
``NewVersion``): ``[v]MAJOR.MINOR.PATCH`` where leading zeros are allowed (``v2025.02.03`` is
2025.2.3), an optional prerelease whose numeric identifiers have no leading zeros, optional build
metadata; ``1.2``, ``v2`` and ``1.0.0.1`` are not versions. The dot count is over the whole tag,
so ``1.2-rc.1`` is 1.2.0-rc.1, as in Flux. ImagePolicy's semver policy and GitRepository's
``ref.semver`` are strict.
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
#: Go's ``\s`` (RE2): the only characters that separate comparators.
_WS = " \t\n\f\r"
_OP_CHARS = frozenset("=!<>~^")
#: What a version part may hold before it is read (Masterminds' class, ``|`` included).
_PART_CHARS = frozenset("0123456789|xX*")
_IDENT_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-")
_WILDCARDS = ("x", "X", "*")
_GO_WS = r"[ \t\n\f\r]"
_IDENT = r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*"
_CV = rf"v?[0-9|xX*]+(?:\.[0-9|xX*]+)?(?:\.[0-9|xX*]+)?(?:-{_IDENT})?(?:\+{_IDENT})?"
#: ``A - B`` (whitespace on both sides of the dash), rewritten to ``>= A, <= B`` before parsing.
#: Masterminds' pattern also takes the whitespace before ``A`` (added back in
#: :func:`_rewrite_hyphens`); ``A`` starting right after anything but whitespace or a comma could
#: only give an invalid range, so such starts are skipped, which keeps the search linear.
_HYPHEN = re.compile(rf"(?<![^ \t\n\f\r,])({_CV}){_GO_WS}+-{_GO_WS}+({_CV}){_GO_WS}*")
#: A version once wildcards are resolved (Masterminds' coercing ``NewVersion``).
_LOOSE_VERSION = re.compile(rf"v?([0-9]+)(?:\.([0-9]+))?(?:\.([0-9]+))?(?:-({_IDENT}))?(?:\+({_IDENT}))?")
_TAG_VERSION = re.compile(rf"v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-({_IDENT}))?(?:\+({_IDENT}))?")
#: Masterminds parses each of MAJOR, MINOR, PATCH as a uint64.
_MAX_PART = 2**64 - 1


def parse_version(tag: str, *, strict: bool = False) -> semver.Version | None:
    """The version a tag names (``v1.2`` → 1.2.0), or ``None`` for tags that are not versions.

    ``strict``: as Flux's ``version.ParseVersion`` reads tags (ImagePolicy, GitRepository).
    """
    if not strict:
        match = _TAG_VERSION.fullmatch(tag)
        if match is None:
            return None
        major, minor, patch, pre, build = match.groups()
        return semver.Version(int(major), int(minor or 0), int(patch or 0), pre, build)
    if tag.count(".") < 2:
        return None
    match = _LOOSE_VERSION.fullmatch(tag)
    if match is None:
        return None
    major, minor, patch, pre, build = match.groups()
    parts = (int(major), int(minor or 0), int(patch or 0))
    if max(parts) > _MAX_PART or (pre and not _valid_identifiers(pre, prerelease=True)):
        return None
    return semver.Version(*parts, pre, build)


@dataclass(frozen=True)
class _Comparator:
    op: str
    base: semver.Version
    #: Index of the first wildcard or missing part (0 major, 1 minor, 2 patch); 3 when exact.
    wild: int

    def allows(self, v: semver.Version) -> bool:
        return _CHECKS[self.op](self, v)


def _tilde(c: _Comparator, v: semver.Version) -> bool:
    if v.compare(c.base) < 0:
        return False
    if c.wild == 0 or (c.wild == 3 and (c.base.major, c.base.minor, c.base.patch) == (0, 0, 0)):
        return True
    return v.major == c.base.major and (c.wild == 1 or v.minor == c.base.minor)


def _eq(c: _Comparator, v: semver.Version) -> bool:
    return v.compare(c.base) == 0 if c.wild == 3 else _tilde(c, v)


def _ne(c: _Comparator, v: semver.Version) -> bool:
    if c.wild < 3:
        if v.major != c.base.major:
            return True
        if c.wild == 1:
            return False
        if v.minor != c.base.minor:
            return True
        if c.wild == 2:
            return (v.prerelease or "") != (c.base.prerelease or "")
        if v.patch != c.base.patch:
            return True
    return v.compare(c.base) != 0


def _gt(c: _Comparator, v: semver.Version) -> bool:
    if c.wild in (0, 3):
        return v.compare(c.base) > 0
    return (v.major, v.minor)[: c.wild] > (c.base.major, c.base.minor)[: c.wild]


def _le(c: _Comparator, v: semver.Version) -> bool:
    if c.wild == 3:
        return v.compare(c.base) <= 0
    # Masterminds reads only the major with a wildcard minor, else major and minor; a wildcard
    # major (``<=*``) is thus ``<0.1.0``.
    if c.wild == 1:
        return v.major <= c.base.major
    return (v.major, v.minor) <= (c.base.major, c.base.minor)


def _caret(c: _Comparator, v: semver.Version) -> bool:
    # As Masterminds' code: a wildcard major (``^*``) is ``^0.0.0``, only 0.0.0 itself.
    if v.compare(c.base) < 0:
        return False
    if c.base.major > 0 or c.wild == 1:
        return v.major == c.base.major
    if v.major > 0:
        return False
    if c.base.minor > 0 or c.wild == 2:
        return v.minor == c.base.minor
    return v.minor == 0 and v.patch == c.base.patch


_CHECKS: dict[str, Callable[[_Comparator, semver.Version], bool]] = {
    "=": _eq,
    "!=": _ne,
    ">": _gt,
    ">=": lambda c, v: v.compare(c.base) >= 0,
    "<": lambda c, v: v.compare(c.base) < 0,
    "<=": _le,
    "~": _tilde,
    "^": _caret,
}


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _WS:
        pos += 1
    return pos


def _run(text: str, pos: int, chars: frozenset[str]) -> int:
    while pos < len(text) and text[pos] in chars:
        pos += 1
    return pos


def _idents(text: str, pos: int) -> int:
    """End of ``ident(.ident)*`` starting at ``pos`` (``pos`` itself when there is none)."""
    end = _run(text, pos, _IDENT_CHARS)
    if end == pos:
        return pos
    while end + 1 < len(text) and text[end] == "." and text[end + 1] in _IDENT_CHARS:
        end = _run(text, end + 1, _IDENT_CHARS)
    return end


def _scan_version(text: str, pos: int) -> tuple[list[str], int, int, int]:
    """``(parts, version end, prerelease start, prerelease end)`` of the version at ``pos``.

    Raises ``ValueError`` when no version starts there."""
    start = pos + 1 if text.startswith("v", pos) else pos
    end = _run(text, start, _PART_CHARS)
    if end == start:
        raise ValueError(f"expected a version at {text[pos:]!r}")
    parts = [text[start:end]]
    while len(parts) < 3 and end + 1 < len(text) and text[end] == "." and text[end + 1] in _PART_CHARS:
        part_end = _run(text, end + 1, _PART_CHARS)
        parts.append(text[end + 1 : part_end])
        end = part_end
    pre_start = pre_end = end
    if end + 1 < len(text) and text[end] == "-" and text[end + 1] in _IDENT_CHARS:
        pre_start, pre_end = end + 1, _idents(text, end + 1)
        end = pre_end
    if end + 1 < len(text) and text[end] == "+" and text[end + 1] in _IDENT_CHARS:
        end = _idents(text, end + 1)
    return parts, end, pre_start, pre_end


def _valid_identifiers(text: str, *, prerelease: bool) -> bool:
    for ident in text.split("."):
        if not ident or not set(ident) <= _IDENT_CHARS:
            return False
        if prerelease and ident.isdigit() and len(ident) > 1 and ident[0] == "0":
            return False
    return True


def _comparator(op: str, version: str, parts: list[str], pre: str) -> _Comparator:
    """The comparator ``op version``, resolved as Masterminds' ``parseConstraint`` does."""
    suffix = f"-{pre}" if pre else ""
    wild = next((i for i, p in enumerate(parts) if p in _WILDCARDS), len(parts))
    if wild == 0:
        resolved = f"0.0.0{suffix}"
    elif wild == 1:
        resolved = f"{parts[0]}.0.0{suffix}"
    elif wild == 2:
        resolved = f"{parts[0]}.{parts[1]}.0{suffix}"
    else:
        resolved = version
    match = _LOOSE_VERSION.fullmatch(resolved)
    if match is None:
        raise ValueError(f"{version!r} is not a version (each part a number or one of x, X, *)")
    major, minor, patch, pre_text, build = match.groups()
    numbers = (int(major), int(minor or 0), int(patch or 0))
    if max(numbers) > _MAX_PART:
        raise ValueError(f"{version!r}: a version part exceeds {_MAX_PART}")
    if pre_text and not _valid_identifiers(pre_text, prerelease=True):
        raise ValueError(f"{version!r}: invalid prerelease (a numeric identifier has a leading zero)")
    if build and not _valid_identifiers(build, prerelease=False):
        raise ValueError(f"{version!r}: invalid build metadata")
    return _Comparator(_OPS[op], semver.Version(*numbers, pre_text, None), wild)


def _parse_and(text: str) -> tuple[_Comparator, ...]:
    """One ``||`` alternative: comparators separated by whitespace or by one comma."""
    out: list[_Comparator] = []
    pos = _skip_ws(text, 0)
    if pos == len(text):
        raise ValueError("empty comparator")
    while True:
        op_end = _run(text, pos, _OP_CHARS)
        op = text[pos:op_end]
        if op not in _OPS:
            raise ValueError(f"unknown operator {op!r}")
        start = _skip_ws(text, op_end)
        if start == len(text):
            raise ValueError(f"expected a version after {op!r}" if op else "expected a version")
        parts, end, pre_start, pre_end = _scan_version(text, start)
        out.append(_comparator(op, text[start:end], parts, text[pre_start:pre_end]))
        pos = _skip_ws(text, end)
        if pos == len(text):
            return tuple(out)
        if text[pos] == ",":
            pos = _skip_ws(text, pos + 1)
            if pos == len(text):
                raise ValueError("nothing after ','")
        elif pos == end:
            raise ValueError(f"cannot read {text[end:]!r} (comparators are separated by a space or a comma)")


def _rewrite_hyphens(text: str) -> str:
    """``A - B`` → ``>= A, <= B`` (Masterminds replaces each match's first occurrence in turn)."""
    found: list[tuple[str, str, str]] = []
    last = 0
    for match in _HYPHEN.finditer(text):
        start = match.start()
        while start > last and text[start - 1] in _WS:
            start -= 1
        found.append((text[start : match.end()], match.group(1), match.group(2)))
        last = match.end()
    for whole, low, high in found:
        text = text.replace(whole, f">= {low}, <= {high} ", 1)
    return text


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
            alts = tuple(_parse_and(alt) for alt in _rewrite_hyphens(text).split("||"))
        except ValueError as exc:
            raise ValueError(
                f"semver range {text!r}: {exc}; expected comparators such as '>=1.0.0 <2.0.0', "
                "'~1.2', '^1.0', '1.x' or '>1, <2', joined by '||'"
            ) from None
        return cls(text, alts)

    def allows(self, version: semver.Version) -> bool:
        """Whether ``version`` satisfies the range, as Masterminds' ``Constraints.Check``."""
        for group in self.alternatives:
            if version.prerelease and not any(c.base.prerelease for c in group):
                continue
            if all(c.allows(version) for c in group):
                return True
        return False

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
