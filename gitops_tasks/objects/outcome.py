"""How a reconcile ended: the one value every concern returns and ``tasks/`` turns into status.

Concerns never write conditions themselves; they return an :class:`Outcome` and the task layer
summarises it into Flux-style conditions, an event (when something changed) and the next run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Result = Literal["success", "waiting", "transient", "stalled"]


@dataclass
class Outcome:
    """The end of one reconcile.

    - ``success``: run again at the interval (with jitter).
    - ``waiting``: a dependency or lock is not ready; run again after ``retry_after_s``.
    - ``transient``: network, 5xx, 429, timeout; back off exponentially.
    - ``stalled``: needs a person (bad spec, auth refused, host key changed); no backoff retries.
    """

    result: Result
    #: CamelCase reason, as Flux writes them (``Succeeded``, ``AuthenticationFailed``...).
    reason: str
    #: Human message; must never contain credentials.
    message: str
    #: Per-kind status facts merged into the stored status (``artifact``, ``latestImage``...).
    facts: dict[str, Any] = field(default_factory=dict)
    #: The revision this run saw (``main@sha1:...``), if any.
    revision: str | None = None
    #: True when the run changed something dependents care about (a new revision).
    changed: bool = False
    #: Event reason to emit when ``changed`` (defaults to ``reason``).
    event_reason: str | None = None
    #: Delay before the next run, for ``waiting`` (seconds).
    retry_after_s: float | None = None

    @property
    def ready(self) -> bool:
        return self.result == "success"


class LockLost(Exception):
    """The run lock of this reconcile expired or was taken: another worker may run the object now,
    so the reconcile must stop before its next side effect (a push, an apply, a prune). Raised by
    the ``ensure_held`` callable the task layer hands to a concern; the runner discards the run."""
