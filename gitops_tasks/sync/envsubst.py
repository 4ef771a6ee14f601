"""``${VAR}`` expansion with Flux's rules (fluxcd/pkg/envsubst, a fork of drone/envsubst); pure.

Only the braced form is expanded: ``$VAR`` stays as written, and ``$${`` is an escape that
writes ``${`` (so ``$${VAR}`` gives ``${VAR}``). Inside braces, besides ``${VAR}``:

=============================  ==============================================================
``${VAR:=default}``            ``default`` when VAR is unset or empty (also ``:-``)
``${VAR=default}``             ``default`` when VAR is unset (also ``-``)
``${#VAR}``                    length
``${VAR^}`` ``${VAR^^}``       upper-case the first / every character (``,`` ``,,`` lower-case)
``${VAR:n}`` ``${VAR:n:len}``  substring
``${VAR#pat}`` ``##`` ``%``    strip the shortest / longest glob match from the start / end
``${VAR/pat/rep}``             replace the first match (``//`` all, ``/#`` at start, ``/%`` at end)
=============================  ==============================================================

Defaults, patterns and replacements may contain ``${...}`` themselves. An unset variable expands
to the empty string, unless ``strict`` (Flux's ``StrictPostBuildSubstitutions``), where it is an
error unless a default applies.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from gitops_tasks.objects.regex import Pattern, RegexError, compile_regex, escape

_NAME = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")
_SUBSTRING = re.compile(r":\s*(-?\d+)(?::(\d+))?")


class EnvsubstError(ValueError):
    """An expression that cannot be expanded; the message names it."""


def expand(text: str, variables: Mapping[str, str], *, strict: bool = False) -> str:
    """``text`` with every ``${...}`` expression expanded from ``variables``."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        j = text.find("$", i)
        if j < 0:
            out.append(text[i:])
            break
        out.append(text[i:j])
        if text.startswith("$${", j):
            out.append("${")
            i = j + 3
        elif text.startswith("${", j):
            end = _closing(text, j + 2)
            out.append(_evaluate(text[j + 2 : end], variables, strict))
            i = end + 1
        else:
            out.append("$")
            i = j + 1
    return "".join(out)


def _closing(text: str, start: int) -> int:
    depth, k = 1, start
    while k < len(text):
        char = text[k]
        if char == "\\":
            k += 2
            continue
        if text.startswith("${", k):
            depth += 1
            k += 2
            continue
        if char == "}":
            depth -= 1
            if depth == 0:
                return k
        k += 1
    raise EnvsubstError(f"unterminated expression '${{{text[start : start + 40]}': missing '}}'")


def _evaluate(expr: str, variables: Mapping[str, str], strict: bool) -> str:
    whole = f"${{{expr}}}"
    length = expr.startswith("#") and _NAME.fullmatch(expr[1:])
    match = _NAME.match(expr[1:] if length else expr)
    if match is None:
        raise EnvsubstError(f"invalid variable name in {whole}")
    name = match.group()
    rest = "" if length else expr[match.end() :]
    is_set = name in variables
    value = variables.get(name, "")

    def sub(part: str) -> str:
        return expand(part, variables, strict=strict)

    if rest[:2] in (":=", ":-"):
        return value if value else sub(rest[2:])
    if rest[:1] in ("=", "-"):
        return value if is_set else sub(rest[1:])
    if strict and not is_set:
        raise EnvsubstError(f"variable '{name}' is not set (in {whole})")
    if length:
        return str(len(value))
    if rest == "":
        return value
    case = {"^^": str.upper, ",,": str.lower}.get(rest)
    if case is not None:
        return case(value)
    if rest in ("^", ","):
        first = value[:1].upper() if rest == "^" else value[:1].lower()
        return first + value[1:]
    substring = _SUBSTRING.fullmatch(rest)
    if substring is not None:
        offset = int(substring.group(1))
        begin = max(len(value) + offset, 0) if offset < 0 else offset
        size = substring.group(2)
        return value[begin : begin + int(size)] if size is not None else value[begin:]
    for op in ("##", "#", "%%", "%"):
        if rest.startswith(op):
            return _trim(value, _glob(sub(rest[len(op) :])), start=op[0] == "#", longest=len(op) == 2)
    if rest.startswith("/"):
        return _replace(value, rest[1:], sub)
    raise EnvsubstError(f"unsupported expression {whole}")


def _glob(pattern: str) -> Pattern:
    """A shell glob (``*``, ``?``, ``[...]``, ``\\`` escapes) as an RE2 expression (the glob
    comes from the repository: matching it must not backtrack). Raises :class:`EnvsubstError`."""
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out.append(escape(pattern[i + 1]))
            i += 2
            continue
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[" and "]" in pattern[i + 2 :]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end
        else:
            out.append(escape(char))
        i += 1
    try:
        return compile_regex("(?s)" + "".join(out))
    except RegexError as exc:
        raise EnvsubstError(f"invalid pattern {pattern!r}: {exc}") from None


def _trim(value: str, rx: Pattern, *, start: bool, longest: bool) -> str:
    cuts = range(len(value), -1, -1) if longest else range(len(value) + 1)
    for cut in cuts:
        if start and rx.fullmatch(value, 0, cut):
            return value[cut:]
        if not start and rx.fullmatch(value, len(value) - cut):
            return value[: len(value) - cut]
    return value


def _split_replacement(text: str) -> tuple[str, str]:
    k = 0
    while k < len(text):
        if text[k] == "\\" and k + 1 < len(text):
            k += 2
            continue
        if text[k] == "/":
            return text[:k], text[k + 1 :]
        k += 1
    return text, ""


def _replace(value: str, spec: str, sub: Callable[[str], str]) -> str:
    mode = spec[:1] if spec[:1] in ("/", "#", "%") else ""
    pattern_text, replacement = _split_replacement(spec[len(mode) :])
    rx, replacement = _glob(sub(pattern_text)), sub(replacement)
    if mode == "#":
        for cut in range(len(value), -1, -1):
            if rx.fullmatch(value, 0, cut):
                return replacement + value[cut:]
        return value
    if mode == "%":
        for begin in range(len(value) + 1):
            if rx.fullmatch(value, begin):
                return value[:begin] + replacement
        return value
    if not pattern_text:
        return value
    out, pos = [], 0
    while pos < len(value):
        end = next((e for e in range(len(value), pos, -1) if rx.fullmatch(value, pos, e)), None)
        if end is None:
            out.append(value[pos])
            pos += 1
            continue
        out.append(replacement)
        pos = end
        if mode != "/":
            break
    return "".join(out) + value[pos:]
