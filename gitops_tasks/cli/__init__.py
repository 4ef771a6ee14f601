"""The ``gitops-tasks`` command: declare objects, see status, trigger work, run the parts.

One module per command group, each with a ``register(sub)`` adding its sub-commands: ``objects``
(apply, get, delete), ``run`` (reconcile, suspend, resume), ``events``, ``build`` (build, diff),
``images`` (images update, release, automate, deautomate, lock, unlock), ``policy`` (policy
latest), ``notify`` (notify test), ``stack`` (worker, beat, flower, up), ``metrics``,
``receiver`` (the webhook service),
``completion``; ``common`` holds what they share (settings, the stores, the catalog's verdict) and
``view`` the formatting. The top layer: nothing else in ``gitops_tasks`` imports it
(``lint-imports`` holds this).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import NoReturn

_DESCRIPTION = "The ``gitops-tasks`` command: declare objects, see status, trigger work, run the parts."


def build_parser() -> argparse.ArgumentParser:
    from gitops_tasks.cli import (
        bootstrap,
        build,
        completion,
        events,
        health,
        images,
        inspect,
        metrics,
        notify,
        objects,
        policy,
        receiver,
        run,
        stack,
    )

    parser = argparse.ArgumentParser(prog="gitops-tasks", description=_DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    groups = (
        objects,
        events,
        run,
        bootstrap,
        stack,
        receiver,
        policy,
        images,
        build,
        completion,
        health,
        inspect,
        metrics,
        notify,
    )
    for group in groups:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from gitops_tasks import logsetup

    logsetup.configure()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()
    except BrokenPipeError:
        _exit_on_closed_stdout()
    return code


def _exit_on_closed_stdout() -> NoReturn:
    """The reader of stdout went away (``get -A | head -1``): stop quietly, as kubectl and any Unix
    filter do, by dying of SIGPIPE (exit status 141 in a shell) with no traceback.

    Redis client errors never arrive here as ``BrokenPipeError`` (redis-py raises its own
    ``ConnectionError``), so the closed pipe is stdout's.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # the interpreter's last flush finds nowhere to fail
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGPIPE)
    raise SystemExit(128 + signal.SIGPIPE)  # only where SIGPIPE cannot end the process
