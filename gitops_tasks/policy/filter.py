"""``spec.filterTags``: keep the tags ``pattern`` matches and order them by what ``extract`` makes.

As Flux does: the pattern is searched, not anchored (Go's ``FindStringSubmatchIndex``); the
extract template is expanded with Go's ``Regexp.Expand`` rules (below); the policy orders the
extracted values and the ORIGINAL tag is returned. When two tags extract to the same value the
later one in the list wins (Flux keeps them in a map keyed by the value).

Template rules (Go ``Regexp.Expand``): ``$name`` or ``${name}`` where a name is a run of letters,
digits and ``_`` (so ``$1x`` means group ``1x``, not group 1 then ``x``); a name that is a
number without a leading zero is a group index (``$0`` the whole match); ``$$`` is a literal
``$``; a ``$`` not followed by a valid reference is kept as is; an unmatched group expands to
``""``. Referring to a group the pattern lacks is refused when the filter is built.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gitops_tasks.objects.regex import Match, Pattern
from gitops_tasks.policy.base import NoMatchingTag, Policy


@dataclass(frozen=True)
class GroupRef:
    """``$1`` / ``${1}`` (an index) or ``$ts`` / ``${ts}`` (a name) in an extract template."""

    key: int | str

    def __str__(self) -> str:
        return f"${{{self.key}}}"


Template = tuple[str | GroupRef, ...]


def _name_char(ch: str) -> bool:
    return ch.isalpha() or ch.isdecimal() or ch == "_"


def _reference(text: str, start: int) -> tuple[GroupRef, int] | None:
    """The reference right after a ``$`` at ``start`` and where it ends, or ``None`` if malformed."""
    brace = text.startswith("{", start)
    end = start + 1 if brace else start
    while end < len(text) and _name_char(text[end]):
        end += 1
    name = text[start + 1 if brace else start : end]
    if not name:
        return None
    if brace:
        if not text.startswith("}", end):
            return None
        end += 1
    numeric = name.isascii() and name.isdigit() and (len(name) == 1 or name[0] != "0")
    return GroupRef(int(name) if numeric else name), end


def parse_template(text: str) -> Template:
    """Split an extract template into literal text and group references."""
    parts: list[str | GroupRef] = []
    literal: list[str] = []
    pos = 0
    while (dollar := text.find("$", pos)) >= 0:
        literal.append(text[pos:dollar])
        pos = dollar + 1
        if text.startswith("$", pos):
            literal.append("$")
            pos += 1
            continue
        found = _reference(text, pos)
        if found is None:
            literal.append("$")
            continue
        if "".join(literal):
            parts.append("".join(literal))
        literal = []
        parts.append(found[0])
        pos = found[1]
    literal.append(text[pos:])
    if "".join(literal):
        parts.append("".join(literal))
    return tuple(parts)


def missing_groups(pattern: Pattern, template: Template) -> list[GroupRef]:
    """References in ``template`` to groups ``pattern`` does not have."""
    return [
        part
        for part in template
        if isinstance(part, GroupRef)
        and (part.key > pattern.groups if isinstance(part.key, int) else part.key not in pattern.groupindex)
    ]


def expand(template: Template, match: Match) -> str:
    out: list[str] = []
    for part in template:
        if isinstance(part, str):
            out.append(part)
        else:
            out.append(match.group(part.key) or "")
    return "".join(out)


@dataclass(frozen=True)
class TagFilter:
    """A compiled ``spec.filterTags``; ``template`` is ``None`` when there is no ``extract``."""

    pattern: Pattern
    template: Template | None = None

    def apply(self, tags: Iterable[str]) -> dict[str, str]:
        """Value to order by → original tag, for each tag the pattern matches (later tags win)."""
        kept: dict[str, str] = {}
        for tag in tags:
            if not self.pattern.matches(tag):
                continue
            match = self.pattern.search(tag)
            if match is not None:
                kept[expand(self.template, match) if self.template is not None else tag] = tag
        return kept


@dataclass(frozen=True)
class FilteredPolicy:
    """A policy applied to what a :class:`TagFilter` keeps; returns the original tag."""

    policy: Policy
    tag_filter: TagFilter

    def latest(self, tags: Iterable[str]) -> str:
        tags = list(tags)
        kept = self.tag_filter.apply(tags)
        pattern = self.tag_filter.pattern.pattern
        if not kept:
            raise NoMatchingTag("", considered=len(tags), passed_filter=0, pattern=pattern)
        try:
            return kept[self.policy.latest(kept)]
        except NoMatchingTag as exc:
            passed = sum(1 for tag in tags if self.tag_filter.pattern.matches(tag))
            why = exc.why + (" (after extract)" if self.tag_filter.template is not None else "")
            raise NoMatchingTag(why, considered=len(tags), passed_filter=passed, pattern=pattern) from None
