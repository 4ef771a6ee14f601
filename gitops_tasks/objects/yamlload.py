"""Multi-document YAML that remembers where every key and list item was written.

Objects are validated after parsing, so an error found in ``spec.ref.branch`` has to be traced
back to a line. The loader composes the node graph (libyaml when available), builds plain Python
values with PyYAML's safe constructor and records, beside them, the 1-based line of every mapping
key and sequence item, addressed by its path (``("spec", "include", 0, "repository")``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

#: A position in a document: mapping keys and sequence indexes from the root.
Path = tuple[str | int, ...]

#: Deeper nesting than this is refused (it also stops alias cycles from recursing forever).
MAX_DEPTH = 64

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YAMLSyntaxError(ValueError):
    """The text is not YAML. ``str()`` is ``file:line: YAML syntax error: ...``."""

    def __init__(self, filename: str, line: int, problem: str) -> None:
        super().__init__(f"{filename}:{line}: YAML syntax error: {problem}")
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
        while loader.check_node():
            node = loader.get_node()
            if node is None or _is_empty(node):
                continue
            data = loader.construct_document(node)
            doc = Document(filename=filename, line=node.start_mark.line + 1, data=data)
            _record(node, (), doc, 0)
            docs.append(doc)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise YAMLSyntaxError(filename, line, exc.problem or str(exc)) from None
    except yaml.YAMLError as exc:
        raise YAMLSyntaxError(filename, 1, str(exc)) from None
    except RecursionError:
        raise YAMLSyntaxError(filename, 1, "nesting too deep") from None
    finally:
        loader.dispose()
    return docs


def _is_empty(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _record(node: yaml.Node, path: Path, doc: Document, depth: int) -> None:
    if depth > MAX_DEPTH:
        doc.problems.append((node.start_mark.line + 1, f"nesting deeper than {MAX_DEPTH} levels"))
        return
    if isinstance(node, yaml.MappingNode):
        seen: set[str | int] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key: str | int = key_node.value
            child = (*path, key)
            line = key_node.start_mark.line + 1
            if key in seen:
                doc.problems.append((line, f"{format_path(child)}: duplicate key {key!r}"))
            seen.add(key)
            doc.lines[child] = line
            _record(value_node, child, doc, depth + 1)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            doc.lines[child] = item.start_mark.line + 1
            _record(item, child, doc, depth + 1)


def format_path(path: Path) -> str:
    """``("spec", "include", 0, "repository")`` → ``spec.include[0].repository``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out
