"""Reading Kubernetes manifests from YAML text, with the file and line of every document (pure).

YAML is read the way ``kubectl`` reads it (YAML 1.1 booleans) except that timestamps stay strings,
so every object survives a JSON round trip to the API server unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from gitops_tasks.boundedyaml import YAMLLimitError, nodes

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ManifestLoader(_Base):
    """A safe loader that leaves timestamps as strings (as the API server would receive them)."""


ManifestLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _Base.yaml_implicit_resolvers.items()
}


@dataclass
class Manifest:
    """One object to apply and where it came from (for error messages)."""

    obj: dict[str, Any]
    #: ``apps/web.yaml: document 2 (line 14)`` or ``kustomize build of apps/prod: document 3``.
    origin: str


class ManifestError(ValueError):
    """A document that is not a valid Kubernetes object; the message names file and document."""


def documents(text: str, origin: str) -> Iterator[tuple[int, int, Any]]:
    """Yield ``(index, line, data)`` for each non-empty YAML document (index and line from 1).

    Raises :class:`ManifestError` naming ``origin`` and the line on a YAML syntax error, and the
    document too for one refused by :mod:`gitops_tasks.boundedyaml` (aliases, nesting).
    """
    loader = ManifestLoader(text)
    index = 0
    try:
        for node in nodes(loader, text):
            index += 1
            if node is None:
                continue
            data = loader.construct_document(node)
            if data is not None:
                yield index, node.start_mark.line + 1, data
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        if isinstance(exc, YAMLLimitError):
            line = f" (line {mark.line + 1})" if mark is not None else ""
            raise ManifestError(f"{origin}: document {index + 1}{line}: {problem}") from None
        raise ManifestError(f"{origin}: invalid YAML{where}: {problem}") from None
    finally:
        loader.dispose()


def _check(obj: Any, where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ManifestError(f"{where}: expected a Kubernetes object (a mapping), got {type(obj).__name__}")
    missing = [f for f in ("apiVersion", "kind") if not isinstance(obj.get(f), str) or not obj.get(f)]
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta.get("name"):
        missing.append("metadata.name")
    if missing:
        kind = obj.get("kind") if isinstance(obj.get("kind"), str) else "object"
        raise ManifestError(f"{where}: {kind} is missing {', '.join(missing)}")
    return obj


def _is_list(data: Any) -> bool:
    """``kind: List`` (or ``FooList``) wrapping items, without a name of its own."""
    if not isinstance(data, dict) or not str(data.get("kind", "")).endswith("List"):
        return False
    return "items" in data and not (data.get("metadata") or {}).get("name")


def parse(text: str, origin: str, *, with_lines: bool = True) -> list[Manifest]:
    """Parse a multi-document YAML stream into manifests; a ``List`` contributes its items.

    Every object needs ``apiVersion``, ``kind`` and ``metadata.name``; the first that lacks one
    raises :class:`ManifestError` naming ``origin``, the document index and (``with_lines``) line.
    """
    out: list[Manifest] = []
    for index, line, data in documents(text, origin):
        where = f"{origin}: document {index}" + (f" (line {line})" if with_lines else "")
        if _is_list(data):
            items = data.get("items") or []
            if not isinstance(items, list):
                raise ManifestError(f"{where}: {data.get('kind')} items must be a list")
            for number, item in enumerate(items, 1):
                out.append(Manifest(_check(item, f"{where} item {number}"), f"{where} item {number}"))
            continue
        out.append(Manifest(_check(data, where), where))
    return out


def dump(obj: dict[str, Any]) -> str:
    """YAML text of one object (block style, keys in their order, no line folding)."""
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False, width=1_000_000)


def load_one(text: str, origin: str) -> dict[str, Any]:
    """Parse the single object ``dump`` wrote (after substitution). Raises :class:`ManifestError`."""
    docs = list(documents(text, origin))
    if len(docs) != 1:
        raise ManifestError(f"{origin}: expected one object, got {len(docs)}")
    return _check(docs[0][2], origin)
