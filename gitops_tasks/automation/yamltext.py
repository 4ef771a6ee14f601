"""Byte-exact edits of YAML text: find scalars with the parser, replace only their source spans.

PyYAML's composer gives every node its start and end position (character offsets into the text
it was given), so a value can be replaced without re-serialising the document: comments,
indentation, key order, quoting of other values, ``---`` separators, CRLF line endings and a
missing final newline all stay as they were. Only the pure-Python loader is used: its marks are
character offsets into the ``str`` it parsed.

Pure: no I/O.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import yaml

from gitops_tasks.boundedyaml import nodes

_STR_TAG = "tag:yaml.org,2002:str"
# An anchor (&a) and/or a tag (!t, !!str, !<uri>) before a node's content.
_PROPERTIES = re.compile(r"(?:[&!]\S*\s+)+")
_RESOLVER = yaml.resolver.Resolver()
# Characters that may not start a plain scalar, or that are unsafe anywhere in one (flow context).
_PLAIN_BAD_START = set("-?:,[]{}#&*!|>'\"%@`")
_PLAIN_BAD_ANY = set(",[]{}")


class YAMLTextError(ValueError):
    """The text is not YAML the composer accepts; ``str()`` names the line."""


@dataclass(frozen=True)
class DocumentId:
    """Who a document is: Kubernetes-style ``apiVersion``, ``kind``, ``metadata.name``/``namespace``."""

    api_version: str | None = None
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None


@dataclass(frozen=True)
class ValueScalar:
    """A scalar that is a mapping value or a sequence item (never a mapping key)."""

    node: yaml.ScalarNode
    #: Where the scalar's own text starts (after any anchor or tag).
    start: int
    document: DocumentId
    #: Index of the document in the stream (0-based).
    doc_index: int
    #: Mapping keys from the document root down to this scalar (sequence positions as ints).
    path: tuple[str | int, ...]

    @property
    def end(self) -> int:
        return int(self.node.end_mark.index)

    @property
    def line(self) -> int:
        """1-based line where the scalar ends (where a line comment marker sits)."""
        return int(self.node.end_mark.line) + 1


def compose(text: str) -> list[yaml.Node]:
    """Every document's root node. Raises :class:`YAMLTextError` naming the line (also for YAML
    refused by :mod:`gitops_tasks.boundedyaml`: aliases expanding too far, nesting too deep)."""
    loader = yaml.SafeLoader(text)
    try:
        return [doc for doc in nodes(loader, text) if doc is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise YAMLTextError(f"{where}{problem}") from None
    finally:
        loader.dispose()


def scalar_at(node: yaml.Node | None, key: str) -> str | None:
    """The scalar value of ``key`` in mapping ``node`` (None when absent or not a scalar)."""
    child = child_at(node, key)
    return child.value if isinstance(child, yaml.ScalarNode) else None


def child_at(node: yaml.Node | None, key: str) -> yaml.Node | None:
    """The value node of ``key`` in mapping ``node`` (the last one if the key repeats)."""
    if not isinstance(node, yaml.MappingNode):
        return None
    found = None
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            found = v
    return found


def document_id(root: yaml.Node) -> DocumentId:
    meta = child_at(root, "metadata")
    return DocumentId(
        api_version=scalar_at(root, "apiVersion"),
        kind=scalar_at(root, "kind"),
        name=scalar_at(meta, "name"),
        namespace=scalar_at(meta, "namespace"),
    )


def content_start(text: str, node: yaml.Node) -> int:
    """Where ``node``'s own text starts: its start mark, after any anchor and tag."""
    start = int(node.start_mark.index)
    match = _PROPERTIES.match(text, start)
    return match.end() if match and match.end() <= int(node.end_mark.index) else start


def value_scalars(text: str, roots: list[yaml.Node] | None = None) -> Iterator[ValueScalar]:
    """Every value scalar of every document of ``text`` (composed unless ``roots`` are given)."""
    if roots is None:
        roots = compose(text)
    for index, root in enumerate(roots):
        ident = document_id(root)
        seen: set[int] = set()  # aliases may point at a node twice
        stack: list[tuple[yaml.Node, tuple[str | int, ...]]] = [(root, ())]
        while stack:
            node, path = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, yaml.ScalarNode):
                yield ValueScalar(node, content_start(text, node), ident, index, path)
            elif isinstance(node, yaml.MappingNode):
                for k, v in reversed(node.value):
                    label = k.value if isinstance(k, yaml.ScalarNode) else "?"
                    stack.append((v, (*path, label)))
            elif isinstance(node, yaml.SequenceNode):
                for i, item in reversed(list(enumerate(node.value))):
                    stack.append((item, (*path, i)))


def line_rest(text: str, index: int) -> str:
    """The text from ``index`` to the end of its line (line break excluded, CR or LF or CRLF)."""
    match = re.compile(r"[^\r\n]*").match(text, index)
    return match.group(0) if match else ""


def resolves_to_str(value: str) -> bool:
    """Whether ``value`` written plain would be read back as a string (not a number, bool, null)."""
    return bool(_RESOLVER.resolve(yaml.ScalarNode, value, (True, False)) == _STR_TAG)


def plain_ok(value: str) -> bool:
    """Whether ``value`` can be written as a plain scalar and read back as the same string."""
    if not value or value != value.strip() or value[0] in _PLAIN_BAD_START:
        return False
    if any(c in _PLAIN_BAD_ANY for c in value) or ": " in value or " #" in value or value.endswith(":"):
        return False
    if any(ord(c) < 0x20 or c == "\x7f" for c in value):
        return False
    return resolves_to_str(value)


def render_scalar(value: str, style: str | None) -> str:
    """Source text for ``value`` in the quoting ``style`` of the scalar it replaces.

    ``'`` and ``"`` keep their quotes; a plain scalar stays plain unless the new value would not
    read back as the same string (``1.10`` is a float, ``a: b`` a mapping), then it is
    double-quoted. Never produces a block scalar.
    """
    if style == "'" and "\n" not in value and "\r" not in value:
        return "'" + value.replace("'", "''") + "'"
    if style is None and plain_ok(value):
        return value
    return json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True)
class Replacement:
    """Replace ``text[start:end]`` with ``source``; ``value`` is what it must read back as."""

    start: int
    end: int
    source: str
    value: str


def apply_replacements(text: str, replacements: list[Replacement]) -> str:
    """``text`` with every replacement applied, then re-parsed to prove each reads back right.

    Raises :class:`YAMLTextError` if the result does not parse or a value reads back differently
    (the caller then leaves the file untouched).
    """
    ordered = sorted(replacements, key=lambda r: r.start)
    for before, after in itertools.pairwise(ordered):
        if after.start < before.end:
            raise YAMLTextError(f"overlapping edits at offset {after.start}")
    out: list[str] = []
    cursor = 0
    expected: dict[int, str] = {}
    shift = 0
    for rep in ordered:
        out.append(text[cursor : rep.start])
        out.append(rep.source)
        expected[rep.start + shift] = rep.value
        shift += len(rep.source) - (rep.end - rep.start)
        cursor = rep.end
    out.append(text[cursor:])
    new_text = "".join(out)
    found = {s.start: s.node.value for s in value_scalars(new_text) if s.start in expected}
    for start, value in expected.items():
        if found.get(start) != value:
            raise YAMLTextError(f"edit at offset {start} did not read back as {value!r}")
    return new_text
