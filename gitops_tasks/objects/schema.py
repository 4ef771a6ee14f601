"""A small declarative schema for object specs, checked without stopping at the first error.

Each node checks one value and appends :class:`FieldError` s (a path and a message) to a shared
list, so one pass reports every problem in a document. Mappings reject fields they do not declare
and treat ``null`` as absent, as the Kubernetes API does for optional fields.
"""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gitops_tasks.objects.durations import parse_duration
from gitops_tasks.objects.regex import RegexError, compile_regex
from gitops_tasks.objects.yamlload import Path, format_path


@dataclass(frozen=True)
class FieldError:
    path: Path
    message: str

    def __str__(self) -> str:
        return f"{format_path(self.path)}: {self.message}" if self.path else self.message


#: A check on a whole mapping once its fields are well typed (``exactly one of ...``).
Rule = Callable[[dict[str, Any], Path], list[FieldError]]


def show(value: Any) -> str:
    """A value as the user wrote it in YAML, for ``got ...`` in messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return repr(value)
    return str(value)


class Node(ABC):
    """One schema node. ``check`` appends errors for ``value`` found at ``path``."""

    @abstractmethod
    def check(self, value: Any, path: Path, errors: list[FieldError]) -> None:
        """Append an error for each problem of ``value`` (found at ``path``) to ``errors``."""


class AnyValue(Node):
    """Free-form: anything YAML can hold."""

    def check(self, value: Any, path: Path, errors: list[FieldError]) -> None:
        return None


class Bool(Node):
    def check(self, value: Any, path: Path, errors: list[FieldError]) -> None:
        if not isinstance(value, bool):
            errors.append(FieldError(path, f"expected true or false, got {show(value)}"))


class Int(Node):
    def __init__(self, *, minimum: int | None = None) -> None:
        self.minimum = minimum

    def check(self, value: Any, path: Path, errors: list[FieldError]) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append(FieldError(path, f"expected an integer, got {show(value)}"))
        elif self.minimum is not None and value < self.minimum:
            errors.append(FieldError(path, f"must be at least {self.minimum}, got {value}"))


class Str(Node):
    """A string, optionally length-bounded and checked by ``validate`` (returns a message or None)."""

    def __init__(
        self,
        *,
        min_len: int = 0,
        max_len: int | None = None,
        validate: Callable[[str], str | None] | None = None,
    ) -> None:
        self.min_len = min_len
        self.max_len = max_len
        self.validate = validate

    def check(self, value: Any, path: Path, errors: list[FieldError]) -> None:
        if not isinstance(value, str):
            errors.append(FieldError(path, f"expected a string, got {show(value)}"))
            return
        if len(value) < self.min_len:
            errors.append(FieldError(path, "must not be empty" if self.min_len == 1 else "too short"))
        elif self.max_len is not None and len(value) > self.max_len:
            errors.append(FieldError(path, f"longer than {self.max_len} characters"))
        elif self.validate is not None:
            problem = self.validate(value)
            if problem:
                errors.append(FieldError(path, problem))


class Enum(Node):
    def __init__(self, *values: str) -> None:
        self.values = values

    def check(self, value: Any, path: Path, errors: list[FieldError]) -> None:
        if not isinstance(value, str) or value not in self.values:
            errors.append(FieldError(path, f"expected one of {', '.join(self.values)}; got {show(value)}"))


class Duration(Node):
    """A Go duration string (``30s``, ``5m``, ``1h30m``); ``positive`` refuses zero."""

    def __init__(self, *, positive: bool = False) -> None:
        self.positive = positive

    def check(self, value: Any, path: Path, errors: list[FieldError]) -> None:
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            errors.append(FieldError(path, str(exc)))
            return
        if self.positive and seconds <= 0:
            errors.append(FieldError(path, f"must be greater than 0, got {show(value)}"))


class Regex(Node):
    """A regular expression in Go's syntax, compiled by RE2 as Flux compiles it."""

    def check(self, value: Any, path: Path, errors: list[FieldError]) -> None:
        if not isinstance(value, str):
            errors.append(FieldError(path, f"expected a regular expression string, got {show(value)}"))
            return
        try:
            compile_regex(value)
        except RegexError as exc:
            errors.append(FieldError(path, regex_problem(value, exc)))


def regex_problem(pattern: str, exc: RegexError) -> str:
    """``invalid RE2 regular expression: <reason> (pattern '<pattern>')``, after the field."""
    return f"invalid RE2 regular expression: {exc} (pattern {pattern!r})"


class ListOf(Node):
    def __init__(self, item: Node, *, max_items: int | None = None, min_items: int = 0) -> None:
        self.item = item
        self.max_items = max_items
        self.min_items = min_items

    def check(self, value: Any, path: Path, errors: list[FieldError]) -> None:
        if not isinstance(value, list):
            errors.append(FieldError(path, f"expected a list, got {show(value)}"))
            return
        if self.max_items is not None and len(value) > self.max_items:
            errors.append(FieldError(path, f"at most {self.max_items} items allowed, got {len(value)}"))
        if len(value) < self.min_items:
            errors.append(FieldError(path, f"at least {self.min_items} item(s) required"))
        for index, item in enumerate(value):
            self.item.check(item, (*path, index), errors)


class MapOfStr(Node):
    """A string-to-string mapping (labels, ``postBuild.substitute``); numbers must be quoted."""

    def check(self, value: Any, path: Path, errors: list[FieldError]) -> None:
        if not isinstance(value, dict):
            errors.append(FieldError(path, f"expected a mapping of strings, got {show(value)}"))
            return
        for key, item in value.items():
            if not isinstance(key, str):
                errors.append(FieldError(path, f"keys must be strings, got {show(key)}"))
            elif not isinstance(item, str):
                errors.append(FieldError((*path, key), f"expected a string, got {show(item)}"))


class Obj(Node):
    """A mapping with declared fields. Unknown fields are errors; ``null`` fields are dropped.

    ``rules`` run only when the fields themselves were valid, so they may trust the types.
    """

    def __init__(
        self,
        fields: Mapping[str, Node],
        *,
        required: Collection[str] = (),
        rules: Sequence[Rule] = (),
    ) -> None:
        self.fields = dict(fields)
        self.required = tuple(required)
        self.rules = tuple(rules)
        unknown = set(self.required) - set(self.fields)
        if unknown:
            raise ValueError(f"required fields not declared: {sorted(unknown)}")

    def check(self, value: Any, path: Path, errors: list[FieldError]) -> None:
        if not isinstance(value, dict):
            errors.append(FieldError(path, f"expected a mapping, got {show(value)}"))
            return
        before = len(errors)
        for key in [k for k, v in value.items() if v is None]:
            del value[key]
        for key, item in value.items():
            node = self.fields.get(key) if isinstance(key, str) else None
            if node is None:
                errors.append(FieldError((*path, key), self._unknown(key)))
            else:
                node.check(item, (*path, key), errors)
        for key in self.required:
            if key not in value:
                errors.append(FieldError((*path, key), "required field is missing"))
        if len(errors) == before:
            for rule in self.rules:
                errors.extend(rule(value, path))

    def _unknown(self, key: Any) -> str:
        message = f"unknown field {show(key)}"
        close = difflib.get_close_matches(str(key), self.fields, n=1) if isinstance(key, str) else []
        if close:
            return f"{message} (did you mean {close[0]!r}?)"
        return f"{message}; expected one of: {', '.join(sorted(self.fields))}"


def exactly_one(*names: str, allow_none: bool = False) -> Rule:
    """A rule: exactly one (or, with ``allow_none``, at most one) of ``names`` is set."""

    def rule(value: dict[str, Any], path: Path) -> list[FieldError]:
        present = [name for name in names if name in value]
        if len(present) > 1:
            return [FieldError(path, f"set only one of {', '.join(names)}; got {', '.join(present)}")]
        if not present and not allow_none:
            return [FieldError(path, f"set exactly one of {', '.join(names)}")]
        return []

    return rule


def validate(node: Node, value: Any, path: Path = ()) -> list[FieldError]:
    """Every error in ``value`` against ``node`` (``[]`` when valid). May drop ``null`` fields."""
    errors: list[FieldError] = []
    node.check(value, path, errors)
    return errors


def ref(*, namespace: bool = False, extra: Iterable[tuple[str, Node]] = ()) -> Obj:
    """A ``{name}`` object reference (``{name, namespace}`` when ``namespace``)."""
    fields: dict[str, Node] = {"name": Str(min_len=1)}
    if namespace:
        fields["namespace"] = Str(min_len=1)
    fields.update(extra)
    return Obj(fields, required=["name"])
