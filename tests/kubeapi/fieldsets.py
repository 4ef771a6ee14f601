"""Field paths and field sets in the ``FieldsV1`` format that ``metadata.managedFields`` uses. Pure.

A path is a tuple of ``FieldsV1`` keys: ``f:<field>`` for a map key, ``k:<json>`` for an item of a list
merged by key (``k:{"name":"app"}``), ``v:<json>`` for an item of a set list. :func:`leaves` maps every
owned path of an object to the value there; list items of keyed lists are owned themselves too (the
``.`` entry in ``FieldsV1``). Atomic lists and maps are single leaves.
"""

from __future__ import annotations

import json
from typing import Any

from tests.kubeapi.schema import SchemaNode

Path = tuple[str, ...]

#: Value recorded for a keyed list item itself (its presence, not its content).
ITEM = object()

#: Metadata fields the server owns; they never appear in managed fields.
SYSTEM_METADATA = frozenset(
    {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
    }
)


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def item_key(item: Any, keys: tuple[str, ...], defaults: dict[str, Any]) -> str | None:
    """``k:{...}`` for a keyed list item, None when the item lacks a key field that has no default."""
    if not isinstance(item, dict) or any(key not in item and key not in defaults for key in keys):
        return None
    return "k:" + compact({key: item.get(key, defaults.get(key)) for key in keys})


def keyed_items(items: list[Any], node: SchemaNode) -> list[str] | None:
    """The ``k:`` path element of each item, or None when the list must be treated as atomic."""
    keys = node.list_keys()
    if not keys:
        return None
    defaults = node.key_defaults()
    elements = [item_key(item, keys, defaults) for item in items]
    if any(element is None for element in elements) or len(set(elements)) != len(elements):
        return None
    return elements  # type: ignore[return-value]


def leaves(obj: dict[str, Any], root: SchemaNode, *, with_status: bool) -> dict[Path, Any]:
    """Every owned path of ``obj`` with its value (:data:`ITEM` for keyed list items)."""
    out: dict[Path, Any] = {}
    for name, value in obj.items():
        if name in ("apiVersion", "kind") or (name == "status" and not with_status):
            continue
        if name == "metadata" and isinstance(value, dict):
            node = root.field("metadata")
            for meta_name, meta_value in value.items():
                if meta_name not in SYSTEM_METADATA:
                    _walk(meta_value, node.field(meta_name), ("f:metadata", f"f:{meta_name}"), out)
            continue
        _walk(value, root.field(name), (f"f:{name}",), out)
    return out


def _walk(value: Any, node: SchemaNode, path: Path, out: dict[Path, Any]) -> None:
    if isinstance(value, dict):
        if not value or node.atomic_map():
            out[path] = value
            return
        for name, child in value.items():
            _walk(child, node.field(name), (*path, f"f:{name}"), out)
    elif isinstance(value, list):
        elements = keyed_items(value, node) if value else None
        if elements is not None:
            item_node = node.item()
            for element, item in zip(elements, value, strict=True):
                item_path = (*path, element)
                out[item_path] = ITEM
                for name, child in item.items():
                    _walk(child, item_node.field(name), (*item_path, f"f:{name}"), out)
        elif value and node.is_set():
            for item in value:
                out[(*path, "v:" + compact(item))] = item
        else:
            out[path] = value
    else:
        out[path] = value


def prefixes(paths: set[Path] | dict[Path, Any]) -> set[Path]:
    """Every path and all its ancestors."""
    out: set[Path] = set()
    for path in paths:
        for end in range(1, len(path) + 1):
            out.add(path[:end])
    return out


def to_fields_v1(paths: set[Path]) -> dict[str, Any]:
    """Nest a set of paths as ``FieldsV1`` (a node owned itself and with children gets ``.``)."""
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for element in path:
            node = node.setdefault(element, {})
    for path in paths:
        node = tree
        for element in path:
            node = node[element]
        if node:
            node["."] = {}
    return tree


def from_fields_v1(tree: dict[str, Any], base: Path = ()) -> set[Path]:
    out: set[Path] = set()
    for element, child in tree.items():
        if element == ".":
            out.add(base)
        elif child:
            out |= from_fields_v1(child, (*base, element))
        else:
            out.add((*base, element))
    return out


def _find_item(items: list[Any], element: str) -> int | None:
    kind, _, raw = element.partition(":")
    target = json.loads(raw)
    for index, item in enumerate(items):
        if kind == "k" and isinstance(item, dict) and all(item.get(k) == v for k, v in target.items()):
            return index
        if kind == "v" and item == target:
            return index
    return None


def remove_path(obj: dict[str, Any], path: Path) -> None:
    """Delete the field or list item at ``path``, dropping maps and lists the removal leaves empty."""
    trail: list[tuple[Any, Any]] = []
    node: Any = obj
    for element in path:
        if element.startswith("f:") and isinstance(node, dict) and element[2:] in node:
            trail.append((node, element[2:]))
            node = node[element[2:]]
        elif element[:2] in ("k:", "v:") and isinstance(node, list):
            index = _find_item(node, element)
            if index is None:
                return
            trail.append((node, index))
            node = node[index]
        else:
            return
    while trail:
        container, where = trail.pop()
        del container[where]
        if container or not trail or isinstance(trail[-1][0], list):
            return  # a list item is never dropped for becoming empty


def is_key_field(path: Path) -> bool:
    """True for a key field of a keyed list item (``...k:{"name":"a"}, f:name``): never removed alone."""
    if len(path) < 2 or not path[-2].startswith("k:") or not path[-1].startswith("f:"):
        return False
    return path[-1][2:] in json.loads(path[-2][2:])


def describe(path: Path) -> str:
    """``.spec.template.spec.containers[name="app"].image``: a path as conflict messages print it."""
    out = []
    for element in path:
        kind, _, raw = element.partition(":")
        if kind == "f":
            out.append(f".{raw}")
        elif kind == "k":
            fields = json.loads(raw)
            out.append("[" + ",".join(f"{k}={json.dumps(v)}" for k, v in fields.items()) + "]")
        else:
            out.append(f"[={raw}]")
    return "".join(out)
