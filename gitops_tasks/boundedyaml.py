"""YAML read with bounds: aliases that expand too far and nesting too deep are refused (pure).

PyYAML resolves an alias to the very node its anchor names, so a 20-line document whose anchors
alias each other nine levels deep (the "billion laughs") composes to a few dozen nodes, yet
expands to 9**9 of them for whatever walks it as a tree: the object loader, JSON for Redis or the
API server, a setter. Every YAML reader of the project takes its documents from :func:`nodes`
(or :func:`safe_load`), which checks each document's node graph after it is composed and before
anything is built from it:

* **aliases**: the nodes a stream expands to may not exceed ``max(ALIAS_FLOOR_NODES,
  ALIAS_FACTOR × its distinct nodes)``. Ordinary manifests with a few anchors stay far below
  (each anchor reused a few times adds a few nodes); a bomb is refused at once, whatever its
  exponent. The floor lets a small file reuse anchors freely, the factor lets a big one use as
  many aliases as it likes, so long as expanding them costs at most ten times what the text
  itself costs to hold. The count is memoised per node, so the check costs one pass over the
  distinct nodes. An anchor used inside itself (a cycle, which no JSON object can hold) is refused.
* **nesting**: at most ``MAX_DEPTH`` levels. libyaml's composer recurses in C (tens of thousands of
  ``[`` crash the process) and PyYAML's in Python (a few hundred raise ``RecursionError``), so a
  text that *could* nest deeper is scanned event by event, without recursion, before either
  composer sees it.

The scans run only where they can find something: the alias walk when the text holds an anchor
(no anchor, no alias), the depth checks when one document's brackets or indentation allow deep
nesting, so ordinary manifests are composed by libyaml at its own speed.

Errors are :class:`YAMLLimitError`, a ``yaml.MarkedYAMLError`` whose ``problem`` says what was
refused and whose ``problem_mark`` is the document's first line (or, for nesting, the line
where it grows too deep), so every reader's existing YAML error path names file and line.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import Any

import yaml

#: Expansion every stream may reach through aliases, however small its text.
ALIAS_FLOOR_NODES = 100_000
#: Beyond the floor, a stream may expand to this many times its distinct nodes.
ALIAS_FACTOR = 10
#: Deepest nesting of collections accepted (Kubernetes objects, CRD schemas included, stay
#: well under 64; PyYAML's Python composer fails near 400 inside a worker thread, and libyaml's
#: C composer crashes the process somewhere past 20,000).
MAX_DEPTH = 200

_C_LOADER: Any = getattr(yaml, "CSafeLoader", None)
_START = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_END = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


class YAMLLimitError(yaml.MarkedYAMLError):
    """A document refused for what it would cost: aliases expanding too far, nesting too deep."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem=problem, problem_mark=mark)


def describe(exc: Exception) -> str:
    """``line 3: <problem>`` for a ``yaml.YAMLError`` (a :class:`YAMLLimitError` included), without
    PyYAML's ``in "<unicode string>"`` lines; ``str(exc)`` for anything else."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    return f"line {mark.line + 1}: {problem}" if mark is not None else problem


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` (libyaml when present) within the bounds; raises ``yaml.YAMLError``."""
    loader = (_C_LOADER or yaml.SafeLoader)(text)
    try:
        roots = list(nodes(loader, text))
        if len(roots) > 1:
            raise yaml.composer.ComposerError(
                "expected a single document in the stream",
                getattr(roots[0], "start_mark", None),
                "but found another document",
                getattr(roots[1], "start_mark", None),
            )
        return loader.construct_document(roots[0]) if roots and roots[0] is not None else None
    finally:
        loader.dispose()


def nodes(loader: Any, text: str) -> Iterator[yaml.Node | None]:
    """Each document's root node from ``loader`` (a PyYAML loader made from ``text``), checked.

    Raises :class:`YAMLLimitError` for a document out of bounds (before any later document is
    composed) and ``yaml.YAMLError`` for text that is not YAML.
    """
    if _may_nest_deeper(text, MAX_DEPTH):
        _check_event_depth(text)  # before the composers recurse
    budget = _Budget(len(text)) if _may_have_anchors(text) else None
    while loader.check_node():
        try:
            node = loader.get_node()
            if node is not None and budget is not None:
                budget.add(node)
        except RecursionError:
            raise YAMLLimitError(f"YAML nesting deeper than {MAX_DEPTH} levels", None) from None
        yield node


class _Budget:
    """Distinct and expanded nodes of a stream so far, and the bound on the expansion."""

    def __init__(self, text_chars: int) -> None:
        self.distinct = 0
        self.expanded = 0
        # Distinct nodes never outnumber characters, so no bound exceeds this: sizes are clamped
        # to it, keeping the arithmetic on small integers whatever the bomb's exponent.
        self.clamp = max(ALIAS_FLOOR_NODES, ALIAS_FACTOR * (text_chars + 1)) + 1

    def add(self, root: yaml.Node) -> None:
        distinct, expanded = _measure(root, self.clamp)
        self.distinct += distinct
        self.expanded = min(self.expanded + expanded, self.clamp)
        bound = max(ALIAS_FLOOR_NODES, ALIAS_FACTOR * self.distinct)
        if self.expanded > bound:
            raise YAMLLimitError(
                f"YAML aliases expand to more than {bound} nodes (the document has {distinct})",
                root.start_mark,
            )


def _measure(root: yaml.Node, clamp: int) -> tuple[int, int]:
    """``(distinct nodes, expanded nodes)`` under ``root``, each distinct node visited once.

    Recursive: :func:`nodes` has made sure the nesting is at most ``MAX_DEPTH``. Raises
    :class:`YAMLLimitError` for an anchor aliased inside itself.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        known = sizes.get(key)
        if known is not None:
            return known
        value = node.value
        if isinstance(value, str):
            sizes[key] = 1
            return 1
        if key in open_nodes:
            raise YAMLLimitError("YAML alias refers to its own anchor (a cycle)", node.start_mark)
        open_nodes.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in value:
                total += size(key_node) + size(value_node)
        else:
            for item in value:
                total += size(item)
        open_nodes.discard(key)
        sizes[key] = total = min(total, clamp)
        return total

    expanded = size(root)
    return len(sizes), expanded


#: An anchor: ``&`` starting a node, so after a space, a line break or a flow indicator.
_ANCHOR = re.compile(r"[\s\[{,:]&[^\s\[\]{},]")


def _may_have_anchors(text: str) -> bool:
    """False when ``text`` has no anchor, so no alias (``a=1&b=2`` in a URL is no anchor)."""
    return "&" in text and (text.startswith("&") or _ANCHOR.search(text) is not None)


@functools.lru_cache(maxsize=64)
def _deep_prefix(run: int) -> re.Pattern[str]:
    # A line starting with ``run`` characters of indentation and block indicators.
    return re.compile(rf"\n[ \t?:-]{{{run}}}")


def _may_nest_deeper(text: str, limit: int) -> bool:
    """Whether a document of ``text`` could hold collections nested more than ``limit`` deep.

    Flow nesting needs a ``[`` or ``{`` per level within one document (a ``---`` line ends every
    collection); block nesting needs its content further right than its parent's, except a
    sequence given as a mapping's value, so it stays within twice the longest run of indentation
    and indicators (``- - ``, ``? ``) that starts a line, plus one.
    """
    flow = _most_flow_openers(text)
    if flow >= limit:
        return True
    run = max(1, (limit - flow) // 2 - 1)
    prefix = _deep_prefix(run)
    return prefix.search(text) is not None or prefix.match("\n" + text[:run]) is not None


def _most_flow_openers(text: str) -> int:
    """The most ``[`` and ``{`` any one document of the stream holds (marker lines split it)."""
    most, start, pos = 0, 0, 0
    while True:
        marker = text.find("\n---", pos)
        if marker >= 0 and text[marker + 4 : marker + 5] not in ("", " ", "\t", "\r", "\n"):
            pos = marker + 4  # ``----`` or ``---x``: no document marker
            continue
        stop = len(text) if marker < 0 else marker
        most = max(most, text.count("[", start, stop) + text.count("{", start, stop))
        if marker < 0:
            return most
        start = pos = marker + 4


def _check_event_depth(text: str) -> None:
    """Refuse nesting deeper than ``MAX_DEPTH`` from the parser's events (no recursion)."""
    parser = (_C_LOADER or yaml.SafeLoader)(text)
    depth = 0
    try:
        while parser.check_event():
            event = parser.get_event()
            if isinstance(event, _START):
                depth += 1
                if depth > MAX_DEPTH:
                    raise YAMLLimitError(f"YAML nesting deeper than {MAX_DEPTH} levels", event.start_mark)
            elif isinstance(event, _END):
                depth -= 1
    finally:
        parser.dispose()
