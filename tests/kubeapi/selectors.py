"""Label and field selectors as list and deletecollection requests carry them. Pure.

Label selectors follow the Kubernetes syntax: ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``,
``k notin (a,b)``, ``k`` (exists), ``!k`` (does not exist), ``k>1`` and ``k<1`` (integer values),
requirements joined by commas (AND). Field selectors support ``metadata.name`` and
``metadata.namespace`` with ``=``, ``==`` and ``!=``, like most resources on a real server.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from tests.kubeapi.errors import ApiError, bad_request

Matcher = Callable[[Mapping[str, str]], bool]

_KEY = r"(?:[A-Za-z0-9][-A-Za-z0-9_.]*/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_KEY_RE = re.compile(_KEY)
_VALUE_RE = re.compile(_VALUE)
_SET_RE = re.compile(rf"\s*({_KEY})\s+(in|notin)\s*\(([^)]*)\)\s*")
_CMP_RE = re.compile(rf"\s*({_KEY})\s*(==|!=|=|>|<)\s*([^,]*?)\s*")
_EXISTS_RE = re.compile(rf"\s*(!?)\s*({_KEY})\s*")

#: Field selector labels every resource supports.
FIELD_LABELS = ("metadata.name", "metadata.namespace")


def split_requirements(selector: str) -> list[str]:
    """Split on commas that are not inside ``( )``."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part for part in parts if part.strip()]


def _requirement(text: str) -> Matcher:
    if match := _SET_RE.fullmatch(text):
        key, op, raw = match.groups()
        values = {value.strip() for value in raw.split(",")}
        if not all(_VALUE_RE.fullmatch(value) for value in values):
            raise ValueError(f"invalid label value in {text!r}")
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if match := _CMP_RE.fullmatch(text):
        key, op, value = match.groups()
        if op in "<>":
            bound, sign = int(value), 1 if op == ">" else -1
            return lambda labels: (
                (number := _as_int(labels.get(key))) is not None and (number - bound) * sign > 0
            )
        if not _VALUE_RE.fullmatch(value):
            raise ValueError(f"invalid label value: {value!r}")
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if match := _EXISTS_RE.fullmatch(text):
        negate, key = match.group(1) == "!", match.group(2)
        if negate:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise ValueError(f"unable to parse requirement: {text!r}")


def _as_int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def parse_label_selector(selector: str | None) -> Matcher:
    """A predicate over a label map; raises 400 BadRequest when the selector does not parse."""
    if not selector or not selector.strip():
        return lambda labels: True
    try:
        requirements = [_requirement(part) for part in split_requirements(selector)]
    except ValueError as exc:
        raise bad_request(f"unable to parse requirement: {exc}") from None
    return lambda labels: all(requirement(labels) for requirement in requirements)


def parse_field_selector(selector: str | None) -> Callable[[dict[str, Any]], bool]:
    """A predicate over an object; raises 400 BadRequest for unsupported field labels."""
    if not selector or not selector.strip():
        return lambda obj: True
    tests: list[Callable[[dict[str, Any]], bool]] = []
    for part in selector.split(","):
        match = re.fullmatch(r"\s*([A-Za-z.]+)\s*(==|!=|=)\s*(.*?)\s*", part)
        if not match:
            raise bad_request(f"invalid selector: {selector!r}; can't understand {part!r}")
        label, op, value = match.groups()
        if label not in FIELD_LABELS:
            raise ApiError(400, "BadRequest", f"field label not supported: {label}")
        attr = label.split(".", 1)[1]

        def test(obj: dict[str, Any], attr: str = attr, op: str = op, value: str = value) -> bool:
            actual = (obj.get("metadata") or {}).get(attr) or ""
            return actual != value if op == "!=" else actual == value

        tests.append(test)
    return lambda obj: all(test(obj) for test in tests)


def valid_label_key(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", prefix)):
        return False
    return 0 < len(name) <= 63 and bool(re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", name))


def valid_label_value(value: str) -> bool:
    return len(value) <= 63 and bool(_VALUE_RE.fullmatch(value))
