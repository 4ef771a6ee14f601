"""Events in a capped Redis stream (object, severity, reason, message, revision, time)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import redis

from gitops_tasks.objects.model import ObjectRef
from gitops_tasks.store.keys import Keys


@dataclass
class Event:
    kind: str
    namespace: str
    name: str
    #: ``info`` or ``error`` (Flux's event severities).
    severity: str
    reason: str
    message: str
    revision: str = ""
    time: float = 0.0
    id: str = ""

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(self.kind, self.namespace, self.name)


#: Events kept in the notify inbox while nothing routes them (see ``Keys.notify_inbox``).
DEFAULT_INBOX_MAXLEN = 100_000


class EventLog:
    """The capped event stream. Each event also enters the notify inbox in the same transaction,
    so an Alert sees it even when the capped stream has moved on; ``on_emit`` (if given) is called
    after each event is stored (the worker queues a notify dispatch with it)."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        maxlen: int = 10_000,
        inbox_maxlen: int = DEFAULT_INBOX_MAXLEN,
        on_emit: Callable[[], None] | None = None,
    ) -> None:
        self.client = client
        self.keys = keys
        self.maxlen = maxlen
        self.inbox_maxlen = inbox_maxlen
        self.on_emit = on_emit

    def emit(self, ref: ObjectRef, *, severity: str, reason: str, message: str, revision: str = "") -> str:
        fields = {
            "kind": ref.kind,
            "namespace": ref.namespace,
            "name": ref.name,
            "severity": severity,
            "reason": reason,
            "message": message,
            "revision": revision or "",
            "time": repr(time.time()),
        }
        pipe = self.client.pipeline(transaction=True)
        pipe.xadd(self.keys.events, fields, maxlen=self.maxlen, approximate=True)
        pipe.xadd(self.keys.notify_inbox, fields, maxlen=self.inbox_maxlen, approximate=True)
        entry_id, _inbox_id = pipe.execute()
        if self.on_emit is not None:
            self.on_emit()
        return str(entry_id)

    def recent(
        self, *, count: int = 100, ref: ObjectRef | None = None, match: Callable[[Event], bool] | None = None
    ) -> list[Event]:
        """The newest ``count`` events (oldest first), optionally only those of ``ref`` and those
        ``match`` accepts."""
        out: list[Event] = []
        last = "+"
        while len(out) < count:
            batch = self.client.xrevrange(self.keys.events, max=last, count=500)
            if not batch:
                break
            for entry_id, fields in batch:
                if entry_id == last:
                    continue
                event = _event(entry_id, fields)
                if (ref is None or event.ref == ref) and (match is None or match(event)):
                    out.append(event)
                    if len(out) >= count:
                        break
            last = batch[-1][0]
            if len(batch) < 500:
                break
        return list(reversed(out))

    def follow(
        self,
        *,
        since: str = "$",
        ref: ObjectRef | None = None,
        match: Callable[[Event], bool] | None = None,
        block_ms: int = 1000,
    ) -> Iterator[Event]:
        """Yield events as they arrive (forever); ``since`` is a stream id, ``$`` for new only."""
        last = since
        while True:
            batches = self.client.xread({self.keys.events: last}, block=block_ms, count=100)
            for _stream, entries in batches or []:
                for entry_id, fields in entries:
                    last = entry_id
                    event = _event(entry_id, fields)
                    if (ref is None or event.ref == ref) and (match is None or match(event)):
                        yield event


def _event(entry_id: str, fields: dict[str, str]) -> Event:
    return Event(
        kind=fields.get("kind", ""),
        namespace=fields.get("namespace", ""),
        name=fields.get("name", ""),
        severity=fields.get("severity", "info"),
        reason=fields.get("reason", ""),
        message=fields.get("message", ""),
        revision=fields.get("revision", ""),
        time=float(fields.get("time", "0") or 0),
        id=entry_id,
    )


def event_dict(event: Event) -> dict[str, object]:
    return asdict(event)
