"""Regular expressions written by users, compiled by RE2 (the engine behind Go's ``regexp``).

Flux compiles ``filterTags.pattern``, ``exclusionList`` and an Alert's inclusion/exclusion lists
with Go's ``regexp``, whose syntax and linear-time matching are RE2's. Python's ``re``
backtracks (``^(a+)+$`` doubles its time with every character of a tag, holding the interpreter
lock) and accepts look-arounds and back-references that Flux refuses. Every pattern that comes
from an object, a repository or a setting goes through :func:`compile_regex`; the project's own
constant patterns stay on ``re``.

RE2 differs from Go in one construct users could write: ``\\C`` (any single byte), which Go
refuses; it is refused here too.

Pure: no I/O.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Protocol

import re2

#: Compiled patterns kept (10,000 objects often share a handful of filters).
CACHED_PATTERNS = 4096

_OPTIONS = re2.Options()
# RE2 otherwise writes every refused pattern to stderr: the caller reports it instead.
_OPTIONS.log_errors = False

#: Beginnings of RE2's reasons for constructs Perl and Python have and RE2 (so Go, so Flux) lacks.
_LACKS = (
    (("invalid perl operator: (?=", "invalid perl operator: (?!"), "look-aheads"),
    (("invalid perl operator: (?<=", "invalid perl operator: (?<!"), "look-behinds"),
    (tuple(f"invalid escape sequence: \\{digit}" for digit in range(10)), "back-references"),
)


class Match(Protocol):
    def group(self, key: int | str = 0, /) -> str | None: ...


class UserRegex:
    """A compiled user pattern: RE2's regexp for matches and groups, and an RE2 set of the one
    pattern for yes-or-no questions (one call into RE2, where a search costs several Python-level
    steps per text: it is what filters and exclusion lists ask of every tag)."""

    __slots__ = ("_any", "_regexp", "pattern")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._regexp = re2.compile(pattern, options=_OPTIONS)
        self._any = re2.Set.SearchSet(_OPTIONS)
        self._any.Add(pattern)
        self._any.Compile()

    @property
    def groups(self) -> int:
        return int(self._regexp.groups)

    @property
    def groupindex(self) -> Mapping[str, int]:
        return dict(self._regexp.groupindex)

    def matches(self, text: str) -> bool:
        """Whether the pattern is found anywhere in ``text`` (Go's ``MatchString``)."""
        return self._any.Match(text) is not None

    def search(self, text: str) -> Match | None:
        """The leftmost match in ``text`` (Go's ``FindStringSubmatch``), or None."""
        found: Match | None = self._regexp.search(text)
        return found

    def fullmatch(self, text: str, pos: int | None = None, endpos: int | None = None) -> Match | None:
        found: Match | None = self._regexp.fullmatch(text, pos, endpos)
        return found


#: What callers hold: a compiled user pattern.
Pattern = UserRegex


class RegexError(ValueError):
    """A pattern RE2 refuses. ``str()`` is the reason (``invalid perl operator: (?=``), with a
    hint when the construct is one Perl or Python has and RE2 lacks."""


@functools.lru_cache(maxsize=CACHED_PATTERNS)
def compile_regex(pattern: str) -> UserRegex:
    """Compile ``pattern`` with RE2 (Go syntax); raises :class:`RegexError` when RE2 refuses it."""
    if _has_any_byte(pattern):
        raise RegexError("invalid escape sequence: \\C (Go's regexp has no single-byte class)")
    try:
        return UserRegex(pattern)
    except re2.error as exc:
        raise RegexError(_reason(exc, pattern)) from None


def escape(text: str) -> str:
    """``text`` as a pattern matching itself (RE2's quoting)."""
    return str(re2.escape(text))


def _reason(exc: Exception, pattern: str) -> str:
    raw = exc.args[0] if exc.args else str(exc)
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    lacks = next((what for prefixes, what in _LACKS if text.startswith(prefixes)), None)
    if lacks is None and text.startswith("invalid perl operator: (?P") and "(?P=" in pattern:
        lacks = "back-references"  # Python's named back-reference (?P=name)
    return f"{text} (RE2, which Flux uses, has no {lacks})" if lacks else text


def _has_any_byte(pattern: str) -> bool:
    """Whether ``pattern`` uses ``\\C`` outside an escaped backslash."""
    index = pattern.find("\\")
    while 0 <= index < len(pattern) - 1:
        if pattern[index + 1] == "C":
            return True
        index = pattern.find("\\", index + 2)
    return False
