"""The four ways a PATCH body changes an object. Pure: each returns a new value, inputs untouched.

- JSON merge patch (RFC 7386): maps merge, ``null`` deletes, lists are replaced.
- Strategic merge patch: like merge patch, but lists the schema keys (containers by ``name``, container
  ports by ``containerPort``, ...) merge item by item, set lists (``metadata.finalizers``) take the union,
  and the directives ``$patch: replace|delete|merge``, ``$retainKeys`` and
  ``$deleteFromPrimitiveList/<field>`` apply; ``$setElementOrder/<field>`` is accepted and ignored.
- JSON patch (RFC 6902): ``add``, ``remove``, ``replace``, ``move``, ``copy``, ``test``.
- Apply merge (server-side apply): maps merge, keyed lists merge by their full key, set lists take the
  union, everything else is replaced by the applied value.
"""

from __future__ import annotations

from typing import Any

from tests.kubeapi.fieldsets import keyed_items
from tests.kubeapi.objects import clone
from tests.kubeapi.schema import SchemaNode


class PatchError(ValueError):
    """A patch that cannot be applied (the server answers 422 for JSON patch ``test``, else 400)."""


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return clone(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def strategic_merge(target: Any, patch: Any, node: SchemaNode) -> Any:
    if not isinstance(patch, dict):
        return clone(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: clone(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            out[field] = [item for item in out.get(field) or [] if item not in value]
            continue
        child = node.field(key)
        if value is None:
            out.pop(key, None)
        elif isinstance(value, list):
            out[key] = _strategic_list(out.get(key), value, child)
        else:
            merged = strategic_merge(out.get(key), value, child)
            if merged is None:
                out.pop(key, None)
            else:
                out[key] = merged
    if isinstance(patch.get("$retainKeys"), list):
        retain = set(patch["$retainKeys"])
        out = {k: v for k, v in out.items() if k in retain}
    return out


def _strategic_list(live: Any, patch: list[Any], node: SchemaNode) -> list[Any]:
    live = live if isinstance(live, list) else []
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [clone(i) for i in patch if not (isinstance(i, dict) and i.get("$patch") == "replace")]
    keys = node.list_keys()
    if node.is_set():
        return [*live, *(item for item in patch if item not in live)]
    if not keys:
        return list(clone(patch))
    key = keys[0]  # the patch merge key: a single field
    out = list(live)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise PatchError(f"map: {item!r} does not contain declared merge key: {key}")
        index = next(
            (i for i, old in enumerate(out) if isinstance(old, dict) and old.get(key) == item[key]), None
        )
        if item.get("$patch") == "delete":
            if index is not None:
                del out[index]
        elif index is None:
            out.append({k: v for k, v in clone(item).items() if k != "$patch"})
        else:
            out[index] = strategic_merge(out[index], item, node.item())
    return out


def apply_merge(live: Any, applied: Any, node: SchemaNode) -> Any:
    """Merge an apply configuration into the live value (nulls are already stripped)."""
    if isinstance(applied, dict) and isinstance(live, dict) and not node.atomic_map():
        out = dict(live)
        for key, value in applied.items():
            out[key] = apply_merge(live.get(key), value, node.field(key))
        return out
    if isinstance(applied, list) and isinstance(live, list):
        if node.is_set():
            return live + [item for item in applied if item not in live]
        applied_elements = keyed_items(applied, node)
        live_elements = keyed_items(live, node)
        if applied_elements is not None and live_elements is not None:
            by_element = dict(zip(applied_elements, applied, strict=True))
            item_node = node.item()
            merged = [
                apply_merge(item, by_element.pop(element), item_node) if element in by_element else item
                for element, item in zip(live_elements, live, strict=True)
            ]
            return merged + [clone(item) for item in by_element.values()]
    return clone(applied)


def strip_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_nulls(v) for v in value]
    return value


# -- JSON patch -------------------------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _parent(doc: Any, parts: list[str]) -> tuple[Any, str]:
    node = doc
    for part in parts[:-1]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise PatchError(f"doc is missing path: /{'/'.join(parts)}")
    return node, parts[-1]


def _get(doc: Any, parts: list[str]) -> Any:
    if not parts:
        return doc
    parent, last = _parent(doc, parts)
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent[int(last)]
    raise PatchError(f"doc is missing path: /{'/'.join(parts)}")


def _remove(doc: Any, parts: list[str]) -> Any:
    value = _get(doc, parts)
    parent, last = _parent(doc, parts)
    if isinstance(parent, dict):
        del parent[last]
    else:
        del parent[int(last)]
    return value


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent, last = _parent(doc, parts)
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        index = len(parent) if last == "-" else int(last) if last.isdigit() else -1
        if not 0 <= index <= len(parent):
            raise PatchError(f"insert index out of range: {last}")
        parent.insert(index, value)
    else:
        raise PatchError(f"cannot add at /{'/'.join(parts)}")
    return doc


def json_patch(doc: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = clone(doc)
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise PatchError(f"invalid JSON patch operation {operation!r}")
        op, parts = operation["op"], _pointer(operation["path"])
        if op == "add":
            doc = _add(doc, parts, clone(operation.get("value")))
        elif op == "remove":
            _remove(doc, parts)
        elif op == "replace":
            _get(doc, parts)
            if parts:
                parent, last = _parent(doc, parts)
                parent[int(last) if isinstance(parent, list) else last] = clone(operation.get("value"))
            else:
                doc = clone(operation.get("value"))
        elif op in ("move", "copy"):
            source = _pointer(operation.get("from", ""))
            value = _remove(doc, source) if op == "move" else clone(_get(doc, source))
            doc = _add(doc, parts, value)
        elif op == "test":
            if _get(doc, parts) != operation.get("value"):
                raise PatchError(f"testing value /{'/'.join(parts)} failed")
        else:
            raise PatchError(f"unknown JSON patch operation {op!r}")
    return doc
