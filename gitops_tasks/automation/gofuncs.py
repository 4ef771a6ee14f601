"""Functions and value rules for :mod:`.gotemplate`: Go's template builtins and Sprig's common ones.

Go builtins: ``and or not len index print printf println eq ne lt le gt ge``. Sprig (the
hermetic, deterministic part Flux allows), with Sprig's argument order (the piped value last):
``lower upper title trim trimAll trimPrefix trimSuffix trunc repeat replace contains hasPrefix
hasSuffix join splitList quote squote default empty coalesce ternary list first last rest uniq
sortAlpha toString cat indent nindent substr nospace abbrev add sub``.

Printing follows Go's ``%v``: ``true``, ``[a b]``, ``map[k:v]``, ``<nil>``; a missing map key
prints ``<no value>``. Pure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

#: The largest string ``repeat``, ``indent`` and friends may build.
MAX_BUILT_CHARS = 65_536


class TemplateError(ValueError):
    """A template that cannot be parsed or run; the message says what and where (as Go would)."""


class _NoValue:
    """What a missing map key evaluates to (prints as Go's ``<no value>``)."""

    def __repr__(self) -> str:
        return "<no value>"


NO_VALUE: Any = _NoValue()


def go_str(value: Any) -> str:
    """``value`` formatted as Go's ``fmt`` ``%v`` would print it."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<nil>"
    if value is NO_VALUE:
        return "<no value>"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{go_str(k)}:{go_str(value[k])}" for k in sorted(value, key=str)) + "]"
    go_string = getattr(value, "go_string", None)
    if callable(go_string):
        return str(go_string())
    raise TemplateError(f"cannot print a value of type {type(value).__name__}")


def truth(value: Any) -> bool:
    """Go's template truth: false, 0, nil and empty strings, lists and maps are false."""
    if value is None or value is NO_VALUE:
        return False
    if isinstance(value, bool | int | float | str | list | tuple | dict):
        return bool(value)
    return True


def _num(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            return int(str(value))
        except ValueError:
            raise TemplateError(f"{what}: expected a number, got {go_str(value)!r}") from None
    return int(value)


def _built(text: str) -> str:
    if len(text) > MAX_BUILT_CHARS:
        raise TemplateError(f"result longer than {MAX_BUILT_CHARS} characters")
    return text


def _sprint(*args: Any) -> str:
    out = ""
    for i, arg in enumerate(args):
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out += " "
        out += go_str(arg)
    return out


_VERB = re.compile(r"%([-+# 0]*)(\d*)(?:\.(\d+))?([a-zA-Z%])")


def _printf(fmt: str, *args: Any) -> str:
    queue = list(args)

    def one(match: re.Match[str]) -> str:
        flags, width, precision, verb = match.groups()
        if verb == "%":
            return "%"
        if not queue:
            return f"%!{verb}(MISSING)"
        arg = queue.pop(0)
        if verb in "sv":
            text = go_str(arg)
            text = text[: int(precision)] if precision else text
        elif verb == "q":
            text = json.dumps(go_str(arg), ensure_ascii=False)
        elif verb == "d":
            text = str(_num(arg, "printf %d"))
        elif verb == "t":
            text = go_str(bool(arg)) if isinstance(arg, bool) else f"%!t({go_str(arg)})"
        else:
            raise TemplateError(f"printf verb %{verb} is not supported")
        pad = int(width or 0) - len(text)
        if pad > 0:
            text = text + " " * pad if "-" in flags else " " * pad + text
        return text

    return _VERB.sub(one, fmt)


def _compare(a: Any, b: Any) -> tuple[Any, Any]:
    numbers = (int, float)
    booleans = isinstance(a, bool) or isinstance(b, bool)
    if isinstance(a, numbers) and isinstance(b, numbers) and not booleans:
        return a, b
    if type(a) is not type(b):
        raise TemplateError(f"incompatible types for comparison: {go_str(a)!r} and {go_str(b)!r}")
    return a, b


def _eq(a: Any, *others: Any) -> bool:
    if not others:
        raise TemplateError("missing argument for comparison")
    return any(x == y for x, y in (_compare(a, b) for b in others))


def _ordered(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        x, y = _compare(a, b)
        if not isinstance(x, int | float | str):
            raise TemplateError(f"invalid type for comparison: {go_str(x)!r}")
        return op(x, y)

    return compare


def _len(value: Any) -> int:
    if isinstance(value, str | list | tuple | dict):
        return len(value)
    raise TemplateError(f"len of type {type(value).__name__}")


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(value, dict):
            value = value.get(key, NO_VALUE)
        elif isinstance(value, list | tuple | str) and isinstance(key, int) and 0 <= key < len(value):
            value = value[key]
        else:
            raise TemplateError(f"error calling index: cannot index {go_str(value)} with {go_str(key)}")
    return value


def _and(*args: Any) -> Any:
    for arg in args:
        if not truth(arg):
            return arg
    if not args:
        raise TemplateError("wrong number of args for and: want at least 1 got 0")
    return args[-1]


def _or(*args: Any) -> Any:
    for arg in args:
        if truth(arg):
            return arg
    return args[-1] if args else None


def _trunc(n: Any, s: Any) -> str:
    n, text = _num(n, "trunc"), go_str(s)
    return text[:n] if n >= 0 else text[n:]


def _indent(n: Any, s: Any) -> str:
    pad = " " * max(_num(n, "indent"), 0)
    return _built(pad + go_str(s).replace("\n", "\n" + pad))


def _substr(start: Any, end: Any, s: Any) -> str:
    text, a, b = go_str(s), _num(start, "substr"), _num(end, "substr")
    if a < 0:
        return text[:b] if b >= 0 else text
    return text[a:b] if b >= 0 and b <= len(text) else text[a:]


def _abbrev(width: Any, s: Any) -> str:
    text, w = go_str(s), _num(width, "abbrev")
    return text if w < 4 or len(text) <= w else text[: w - 3] + "..."


def _uniq(items: Any) -> list[Any]:
    out: list[Any] = []
    for item in items if isinstance(items, list | tuple) else []:
        if item not in out:
            out.append(item)
    return out


FUNCS: dict[str, Callable[..., Any]] = {
    "and": _and,
    "or": _or,
    "not": lambda v: not truth(v),
    "len": _len,
    "index": _index,
    "print": _sprint,
    "println": lambda *a: " ".join(go_str(x) for x in a) + "\n",
    "printf": lambda fmt, *a: _printf(go_str(fmt), *a),
    "eq": _eq,
    "ne": lambda a, b: not _eq(a, b),
    "lt": _ordered(lambda a, b: a < b),
    "le": _ordered(lambda a, b: a <= b),
    "gt": _ordered(lambda a, b: a > b),
    "ge": _ordered(lambda a, b: a >= b),
    "lower": lambda s: go_str(s).lower(),
    "upper": lambda s: go_str(s).upper(),
    "title": lambda s: re.sub(r"(^|\s)(\S)", lambda m: m.group(1) + m.group(2).upper(), go_str(s)),
    "trim": lambda s: go_str(s).strip(),
    "trimAll": lambda cut, s: go_str(s).strip(go_str(cut)),
    "trimPrefix": lambda p, s: go_str(s).removeprefix(go_str(p)),
    "trimSuffix": lambda p, s: go_str(s).removesuffix(go_str(p)),
    "trunc": _trunc,
    "repeat": lambda n, s: _built(go_str(s) * min(max(_num(n, "repeat"), 0), MAX_BUILT_CHARS + 1)),
    "replace": lambda old, new, s: _built(go_str(s).replace(go_str(old), go_str(new))),
    "contains": lambda sub, s: go_str(sub) in go_str(s),
    "hasPrefix": lambda p, s: go_str(s).startswith(go_str(p)),
    "hasSuffix": lambda p, s: go_str(s).endswith(go_str(p)),
    "join": lambda sep, items: go_str(sep).join(go_str(i) for i in (items or [])),
    "splitList": lambda sep, s: go_str(s).split(go_str(sep)),
    "quote": lambda *a: " ".join(json.dumps(go_str(x), ensure_ascii=False) for x in a if x is not None),
    "squote": lambda *a: " ".join(f"'{go_str(x)}'" for x in a if x is not None),
    "default": lambda d, v=None: v if truth(v) else d,
    "empty": lambda v: not truth(v),
    "coalesce": lambda *a: next((x for x in a if truth(x)), None),
    "ternary": lambda t, f, cond: t if truth(cond) else f,
    "list": lambda *a: list(a),
    "first": lambda items: items[0] if items else None,
    "last": lambda items: items[-1] if items else None,
    "rest": lambda items: list(items[1:]) if items else [],
    "uniq": _uniq,
    "sortAlpha": lambda items: sorted(go_str(i) for i in (items or [])),
    "toString": go_str,
    "cat": lambda *a: " ".join(go_str(x) for x in a if x is not None),
    "indent": _indent,
    "nindent": lambda n, s: "\n" + _indent(n, s),
    "substr": _substr,
    "nospace": lambda s: re.sub(r"\s+", "", go_str(s)),
    "abbrev": _abbrev,
    "add": lambda *a: sum(_num(x, "add") for x in a),
    "sub": lambda a, b: _num(a, "sub") - _num(b, "sub"),
}
