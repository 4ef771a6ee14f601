"""Logging of the processes the ``gitops-tasks`` command runs: nothing written carries a credential.

The CLI (``apply``, ``get``…), ``up`` and Flower log through one stderr handler configured here;
Celery's worker and beat configure their own handlers, which :mod:`gitops_tasks.app` wraps from
Celery's ``after_setup_*logger`` signals. Every handler gets a
:class:`~gitops_tasks.redact.RedactingFormatter`, and an exception that escapes the command is
printed masked too.
"""

from __future__ import annotations

import logging
import sys
import traceback
from types import TracebackType

from gitops_tasks.redact import install_log_redaction, redact

#: Line format of the CLI's own log lines (Celery's worker and beat keep their own).
DEFAULT_FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(name)s: %(message)s"


def configure(level: int | str = logging.WARNING) -> None:
    """One stderr handler on the root logger, its output masked; uncaught exceptions masked."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(DEFAULT_FORMAT))
        root.addHandler(handler)
    root.setLevel(level)
    install_log_redaction(root.handlers)
    sys.excepthook = _masked_excepthook


def _masked_excepthook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    sys.stderr.write(redact("".join(traceback.format_exception(exc_type, exc, tb))))
