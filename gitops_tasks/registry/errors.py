"""The one exception type of the registry concern, classified by what should happen next."""

from __future__ import annotations

from typing import Literal

#: What a failed scan means: decides the Outcome in :mod:`gitops_tasks.registry.reconcile`.
ErrorKind = Literal[
    "auth", "not_found", "rate_limited", "invalid", "transient", "unavailable", "busy", "limit"
]


class RegistryError(Exception):
    """A registry request or a scan step that could not finish.

    ``kind`` says what happened: ``auth`` (credentials refused or missing: 401/403), ``not_found``
    (404 / NAME_UNKNOWN), ``rate_limited`` (429 or TOOMANYREQUESTS, or our own limiter would wait
    too long; ``retry_after_s`` says when to try again), ``invalid`` (the spec or a secret cannot be
    used), ``transient`` (network, timeout, 5xx, a malformed answer), ``unavailable`` (the host is
    failing and backed off for every worker, or its circuit is open; ``retry_after_s`` says when it
    may be tried), ``busy`` (every request slot of the host in this worker is taken) or ``limit``
    (an answer passed a configured cap: bytes per response, tags per repository, pages per scan).

    ``reason`` optionally overrides the CamelCase reason :mod:`.reconcile` would choose
    (``SecretNotFound``, ``InvalidImage``...). ``message`` never holds a password or token: it may go
    into status, events and logs as is.
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        reason: str | None = None,
        retry_after_s: float | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message
        self.reason = reason
        self.retry_after_s = retry_after_s
        self.status_code = status_code

    def __repr__(self) -> str:
        return f"RegistryError({self.kind!r}, {self.message!r}, reason={self.reason!r})"
