"""Multi-document YAML that remembers where every key and list item was written.

Objects are validated after parsing, so an error found in ``spec.ref.branch`` has to be traced
back to a line. The loader composes the node graph (libyaml when available), builds plain Python
values with PyYAML's safe constructor and records, beside them, the 1-based line of every mapping
key and sequence item, addressed by its path (``("spec", "include", 0, "repository")``).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import ConstructorError

from gitops_tasks.boundedyaml import YAMLLimitError, nodes

#: A position in a document: mapping keys and sequence indexes from the root.
Path = tuple[str | int, ...]

#: Deeper nesting than this is refused (it also stops alias cycles from recursing forever).
MAX_DEPTH = 64

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class YAMLSyntaxError(ValueError):
    """The text is not YAML. ``str()`` is ``file:line: YAML syntax error: ...``, or, for YAML
    refused for its cost (``refused``, see :mod:`gitops_tasks.boundedyaml`), ``file:line: ...``."""

    def __init__(self, filename: str, line: int, problem: str, *, refused: bool = False) -> None:
        super().__init__(f"{filename}:{line}: {'' if refused else 'YAML syntax error: '}{problem}")
        self.filename = filename
        self.line = line
        self.problem = problem


@dataclass
class Document:
    """One non-empty YAML document and the lines its keys and items were written on."""

    filename: str
    #: 1-based line of the document's first node (after any ``---``).
    line: int
    data: Any
    lines: dict[Path, int] = field(default_factory=dict)
    #: ``(line, message)`` for things YAML allows but an object must not have (duplicate keys).
    problems: list[tuple[int, str]] = field(default_factory=list)

    def line_of(self, path: Path) -> int:
        """The line of ``path``, or of its nearest recorded ancestor (a missing field's parent)."""
        lines = self.lines
        while path:
            found = lines.get(path)
            if found is not None:
                return found
            path = path[:-1]
        return self.line


def load_documents(text: str, *, filename: str) -> list[Document]:
    """Parse every document in ``text``; empty documents (a bare ``---``) are skipped.

    Raises :class:`YAMLSyntaxError` naming the file and line when the text is not valid YAML.
    """
    loader = _Loader(text)
    docs: list[Document] = []
    try:
        for node in nodes(loader, text):
            if node is None or _is_empty(node):
                continue
            doc = Document(filename=filename, line=node.start_mark.line + 1, data=None)
            doc.data = _Builder(loader, doc).build(node, (), 0)
            loader.constructed_objects = {}
            docs.append(doc)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        limit = isinstance(exc, YAMLLimitError)
        raise YAMLSyntaxError(filename, line, exc.problem or str(exc), refused=limit) from None
    except yaml.YAMLError as exc:
        raise YAMLSyntaxError(filename, 1, str(exc)) from None
    finally:
        loader.dispose()
    return docs


def _is_empty(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _NULL


class _Builder:
    """Builds plain values from nodes and records lines in one walk.

    Plain strings, mappings and lists are built here (the bulk of any object, and several times
    faster than PyYAML's generic constructor). Timestamps stay text, as Kubernetes keeps them.
    Other scalars (ints, bools, floats), tagged collections and mappings using ``<<`` merges go
    to the safe constructor.
    """

    def __init__(self, loader: yaml.SafeLoader, doc: Document) -> None:
        self.loader = loader
        self.doc = doc

    def build(self, node: yaml.Node, path: Path, depth: int) -> Any:
        if depth > MAX_DEPTH:
            self.doc.problems.append((node.start_mark.line + 1, f"nesting deeper than {MAX_DEPTH} levels"))
            return None
        tag = node.tag
        if tag in (_STR, _TIMESTAMP):
            return node.value
        if (
            isinstance(node, yaml.MappingNode)
            and tag == _MAP
            and not any(k.tag == _MERGE for k, _ in node.value)
        ):
            return self._mapping(node, path, depth)
        if tag == _SEQ:
            out: list[Any] = []
            for index, item in enumerate(node.value):
                self.doc.lines[(*path, index)] = item.start_mark.line + 1
                out.append(self.build(item, (*path, index), depth + 1))
            return out
        if isinstance(node, yaml.CollectionNode):
            _record(node, path, self.doc, depth)
        return self.loader.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: Path, depth: int) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = (
                key_node.value if key_node.tag == _STR else self.loader.construct_object(key_node, deep=True)
            )
            if not isinstance(key, Hashable):
                raise ConstructorError(None, None, "found an unhashable mapping key", key_node.start_mark)
            child = (*path, key if isinstance(key, str | int) else str(key))
            line = key_node.start_mark.line + 1
            if key in out:
                self.doc.problems.append((line, f"{format_path(child)}: duplicate key {key!r}"))
            self.doc.lines[child] = line
            out[key] = self.build(value_node, child, depth + 1)
        return out


def _record(node: yaml.Node, path: Path, doc: Document, depth: int) -> None:
    """Record lines only (for the rare nodes the safe constructor builds)."""
    if depth > MAX_DEPTH:
        return
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                child = (*path, key_node.value)
                doc.lines[child] = key_node.start_mark.line + 1
                _record(value_node, child, doc, depth + 1)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            doc.lines[(*path, index)] = item.start_mark.line + 1
            _record(item, (*path, index), doc, depth + 1)


def format_path(path: Path) -> str:
    """``("spec", "include", 0, "repository")`` → ``spec.include[0].repository``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out
