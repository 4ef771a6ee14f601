"""Parsing for :mod:`.gotemplate`: Go ``text/template`` source into a small tree (pure).

The source is split into text and actions (``{{ }}``, with ``{{-``/``-}}`` trimming and
``{{/* */}}`` comments dropped), each action lexed into tokens, and the control structures
(``if``/``range``/``with`` ... ``else`` ... ``end``) nested. Errors are
:class:`~.gofuncs.TemplateError` in Go's words where possible.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from gitops_tasks.automation.gofuncs import TemplateError

_TOKEN = re.compile(
    r"""(?P<ws>\s+)|(?P<decl>:=)|(?P<assign>=)|(?P<pipe>\|)|(?P<lp>\()|(?P<rp>\))|(?P<comma>,)
    |(?P<str>"(?:[^"\\\n]|\\.)*")|(?P<raw>`[^`]*`)
    |(?P<num>[-+]?(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?))
    |(?P<var>\$[A-Za-z0-9_]*)|(?P<field>\.[A-Za-z_][A-Za-z0-9_]*)|(?P<dot>\.)
    |(?P<ident>[A-Za-z_][A-Za-z0-9_]*)""",
    re.VERBOSE,
)
_KEYWORDS = {"if", "else", "end", "range", "with", "break", "continue", "define", "template", "block"}


@dataclass
class Tok:
    kind: str
    text: str
    start: int
    end: int


@dataclass
class Term:
    kind: str  # "field" (chain on dot), "var", "lit", "ident", "pipe" (parenthesised)
    value: Any = None
    chain: tuple[str, ...] = ()


@dataclass
class Pipe:
    decl: tuple[str, ...] = ()
    assign: bool = False
    cmds: list[list[Term]] = field(default_factory=list)


@dataclass
class Node:
    kind: str  # text, action, if, range, with, break, continue
    text: str = ""
    pipe: Pipe | None = None
    body: list[Node] = field(default_factory=list)
    orelse: list[Node] = field(default_factory=list)


def _split(source: str) -> list[tuple[str, str]]:
    """``("text", s)`` and ``("action", inner)`` pieces, trim markers applied, comments dropped."""
    pieces: list[tuple[str, str]] = []
    pos, trim_next = 0, False
    while True:
        open_at = source.find("{{", pos)
        text = source[pos:] if open_at < 0 else source[pos:open_at]
        if trim_next:
            text = text.lstrip(" \t\r\n")
        if open_at < 0:
            pieces.append(("text", text))
            return pieces
        inner_start = open_at + 2
        if re.match(r"-[ \t\r\n]", source[inner_start : inner_start + 2]):
            text = text.rstrip(" \t\r\n")
            inner_start += 2
        pieces.append(("text", text))
        close_at = _find_close(source, inner_start)
        inner = source[inner_start:close_at]
        trim_next = bool(re.search(r"[ \t\r\n]-$", inner))
        if trim_next:
            inner = inner[:-2]
        if not inner.strip().startswith("/*"):
            pieces.append(("action", inner))
        elif not inner.strip().endswith("*/"):
            raise TemplateError("unclosed comment")
        pos = close_at + 2


def _find_close(source: str, pos: int) -> int:
    quote = ""
    while pos < len(source):
        ch = source[pos]
        if quote:
            if ch == "\\" and quote == '"':
                pos += 1
            elif ch == quote:
                quote = ""
        elif ch in '"`':
            quote = ch
        elif source.startswith("}}", pos):
            return pos
        pos += 1
    raise TemplateError("unclosed action (missing '}}')")


def _lex(inner: str) -> list[Tok]:
    tokens, pos = [], 0
    while pos < len(inner):
        match = _TOKEN.match(inner, pos)
        if match is None:
            raise TemplateError(f"unexpected {inner[pos]!r} in action {{{{{inner.strip()}}}}}")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(Tok(kind, match.group(0), match.start(), match.end()))
        pos = match.end()
    return tokens


class Parser:
    def __init__(self, source: str) -> None:
        self.pieces = _split(source)
        self.i = 0

    def parse(self) -> list[Node]:
        nodes, stop = self._list()
        if stop is not None:
            raise TemplateError(f"unexpected {{{{{stop[0].text}}}}}")
        return nodes

    def _list(self) -> tuple[list[Node], list[Tok] | None]:
        """Nodes up to an ``end``/``else`` (returned, unconsumed) or the end of the template."""
        nodes: list[Node] = []
        while self.i < len(self.pieces):
            kind, content = self.pieces[self.i]
            self.i += 1
            if kind == "text":
                if content:
                    nodes.append(Node("text", text=content))
                continue
            toks = _lex(content)
            if not toks:
                raise TemplateError("missing value for command")
            head = toks[0].text if toks[0].kind == "ident" else ""
            if head in ("end", "else"):
                return nodes, toks
            if head in ("if", "range", "with"):
                nodes.append(self._control(head, toks[1:]))
            elif head in ("break", "continue"):
                nodes.append(Node(head))
            elif head in _KEYWORDS:
                raise TemplateError(f"{{{{{head}}}}} is not supported in commit message templates")
            else:
                nodes.append(Node("action", pipe=_pipeline(toks)))
        return nodes, None

    def _control(self, head: str, toks: list[Tok]) -> Node:
        node = Node(head, pipe=_pipeline(toks))
        node.body, stop = self._list()
        if stop is None:
            raise TemplateError(f"unexpected end of template in {{{{{head}}}}}: missing {{{{end}}}}")
        if stop[0].text == "else":
            rest = stop[1:]
            if rest and rest[0].kind == "ident" and rest[0].text in ("if", "with"):
                node.orelse = [self._control(rest[0].text, rest[1:])]
                return node
            if rest:
                raise TemplateError(f"unexpected {rest[0].text!r} after else")
            node.orelse, stop = self._list()
            if stop is None or stop[0].text != "end":
                raise TemplateError(f"missing {{{{end}}}} for {{{{{head}}}}}")
        if len(stop) > 1:
            raise TemplateError(f"unexpected {stop[1].text!r} after end")
        return node


def _pipeline(toks: list[Tok]) -> Pipe:
    pipe = Pipe()
    for marker in ("decl", "assign"):
        at = next((n for n, t in enumerate(toks) if t.kind == marker), None)
        if at is not None and all(t.kind in ("var", "comma") for t in toks[:at]):
            pipe.decl = tuple(t.text for t in toks[:at] if t.kind == "var")
            pipe.assign = marker == "assign"
            toks = toks[at + 1 :]
            break
    pos = 0
    cmd: list[Term] = []
    while pos < len(toks):
        if toks[pos].kind == "pipe":
            pipe.cmds.append(_check_cmd(cmd))
            cmd, pos = [], pos + 1
            continue
        term, pos = _term(toks, pos)
        cmd.append(term)
    pipe.cmds.append(_check_cmd(cmd))
    return pipe


def _check_cmd(cmd: list[Term]) -> list[Term]:
    if not cmd:
        raise TemplateError("missing command in pipeline")
    return cmd


def _chain(toks: list[Tok], pos: int) -> tuple[tuple[str, ...], int]:
    names: list[str] = []
    while pos < len(toks) and toks[pos].kind == "field" and toks[pos].start == toks[pos - 1].end:
        names.append(toks[pos].text[1:])
        pos += 1
    return tuple(names), pos


def _term(toks: list[Tok], pos: int) -> tuple[Term, int]:
    tok = toks[pos]
    if tok.kind == "dot":
        return Term("field"), pos + 1
    if tok.kind == "field":
        names = [tok.text[1:]]
        rest, end = _chain(toks, pos + 1)
        return Term("field", chain=(*names, *rest)), end
    if tok.kind == "var":
        chain, end = _chain(toks, pos + 1)
        return Term("var", tok.text, chain), end
    if tok.kind in ("str", "raw"):
        return Term("lit", _unquote(tok)), pos + 1
    if tok.kind == "num":
        text = tok.text
        value: Any = int(text, 0) if re.fullmatch(r"[-+]?(0[xX][0-9a-fA-F]+|\d+)", text) else float(text)
        return Term("lit", value), pos + 1
    if tok.kind == "ident":
        literals = {"true": True, "false": False, "nil": None}
        if tok.text in literals:
            return Term("lit", literals[tok.text]), pos + 1
        return Term("ident", tok.text), pos + 1
    if tok.kind == "lp":
        depth, end = 1, pos + 1
        while end < len(toks) and depth:
            depth += {"lp": 1, "rp": -1}.get(toks[end].kind, 0)
            end += 1
        if depth:
            raise TemplateError("unclosed left paren")
        chain, after = _chain(toks, end)
        return Term("pipe", _pipeline(toks[pos + 1 : end - 1]), chain), after
    raise TemplateError(f"unexpected {tok.text!r} in command")


def _unquote(tok: Tok) -> str:
    if tok.kind == "raw":
        return tok.text[1:-1]
    escapes = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "a": "\a", "b": "\b", "f": "\f"}
    escapes["v"] = "\v"

    def one(match: re.Match[str]) -> str:
        esc = match.group(1)
        if esc[0] in "xuU":
            return chr(int(esc[1:], 16))
        if esc in escapes:
            return escapes[esc]
        raise TemplateError(f"unknown escape sequence \\{esc} in {tok.text}")

    return re.sub(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)", one, tok.text[1:-1])
