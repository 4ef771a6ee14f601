"""The Celery app and its configuration: the only place settings meet Celery (DESIGN §4)."""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import Celery
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    task_postrun,
    task_prerun,
    worker_process_shutdown,
)

from gitops_tasks import broker, tasknames
from gitops_tasks.logsetup import use_format
from gitops_tasks.metrics import health
from gitops_tasks.metrics.multiproc import process_exited
from gitops_tasks.settings import Settings

#: Extra seconds between the soft time limit (spec.timeout) and the hard kill.
DEFAULT_HARD_LIMIT_GRACE_S = 30


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings that matter for correctness; see DESIGN §4."""
    redis_url = settings.effective_redis_url()
    broker_url = settings.effective_broker_url()
    return {
        "broker_url": broker_url,
        "result_backend": redis_url,
        "result_expires": 3600,
        "task_ignore_result": True,
        # JSON only: never pickle.
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "event_serializer": "json",
        # A killed worker's task goes back to the queue and another worker completes it.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # GITOPS_TASKS_KEY_PREFIX covers the broker's keys too (queues, bindings, unacked hashes,
        # fanout channels of events and `celery inspect`), and the results: installations sharing
        # a Redis never see each other's tasks. Other brokers ignore the option.
        "broker_transport_options": {
            **broker_transport_options(settings),
            "global_keyprefix": settings.key_prefix,
        },
        "result_backend_transport_options": {
            "visibility_timeout": settings.visibility_timeout_s,
            "global_keyprefix": settings.key_prefix,
        },
        "broker_connection_retry_on_startup": True,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        # Flower sees every task.
        "worker_send_task_events": settings.task_events,
        "task_send_sent_event": settings.task_events,
        "task_track_started": True,
        "task_default_queue": "priority",
        "task_routes": {
            tasknames.GIT_POLL: {"queue": "git"},
            tasknames.REGISTRY_SCAN: {"queue": "registry"},
            tasknames.AUTOMATION_RUN: {"queue": "automation"},
            tasknames.SYNC_APPLY: {"queue": "sync"},
            tasknames.RECONCILE: {"queue": "priority"},
            tasknames.NOTIFY_DISPATCH: {"queue": "notify"},
        },
        # Task events leave the worker in batches (see gitops_tasks.consumer).
        "worker_consumer": "gitops_tasks.consumer:Consumer",
        "worker_hijack_root_logger": True,
        "beat_max_loop_interval": 5,
    }


def broker_transport_options(settings: Settings) -> dict[str, Any]:
    """Redis broker: redeliver a dead worker's unacknowledged task after the visibility timeout.

    Kombu sweeps for such tasks every ``unacked_restore_interval × unacked_restore_throttle`` seconds
    (100 s by default); sweeping every quarter of the timeout (1–10 s) keeps redelivery prompt.
    Other brokers ignore these options (RabbitMQ redelivers when the connection drops).
    """
    vt = settings.visibility_timeout_s
    return {
        "visibility_timeout": vt,
        "unacked_restore_interval": min(10, max(1, vt // 4)),
        "unacked_restore_throttle": 1,
    }


def make_app(settings: Settings | None = None, *, set_as_current: bool = True) -> Celery:
    settings = settings or Settings.from_env()
    # redis:// only: kombu's own transport with one client per channel (see gitops_tasks.broker).
    broker.register()
    celery_app = Celery("gitops_tasks", set_as_current=set_as_current)
    celery_app.conf.update(celery_config(settings))
    celery_app.conf.gitops_settings = settings
    import gitops_tasks.tasks  # noqa: F401 - registers the shared tasks on this app

    return celery_app


#: Celery's loggers that write a line for every task received and every task succeeded. Above
#: DEBUG they are set to WARNING: with thousands of polls a minute those lines are most of the log
#: and a measurable share of a worker's CPU; Flower shows every task, and failures still log.
PER_TASK_LOGGERS = ("celery.app.trace", "celery.worker.strategy")


@after_setup_logger.connect
@after_setup_task_logger.connect
def _redact_logs(logger: Any, **_: Any) -> None:
    """Worker and beat: every handler Celery set up writes masked text (message, traceback, stack),
    as JSON lines with ``GITOPS_TASKS_LOG_FORMAT=json``."""
    use_format(Settings.from_env().log_format, logger.handlers)


@task_prerun.connect
def _task_started(**_: Any) -> None:
    health.CONSUMER.task_started()


@task_postrun.connect
def _task_finished(**_: Any) -> None:
    health.CONSUMER.task_finished()


@worker_process_shutdown.connect
def _pool_process_exited(**_: Any) -> None:
    """A prefork pool process ends: its live metrics stop counting (multiprocess mode)."""
    process_exited(os.getpid())


@after_setup_logger.connect
def _quiet_per_task_lines(loglevel: Any = None, **_: Any) -> None:
    level = logging.getLevelName(loglevel) if isinstance(loglevel, str) else loglevel
    if not isinstance(level, int) or level > logging.DEBUG:
        for name in PER_TASK_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)


app = make_app()
