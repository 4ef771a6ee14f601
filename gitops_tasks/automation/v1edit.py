"""Byte-exact edits of Flux v1 workloads: container images and ``metadata.annotations`` (pure).

Everything outside the edited span is kept, as in :mod:`.setters`. Images keep their quoting.
A new annotation is written as ``key: "value"`` on its own line under the existing ones, with
their indentation and the file's line endings; when the workload has no annotations an
``annotations:`` block is added as the last key of ``metadata``. Flow-style maps (``{}``) get the
pair added inside the braces. Removing the only annotation removes the ``annotations:`` key too.
Every edit is re-parsed and checked before it is returned; :class:`EditError` otherwise.
"""

from __future__ import annotations

import yaml

from gitops_tasks.automation.v1 import Container, Workload, workloads_in_text
from gitops_tasks.automation.yamltext import (
    Replacement,
    YAMLTextError,
    apply_replacements,
    child_at,
    compose,
    content_start,
    plain_ok,
    render_scalar,
)

DOUBLE = '"'
#: Indentation step used when a new nested block cannot copy one from the file.
DEFAULT_INDENT = 2


class EditError(ValueError):
    """The edit cannot be made safely; the message says why (the caller leaves the file alone)."""


def set_images(text: str, edits: list[tuple[Container, str]]) -> str:
    """``text`` with each container's image set (containers from :func:`~.v1.workloads_in_text`
    on this very text)."""
    replacements = [
        Replacement(c.start, c.end, render_scalar(image, c.style), image)
        for c, image in edits
        if c.image != image
    ]
    if not replacements:
        return text
    try:
        return apply_replacements(text, replacements)
    except YAMLTextError as exc:
        raise EditError(f"cannot rewrite the image: {exc}") from None


def _eol(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _line_start(text: str, index: int) -> int:
    return max(text.rfind("\n", 0, index), text.rfind("\r", 0, index)) + 1


def _line_after(text: str, index: int) -> int:
    """The index where the line holding ``index`` ends, line break included."""
    if index > 0 and text[index - 1] == "\n":
        return index
    newline = text.find("\n", index)
    return len(text) if newline < 0 else newline + 1


def _last_end(node: yaml.Node) -> int:
    """Where the last scalar (or flow collection) of ``node``'s subtree ends."""
    if isinstance(node, yaml.ScalarNode) or getattr(node, "flow_style", False) or not node.value:
        return int(node.end_mark.index)
    last = node.value[-1]
    return _last_end(last[1] if isinstance(last, tuple) else last)


def _key(key: str) -> str:
    return key if plain_ok(key) else render_scalar(key, '"')


def _insert_block(text: str, mapping: yaml.MappingNode, lines: list[str]) -> str:
    at = _line_after(text, _last_end(mapping))
    eol = _eol(text)
    prefix = "" if at == 0 or text[at - 1] == "\n" else eol
    return text[:at] + prefix + "".join(line + eol for line in lines) + text[at:]


def _insert_flow(text: str, mapping: yaml.MappingNode, pair: str) -> str:
    close = int(mapping.end_mark.index) - 1
    if text[close] != "}":
        raise EditError("unexpected flow mapping layout")
    separator = ", " if mapping.value else ""
    return text[:close] + separator + pair + text[close:]


def _edit(text: str, workload: Workload, key: str, value: str | None) -> str:
    roots = compose(text)
    root = roots[workload.doc_index]
    meta = child_at(root, "metadata")
    if not isinstance(meta, yaml.MappingNode) or not meta.value:
        raise EditError(f"{workload.id}: metadata is not a mapping")
    notes = child_at(meta, "annotations")
    pair = f"{_key(key)}: {render_scalar(value, DOUBLE)}" if value is not None else ""
    entry = None
    if isinstance(notes, yaml.MappingNode):
        entry = next(
            (kv for kv in notes.value if isinstance(kv[0], yaml.ScalarNode) and kv[0].value == key), None
        )
    if value is None:
        if entry is None or not isinstance(notes, yaml.MappingNode):
            return text
        if notes.flow_style:
            kept = [
                f"{text[k.start_mark.index : v.end_mark.index]}" for k, v in notes.value if (k, v) != entry
            ]
            start, end = notes.start_mark.index, notes.end_mark.index
            return text[:start] + "{" + ", ".join(kept) + "}" + text[end:]
        first = entry[0] if len(notes.value) > 1 else next(k for k, v in meta.value if v is notes)
        return (
            text[: _line_start(text, first.start_mark.index)] + text[_line_after(text, _last_end(entry[1])) :]
        )
    if entry is not None:
        old = entry[1]
        if not isinstance(old, yaml.ScalarNode):
            raise EditError(f"{workload.id}: annotation {key} is not a string")
        source = render_scalar(value, old.style if old.style in ("'", '"') else '"')
        return text[: content_start(text, old)] + source + text[old.end_mark.index :]
    if isinstance(notes, yaml.MappingNode) and notes.value and not notes.flow_style:
        indent = " " * notes.value[0][0].start_mark.column
        return _insert_block(text, notes, [indent + pair])
    if isinstance(notes, yaml.MappingNode):
        return _insert_flow(text, notes, pair)
    if isinstance(notes, yaml.ScalarNode):  # annotations: (null)
        start, end = notes.start_mark.index, notes.end_mark.index
        lead = " " if start == end and text[start - 1 : start] == ":" else ""
        return text[:start] + lead + "{" + pair + "}" + text[end:]
    if notes is not None:
        raise EditError(f"{workload.id}: metadata.annotations is not a mapping")
    if meta.flow_style:
        return _insert_flow(text, meta, f"annotations: {{{pair}}}")
    column = meta.value[0][0].start_mark.column
    outer = (
        next(k for k, v in root.value if v is meta).start_mark.column
        if isinstance(root, yaml.MappingNode)
        else 0
    )
    step = column - outer if column > outer else DEFAULT_INDENT
    return _insert_block(text, meta, [" " * column + "annotations:", " " * (column + step) + pair])


def set_annotation(text: str, workload: Workload, key: str, value: str | None) -> str:
    """``text`` with annotation ``key`` of ``workload`` set to ``value`` (``None`` removes it)."""
    try:
        new_text = _edit(text, workload, key, value)
        after = workloads_in_text(new_text, workload.file)
    except YAMLTextError as exc:
        raise EditError(f"{workload.id}: editing annotation {key} would break the file ({exc})") from None
    expected = dict(workload.annotations)
    if value is None:
        expected.pop(key, None)
    else:
        expected[key] = value
    found = next((w for w in after if w.doc_index == workload.doc_index), None)
    if found is None or dict(found.annotations) != expected or len(after) != len(workloads_in_text(text)):
        raise EditError(f"{workload.id}: editing annotation {key} did not read back as expected")
    return new_text
