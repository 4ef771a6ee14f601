"""Asking the running workers about themselves (``gitops-tasks version`` and ``check``).

Workers answer a broadcast ``gitops_worker_info`` control command (registered here, so every worker
of this app has it) with their versions and the queues they consume. The CLI reaches Celery only
through this module (the import-linter contract: only the Celery glue imports Celery).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from celery.worker.control import inspect_command

from gitops_tasks import versions
from gitops_tasks.settings import Settings

#: The control command's name.
INFO_COMMAND = "gitops_worker_info"


@inspect_command(name=INFO_COMMAND)
def _worker_info(state: Any, **_: Any) -> dict[str, Any]:
    """Runs in the worker: its versions and the queues it consumes."""
    queues = sorted(q.name for q in state.consumer.task_consumer.queues)
    return {"versions": versions(), "queues": queues}


@dataclass
class WorkerInfo:
    """One worker's answer: its name (``celery@host``), versions and queues; ``error`` when it
    answered but does not know the command (a worker of an older version)."""

    name: str
    versions: dict[str, str] = field(default_factory=dict)
    queues: list[str] = field(default_factory=list)
    error: str = ""


def broker_problem(settings: Settings, *, timeout_s: float) -> str | None:
    """Why the broker cannot be reached within about ``timeout_s`` (``None`` when it answers)."""
    from gitops_tasks.app import make_app

    app = make_app(settings, set_as_current=False)
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout_s)
    except Exception as exc:
        return str(exc) or type(exc).__name__
    return None


def ask_workers(settings: Settings, *, timeout_s: float) -> list[WorkerInfo]:
    """Every worker that answers within ``timeout_s`` (sorted by name; empty when none did).

    Call after :func:`broker_problem` found the broker reachable: publishing retries otherwise.
    """
    from gitops_tasks.app import make_app

    app = make_app(settings, set_as_current=False)
    replies = app.control.broadcast(INFO_COMMAND, reply=True, timeout=timeout_s) or []
    found: dict[str, WorkerInfo] = {}
    for reply in replies:
        for name, answer in reply.items():
            if isinstance(answer, dict) and "versions" in answer:
                found[name] = WorkerInfo(name, dict(answer["versions"]), list(answer.get("queues", [])))
            else:
                error = answer.get("error", "") if isinstance(answer, dict) else str(answer)
                found[name] = WorkerInfo(name, error=str(error) or "no answer to " + INFO_COMMAND)
    return [found[name] for name in sorted(found)]
