"""The Receivers the service answers for: read from the catalog, tokens from their Secrets.

The table (path → Receiver and token) is rebuilt from the catalog every ``refresh_s`` and, at
most once per ``miss_refresh_s``, when a request names a path it does not know, so a Receiver
applied a moment ago answers without a restart while a flood of unknown paths costs Redis one
read per ``miss_refresh_s``. Each rebuild writes the Receivers' status as Flux's
notification-controller does: ``webhookPath`` and ``Ready`` ("Receiver initialized for path: …"),
or ``Ready=False`` ``TokenNotFound`` when the Secret or its ``token`` key is missing.

Thread-safe; does I/O (Redis, Secrets).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops_tasks.objects.model import Object
from gitops_tasks.objects.outcome import Outcome
from gitops_tasks.receivers.verify import webhook_path
from gitops_tasks.store import Catalog, StatusStore
from gitops_tasks.store.summary import summarise

log = logging.getLogger(__name__)

#: Seconds between rebuilds of the table from the catalog (and status writes).
DEFAULT_REFRESH_S = 1.0
#: Shortest time between two rebuilds caused by requests for unknown paths.
DEFAULT_MISS_REFRESH_S = 1.0

#: ``(namespace, name)`` → the Secret's keys and values, or None when there is no such Secret.
SecretReader = Callable[[str, str], Mapping[str, str] | None]


def directory_secrets(secrets_dir: Path) -> SecretReader:
    """Secrets from a directory laid out like mounted Secret volumes (``<dir>/<ns>/<name>/<key>``)."""

    def read(namespace: str, name: str) -> Mapping[str, str] | None:
        directory = Path(secrets_dir) / namespace / name
        if not directory.is_dir():
            return None
        return {
            p.name: p.read_text(encoding="utf-8", errors="replace")
            for p in directory.iterdir()
            if not p.name.startswith(".") and p.is_file()
        }

    return read


@dataclass(frozen=True)
class Entry:
    """One Receiver the service answers for, with its token (never logged)."""

    receiver: Object
    token: str
    path: str


class Directory:
    """Path → :class:`Entry`, kept fresh from ``catalog`` (see the module docstring)."""

    def __init__(
        self,
        catalog: Catalog,
        status: StatusStore,
        secrets: SecretReader,
        *,
        refresh_s: float = DEFAULT_REFRESH_S,
        miss_refresh_s: float = DEFAULT_MISS_REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.catalog = catalog
        self.status = status
        self.secrets = secrets
        self.refresh_s = refresh_s
        self.miss_refresh_s = miss_refresh_s
        self._clock = clock
        self._lock = threading.Lock()
        self._refreshing = threading.RLock()
        self._entries: dict[str, Entry] = {}
        self._loaded_at: float | None = None
        self._written: dict[str, dict[str, Any]] = {}

    @property
    def loaded(self) -> bool:
        """True once the table was read from the catalog at least once."""
        return self._loaded_at is not None

    def cached(self, path: str) -> Entry | None:
        """The Receiver answering ``path`` if the table holds it and is not due for a rebuild;
        None otherwise (then call :meth:`lookup`, which may read Redis). Never blocks on I/O."""
        loaded_at = self._loaded_at
        if loaded_at is None or self._clock() - loaded_at >= self.refresh_s:
            return None
        return self._entries.get(path)

    def lookup(self, path: str) -> Entry | None:
        """The Receiver answering ``path``; rebuilds the table first when it is due, or when the
        path is unknown and the last rebuild is older than ``miss_refresh_s``."""
        now = self._clock()
        with self._lock:
            loaded_at, entry = self._loaded_at, self._entries.get(path)
        fresh = loaded_at is not None and now - loaded_at < self.refresh_s
        if fresh and (entry is not None or now - loaded_at < self.miss_refresh_s):  # type: ignore[operator]
            return entry
        with self._refreshing:
            # Another request may have rebuilt the table while this one waited for the lock.
            if self._loaded_at is None or self._loaded_at <= now:
                self.refresh()
            with self._lock:
                return self._entries.get(path)

    def refresh(self) -> int:
        """Rebuild the table from the catalog and write changed statuses; the number of paths."""
        with self._refreshing:
            return self._refresh()

    def _refresh(self) -> int:
        entries: dict[str, Entry] = {}
        statuses: dict[str, tuple[Object, dict[str, Any]]] = {}
        for receiver in self.catalog.iter_kind("Receiver"):
            entry, outcome, path = self._entry(receiver)
            if entry is not None:
                entries[entry.path] = entry
            statuses[receiver.ref.key] = (receiver, self._status(receiver, outcome, path))
        with self._lock:
            self._entries = entries
            self._loaded_at = self._clock()
        for key, (receiver, status) in statuses.items():
            if self._written.get(key) != status:
                self.status.put(receiver.ref, status)
                self._written[key] = status
        for key in set(self._written) - set(statuses):
            del self._written[key]
        return len(entries)

    def _entry(self, receiver: Object) -> tuple[Entry | None, Outcome, str]:
        secret_name = (receiver.spec.get("secretRef") or {}).get("name", "")
        where = f"Secret {receiver.namespace}/{secret_name}"
        try:
            data = self.secrets(receiver.namespace, secret_name)
        except Exception as exc:
            log.warning(
                "Receiver %s/%s: reading %s failed: %s", receiver.namespace, receiver.name, where, exc
            )
            data = None
            missing = f"unable to read token from {where}: {type(exc).__name__}"
        else:
            missing = f"unable to read token from {where}: " + (
                "secret not found" if data is None else "no 'token' key"
            )
        if data is None or "token" not in data:
            return None, Outcome("stalled", "TokenNotFound", missing), ""
        path = webhook_path(data["token"], receiver.name, receiver.namespace)
        entry = Entry(receiver, data["token"], path)
        return entry, Outcome("success", "Succeeded", f"Receiver initialized for path: {path}"), path

    def _status(self, receiver: Object, outcome: Outcome, path: str) -> dict[str, Any]:
        prev = self._written.get(receiver.ref.key) or self.status.get(receiver.ref)
        generation = int(receiver.metadata.get("generation", 1))
        same = (
            prev.get("webhookPath", "") == path
            and prev.get("observedGeneration") == generation
            and (prev.get("conditions") or [{}])[0].get("message") == outcome.message
        )
        if same:
            return prev
        status = summarise(prev, outcome, generation=generation, now=time.time())
        status["webhookPath"] = path
        status.pop("failures", None)
        return status
