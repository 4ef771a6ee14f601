"""The worker's consumer, sending task events in batches instead of one message per event.

With task events on (DESIGN §4), every task makes three (received, started, succeeded). Celery's
worker buffers them per group and publishes each buffer as one ``task.multi`` message, but it wakes
its event loop and flushes after every event, so a batch almost always holds one event: measured
here, the events took about a quarter of a worker's CPU per registry scan, most of it in the loop
thread. This consumer flushes at most every :data:`DEFAULT_EVENT_FLUSH_S` (and whenever a buffer
reaches Celery's limit of 24 events), so at hundreds of tasks a second one message carries many
events. Flower and ``celery events`` read ``task.multi`` messages as they read single events; they
see each event up to that interval later. Buffered events are flushed when the worker stops.
The consumer loop also keeps the worker's liveness heartbeat (``/healthz``).
:func:`gitops_tasks.app.celery_config` selects this class (``worker_consumer``).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer

from gitops_tasks.metrics import health

log = logging.getLogger(__name__)

#: Longest an event waits in the worker's buffer (seconds).
DEFAULT_EVENT_FLUSH_S = 0.2


class Consumer(CeleryConsumer):
    event_flush_s = DEFAULT_EVENT_FLUSH_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._flush_lock = threading.Lock()
        self._flush_pending = False

    def on_send_event_buffered(self) -> None:
        """Called by whichever thread buffered an event: arrange one flush per interval."""
        if not self.hub:
            return
        with self._flush_lock:
            if self._flush_pending:
                return
            self._flush_pending = True
        # call_soon is the thread-safe way into the loop; the loop thread then sets the timer.
        self.hub.call_soon(self._start_flush_timer)

    def _start_flush_timer(self) -> None:
        self.hub.call_later(self.event_flush_s, self._flush_buffered)

    def _flush_buffered(self) -> None:
        with self._flush_lock:
            self._flush_pending = False
        self._flush_events()

    def register_with_event_loop(self, hub: Any) -> None:
        """Each time the loop (re)starts: touch the liveness heartbeat from a timer of the loop
        itself, so it goes stale when the loop stops (see :mod:`gitops_tasks.metrics.health`)."""
        super().register_with_event_loop(hub)
        health.CONSUMER.touch()
        hub.call_repeatedly(health.CONSUMER.touch_every_s, health.CONSUMER.touch)

    def shutdown(self) -> None:
        try:
            self._flush_events()
        except Exception as exc:
            # The connection may be gone already; stopping matters more than these events.
            log.warning("could not flush task events on shutdown: %s", exc)
        super().shutdown()
