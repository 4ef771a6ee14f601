"""A small interpreter for Go's ``text/template``, enough for commit message templates.

Flux renders ``spec.git.commit.messageTemplate`` with Go's ``text/template`` and Sprig's hermetic
functions. This module parses and runs the same syntax over Python data, without ``eval``:

- text and actions ``{{ pipeline }}``, trim markers ``{{-`` / ``-}}``, comments ``{{/* */}}``;
- ``if`` / ``else if`` / ``else``, ``range`` (lists, maps in sorted key order, with ``$i, $v :=``
  or ``$v :=``, ``break``, ``continue``), ``with``, each with ``else``, closed by ``end``;
- pipelines with ``|``, parentheses, variables (``$``, ``$x``, ``$x.Field``, ``:=``, ``=``),
  fields and zero-argument methods (``.Changed.Changes``), string, raw-string, number and
  ``true``/``false``/``nil`` literals;
- the functions in :mod:`.gofuncs` (Go's builtins and the common part of Sprig).

Not supported (a :class:`TemplateError` says so): ``define``, ``template``, ``block``, methods
with arguments, complex numbers, character literals. Values are Python ``str``, ``int``,
``float``, ``bool``, ``None``, lists, dicts and :class:`GoObject` subclasses, which name their
fields and methods explicitly (nothing else of a Python object is reachable). Output is capped at
``MAX_OUTPUT_CHARS``. Pure.
"""

from __future__ import annotations

from typing import Any

from gitops_tasks.automation.gofuncs import FUNCS, NO_VALUE, TemplateError, go_str, truth
from gitops_tasks.automation.goparse import Node, Parser, Pipe, Term

__all__ = ["MAX_OUTPUT_CHARS", "GoObject", "Template", "TemplateError", "go_str", "render"]

#: The most characters a template may produce.
MAX_OUTPUT_CHARS = 65_536


class GoObject:
    """A value templates may read: only ``GO_FIELDS`` attributes and ``GO_METHODS`` (no arguments)."""

    GO_FIELDS: tuple[str, ...] = ()
    GO_METHODS: tuple[str, ...] = ()

    def go_attr(self, name: str) -> Any:
        if name in self.GO_FIELDS:
            return getattr(self, name)
        if name in self.GO_METHODS:
            return getattr(self, name)()
        raise TemplateError(f"can't evaluate field {name} in type {type(self).__name__}")

    def go_string(self) -> str:
        return "{" + " ".join(go_str(getattr(self, f)) for f in self.GO_FIELDS) + "}"


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class Template:
    """A parsed template; :meth:`execute` may run many times."""

    def __init__(self, source: str) -> None:
        self.nodes = Parser(source).parse()

    def execute(self, data: Any) -> str:
        run = _Run(data)
        try:
            run.nodes(self.nodes, data)
        except (_Break, _Continue):
            raise TemplateError("break or continue outside range") from None
        except RecursionError:
            raise TemplateError("template nests too deeply") from None
        return "".join(run.out)


def render(source: str, data: Any) -> str:
    """Parse and run ``source`` over ``data``. Raises :class:`TemplateError`."""
    return Template(source).execute(data)


class _Run:
    def __init__(self, data: Any) -> None:
        self.out: list[str] = []
        self.size = 0
        self.scopes: list[dict[str, Any]] = [{"$": data}]

    def emit(self, text: str) -> None:
        self.size += len(text)
        if self.size > MAX_OUTPUT_CHARS:
            raise TemplateError(f"output longer than {MAX_OUTPUT_CHARS} characters")
        self.out.append(text)

    def nodes(self, nodes: list[Node], dot: Any) -> None:
        for node in nodes:
            if node.kind == "text":
                self.emit(node.text)
            elif node.kind == "action":
                assert node.pipe is not None
                value = self.pipe(node.pipe, dot)
                if not node.pipe.decl:
                    self.emit(go_str(value))
            elif node.kind == "break":
                raise _Break
            elif node.kind == "continue":
                raise _Continue
            else:
                self.scopes.append({})
                try:
                    getattr(self, "do_" + node.kind)(node, dot)
                finally:
                    self.scopes.pop()

    def do_if(self, node: Node, dot: Any) -> None:
        assert node.pipe is not None
        self.nodes(node.body if truth(self.pipe(node.pipe, dot)) else node.orelse, dot)

    def do_with(self, node: Node, dot: Any) -> None:
        assert node.pipe is not None
        value = self.pipe(node.pipe, dot)
        if truth(value):
            self.nodes(node.body, value)
        else:
            self.nodes(node.orelse, dot)

    def do_range(self, node: Node, dot: Any) -> None:
        assert node.pipe is not None
        decl = node.pipe.decl
        value = self.pipe(node.pipe, dot, declare=False)
        if isinstance(value, dict):
            items = [(k, value[k]) for k in sorted(value, key=_sort_key)]
        elif isinstance(value, list | tuple):
            items = list(enumerate(value))
        elif value is None or value is NO_VALUE:
            items = []
        else:
            raise TemplateError(f"range can't iterate over {go_str(value)}")
        if not items:
            self.nodes(node.orelse, dot)
            return
        for key, item in items:
            if len(decl) == 1:
                self.scopes[-1][decl[0]] = item
            elif len(decl) == 2:
                self.scopes[-1][decl[0]], self.scopes[-1][decl[1]] = key, item
            try:
                self.nodes(node.body, item)
            except _Break:
                break
            except _Continue:
                continue

    def pipe(self, pipe: Pipe, dot: Any, *, declare: bool = True) -> Any:
        value: Any = _MISSING
        for cmd in pipe.cmds:
            value = self.command(cmd, dot, value)
        if pipe.decl and declare:
            if pipe.assign:
                for name in pipe.decl:
                    scope = next((s for s in reversed(self.scopes) if name in s), None)
                    if scope is None:
                        raise TemplateError(f"undefined variable: {name}")
                    scope[name] = value
            else:
                self.scopes[-1][pipe.decl[-1]] = value
        return value

    def command(self, cmd: list[Term], dot: Any, final: Any) -> Any:
        head = cmd[0]
        if head.kind == "ident":
            func = FUNCS.get(head.value)
            if func is None:
                raise TemplateError(f'function "{head.value}" not defined')
            args = [self.term(t, dot) for t in cmd[1:]]
            if final is not _MISSING:
                args.append(final)
            return func(*args)
        if len(cmd) > 1 or final is not _MISSING:
            raise TemplateError("can't give argument to non-function")
        return self.term(head, dot)

    def term(self, term: Term, dot: Any) -> Any:
        if term.kind == "lit":
            return term.value
        if term.kind == "ident":
            func = FUNCS.get(term.value)
            if func is None:
                raise TemplateError(f'function "{term.value}" not defined')
            return func()
        if term.kind == "var":
            scope = next((s for s in reversed(self.scopes) if term.value in s), None)
            if scope is None:
                raise TemplateError(f"undefined variable: {term.value}")
            base = scope[term.value]
        elif term.kind == "pipe":
            base = self.pipe(term.value, dot)
        else:
            base = dot
        for name in term.chain:
            base = _field(base, name)
        return base


_MISSING = object()


def _field(value: Any, name: str) -> Any:
    if isinstance(value, GoObject):
        return value.go_attr(name)
    if isinstance(value, dict):
        return value.get(name, NO_VALUE)
    if value is None or value is NO_VALUE:
        raise TemplateError(f"nil pointer evaluating .{name}")
    raise TemplateError(f"can't evaluate field {name} in type {type(value).__name__}")


def _sort_key(key: Any) -> Any:
    if isinstance(key, GoObject):
        return tuple(str(getattr(key, f)) for f in key.GO_FIELDS)
    return (str(type(key)), key) if not isinstance(key, str) else ("", key)
