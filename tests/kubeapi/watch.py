"""Watch: the store's recent change events streamed to a client, one JSON event per line.

A watch without ``resourceVersion`` (or with ``"0"``) starts with an ``ADDED`` event per existing object;
one with a resourceVersion replays the changes after it, or answers a single ``ERROR`` event (410
Expired) when that version is older than the retained history. ``labelSelector`` and ``fieldSelector``
filter events by the object they carry (an object that stops matching is not reported as deleted).
The stream ends after ``timeoutSeconds`` (default and cap 1800 s) or when the server stops.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tests.kubeapi.errors import ApiError
from tests.kubeapi.resources import ResourceType
from tests.kubeapi.selectors import parse_field_selector, parse_label_selector

if TYPE_CHECKING:
    from tests.kubeapi.store import Store

#: Longest a watch stays open, in seconds.
MAX_TIMEOUT_S = 1800
#: How often a quiet watch checks whether the server is stopping, in seconds.
POLL_S = 0.2


@dataclass(frozen=True)
class Event:
    resource_version: int
    type: str  # ADDED, MODIFIED or DELETED
    group: str
    plural: str
    obj: dict[str, Any]


@dataclass
class WatchStream:
    """What a watch request answers: events to send until the generator ends."""

    events: Iterator[dict[str, Any]]


def watch(
    store: Store,
    rt: ResourceType,
    namespace: str | None,
    params: dict[str, str],
    *,
    stopping: Callable[[], bool],
) -> WatchStream:
    labels_match = parse_label_selector(params.get("labelSelector"))
    fields_match = parse_field_selector(params.get("fieldSelector"))
    timeout_s = min(int(params.get("timeoutSeconds") or MAX_TIMEOUT_S), MAX_TIMEOUT_S)

    def matches(obj: dict[str, Any]) -> bool:
        metadata = obj.get("metadata") or {}
        if namespace and rt.namespaced and metadata.get("namespace") != namespace:
            return False
        return labels_match(metadata.get("labels") or {}) and fields_match(obj)

    since = params.get("resourceVersion") or "0"
    with store.lock:
        if since == "0":
            cursor = store.resource_version
            initial = [
                {"type": "ADDED", "object": store.out(rt, obj)}
                for _, obj in store.select(rt, namespace, None, None)
                if matches(obj)
            ]
        else:
            cursor = int(since) if since.isdigit() else -1
            oldest = store.events[0].resource_version if store.events else store.resource_version + 1
            if cursor < 0 or (cursor < oldest - 1 and cursor < store.resource_version):
                expired = ApiError(410, "Expired", f"too old resource version: {since} ({oldest - 1})")
                return WatchStream(iter([{"type": "ERROR", "object": expired.status()}]))
            initial = []

    def events() -> Iterator[dict[str, Any]]:
        nonlocal cursor
        yield from initial
        deadline = time.monotonic() + timeout_s
        while not stopping() and (remaining := deadline - time.monotonic()) > 0:
            with store.changed:
                store.changed.wait_for(_newer_than(store, cursor, stopping), timeout=min(POLL_S, remaining))
                pending = [
                    {"type": event.type, "object": store.out(rt, event.obj)}
                    for event in store.events
                    if event.resource_version > cursor
                    and (event.group, event.plural) == (rt.group, rt.plural)
                    and matches(event.obj)
                ]
                cursor = store.resource_version
            yield from pending

    return WatchStream(events())


def _newer_than(store: Store, version: int, stopping: Callable[[], bool]) -> Callable[[], bool]:
    return lambda: store.resource_version > version or stopping()
