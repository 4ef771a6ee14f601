"""Logging of the processes the ``gitops-tasks`` command runs: nothing written carries a credential.

The CLI (``apply``, ``get``…), ``up``, Flower and ``metrics`` log through one stderr handler
configured here; Celery's worker and beat configure their own handlers, which
:mod:`gitops_tasks.app` wraps from Celery's ``after_setup_*logger`` signals. Every handler gets a
:class:`~gitops_tasks.redact.RedactingFormatter`, and an exception that escapes the command is
printed masked too.

``GITOPS_TASKS_LOG_FORMAT=json`` makes every handler write one JSON object per line
(:class:`JsonFormatter`): time, level, logger, process, message, the traceback, and the fields of
the task being run (:func:`log_fields`: ``task_id``, ``object``, ``revision``). The masking wraps
the JSON formatter, so the traceback inside the JSON is masked too.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import traceback
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from gitops_tasks.redact import RedactingFormatter, install_log_redaction, redact

#: Line format of the CLI's own log lines (Celery's worker and beat keep their own).
DEFAULT_FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(name)s: %(message)s"
#: The values ``GITOPS_TASKS_LOG_FORMAT`` takes.
LOG_FORMATS = ("text", "json")

_fields: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "gitops_log_fields", default=None
)


@contextmanager
def log_fields(**fields: str | None) -> Iterator[None]:
    """Within the block, JSON log lines of this thread carry ``fields`` (``None`` values left out)."""
    token = _fields.set({k: v for k, v in fields.items() if v})
    try:
        yield
    finally:
        _fields.reset(token)


def add_log_fields(**fields: str | None) -> None:
    """Add to the fields of the enclosing :func:`log_fields` block (ignored outside one)."""
    current = _fields.get()
    if current is not None:
        current.update({k: v for k, v in fields.items() if v})


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``process``,
    ``message``, ``exception`` (the traceback text, when there is one) and the task's fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.processName,
            "message": record.getMessage(),
        }
        entry.update(_fields.get() or {})
        task_id = getattr(record, "task_id", None)  # Celery's task logger sets it
        if isinstance(task_id, str) and task_id != "???":
            entry.setdefault("task_id", task_id)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def use_format(log_format: str, handlers: Iterable[logging.Handler] | None = None) -> None:
    """Give ``handlers`` (default: the root logger's) masked output in ``log_format``."""
    chosen = list(logging.getLogger().handlers if handlers is None else handlers)
    if log_format == "json":
        for handler in chosen:
            current = handler.formatter
            inner = current.inner if isinstance(current, RedactingFormatter) else current
            if not isinstance(inner, JsonFormatter):
                handler.setFormatter(RedactingFormatter(JsonFormatter()))
    install_log_redaction(chosen)


def configure(level: int | str = logging.WARNING, log_format: str = "text") -> None:
    """One stderr handler on the root logger, its output masked; uncaught exceptions masked."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(DEFAULT_FORMAT))
        root.addHandler(handler)
    root.setLevel(level)
    use_format(log_format, root.handlers)
    sys.excepthook = _masked_excepthook


def _masked_excepthook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    sys.stderr.write(redact("".join(traceback.format_exception(exc_type, exc, tb))))
