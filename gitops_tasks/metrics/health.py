"""Heartbeats: a loop that runs touches one; a probe asks how old it is.

The worker's consumer loop touches :data:`CONSUMER` from a timer of its own event loop, and beat's
scheduler touches :data:`SCHEDULER` at every tick, so a loop that stops (blocked, stopped, its
thread gone) lets its heartbeat go stale while the HTTP server thread still answers: ``/healthz``
then says 503 and the kubelet restarts the container. A heartbeat file (optional) carries the same
time for probes that read files.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: A heartbeat older than this is stale (seconds): a loop touches it every few seconds.
DEFAULT_STALE_S = 60.0
#: How often the worker's consumer loop touches its heartbeat (seconds; a quarter of the stale
#: threshold when that is shorter).
DEFAULT_TOUCH_EVERY_S = 5.0


@dataclass
class Heartbeat:
    """The last time a loop showed it runs (monotonic seconds; ``None`` before its first touch),
    and facts about it a readiness answer reports (``role`` for beat)."""

    name: str
    stale_s: float = DEFAULT_STALE_S
    touched_at: float | None = None
    started_at: float = field(default_factory=time.monotonic)
    facts: dict[str, Any] = field(default_factory=dict)
    #: Tasks run inside the loop itself (Celery's solo pool): a running task holds the loop, so the
    #: heartbeat counts as fresh while one runs (its time limit bounds it).
    inline_tasks: bool = False
    running: int = 0
    path: Path | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def touch_every_s(self) -> float:
        return min(DEFAULT_TOUCH_EVERY_S, self.stale_s / 4)

    def touch(self, **facts: Any) -> None:
        """Record that the loop runs now (and update ``facts``); writes the heartbeat file if set."""
        with self._lock:
            self.touched_at = time.monotonic()
            self.facts.update(facts)
        if self.path is not None:
            try:
                tmp = self.path.with_name(self.path.name + ".tmp")
                tmp.write_text(f"{time.time():.3f}\n")
                os.replace(tmp, self.path)
            except OSError:
                pass  # a probe reading the file sees it go stale: the right answer for a full disk

    def task_started(self) -> None:
        if self.inline_tasks:
            with self._lock:
                self.running += 1
            self.touch()

    def task_finished(self) -> None:
        if self.inline_tasks:
            with self._lock:
                self.running = max(0, self.running - 1)
            self.touch()

    def age_s(self, now: float | None = None) -> float | None:
        """Seconds since the last touch (``None``: never touched)."""
        with self._lock:
            touched = self.touched_at
        if touched is None:
            return None
        if self.running:
            return 0.0
        return (time.monotonic() if now is None else now) - touched

    def alive(self, now: float | None = None) -> bool:
        """Touched within ``stale_s``, or not yet touched but started within ``stale_s`` (starting up)."""
        now = time.monotonic() if now is None else now
        age = self.age_s(now)
        if age is None:
            return now - self.started_at <= self.stale_s
        return age <= self.stale_s

    def ready(self, now: float | None = None) -> bool:
        """Touched at least once and not stale: the loop has started and still runs."""
        age = self.age_s(now)
        return age is not None and age <= self.stale_s

    def report(self, now: float | None = None) -> dict[str, Any]:
        age = self.age_s(now)
        with self._lock:
            facts = dict(self.facts)
        return {
            "loop": self.name,
            "alive": self.alive(now),
            "ready": self.ready(now),
            "heartbeatAgeSeconds": None if age is None else round(age, 3),
            "staleAfterSeconds": self.stale_s,
            **facts,
        }


#: The worker's consumer loop (touched by :class:`gitops_tasks.consumer.Consumer`).
CONSUMER = Heartbeat("consumer")
#: Beat's scheduling loop (touched by :class:`beat_schedule.scheduler.CatalogScheduler`).
SCHEDULER = Heartbeat("scheduler")
