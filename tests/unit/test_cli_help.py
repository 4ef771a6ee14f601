"""Every command's help explains each argument and shows examples (issue: the CLI at flux's level)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from gitops_tasks.cli import build_parser


def commands(
    parser: argparse.ArgumentParser, path: str = "gitops-tasks"
) -> Iterator[tuple[str, argparse.ArgumentParser, bool]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    yield path, parser, not subs
    for action in subs:
        for name, child in action.choices.items():
            yield from commands(child, f"{path} {name}")


def test_every_argument_of_every_command_has_a_help_text() -> None:
    missing = [
        f"{path}: {action.dest}"
        for path, parser, _ in commands(build_parser())
        for action in parser._actions
        if not action.help and not isinstance(action, argparse._HelpAction | argparse._SubParsersAction)
    ]
    assert missing == []


def test_every_command_shows_examples_in_its_help() -> None:
    without = [
        path
        for path, parser, leaf in commands(build_parser())
        if leaf and "gitops-tasks " not in (parser.epilog or "")
    ]
    assert without == []
