"""The one exception type of the git concern, classified by what should happen next."""

from __future__ import annotations

from typing import Literal

#: What the caller should do after a :class:`GitError` (a subset of ``Outcome.result``).
ErrorResult = Literal["transient", "stalled", "waiting"]


class GitError(Exception):
    """A git poll, fetch or checkout that could not finish.

    ``reason`` is a Flux-style CamelCase reason (see :mod:`gitops_tasks.sources.reconcile` for the
    list); ``message`` is already redacted: it never holds a password, token, key or a URL with
    credentials, so it may go into status, events and logs as is.

    - ``stalled=True``: needs a person (auth refused, host key unknown or changed, bad secret or
      spec); retrying will not help until the object or its secret changes.
    - ``waiting=True``: the remote answered but the wanted ref is not there (yet); poll again at
      the normal interval rather than backing off.
    - neither: transient (network, timeout, server error); back off and retry.
    """

    def __init__(self, reason: str, message: str, *, stalled: bool = False, waiting: bool = False) -> None:
        if stalled and waiting:
            raise ValueError("a GitError is either stalled or waiting, not both")
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.stalled = stalled
        self.waiting = waiting

    @property
    def result(self) -> ErrorResult:
        if self.stalled:
            return "stalled"
        return "waiting" if self.waiting else "transient"

    def __repr__(self) -> str:
        return f"GitError({self.reason!r}, {self.message!r}, result={self.result!r})"
