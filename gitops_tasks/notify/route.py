"""Routing: inbox events → the Alerts they match → delivery records in the outbox.

One process routes at a time (a Redis lock), so records enter each lane in event order. Reads the
catalog (Alerts, Providers, and an object's labels when a source has ``matchLabels``) and Redis.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Mapping

import redis

from gitops_tasks.notify import match
from gitops_tasks.notify.outbox import Match, Outbox
from gitops_tasks.objects.model import Object, ObjectRef
from gitops_tasks.store import Catalog
from gitops_tasks.store.keys import Keys

log = logging.getLogger(__name__)

#: Inbox entries routed per round trip.
DEFAULT_BATCH = 200
_EVENT_FIELDS = ("kind", "namespace", "name", "severity", "message", "revision")
#: Lifetime of the router lock (renewed by every batch).
DEFAULT_LOCK_TTL_MS = 30_000


def _event_json(fields: Mapping[str, str], alert: Object, api_version: str) -> str:
    return json.dumps(
        {
            "kind": fields.get("kind", ""),
            "namespace": fields.get("namespace", ""),
            "name": fields.get("name", ""),
            "severity": fields.get("severity", "info"),
            "reason": fields.get("reason", ""),
            "message": fields.get("message", ""),
            "revision": fields.get("revision", ""),
            "api_version": api_version,
            "time": float(fields.get("time", "0") or 0),
            "metadata": match.metadata_for(alert),
            "controller": match.CONTROLLER_BY_KIND.get(fields.get("kind", ""), "gitops-tasks"),
        },
        separators=(",", ":"),
    )


class Router:
    def __init__(self, client: redis.Redis, keys: Keys, catalog: Catalog, *, dedupe_s: float) -> None:
        self.client = client
        self.keys = keys
        self.catalog = catalog
        self.outbox = Outbox(client, keys)
        self.dedupe_ms = int(dedupe_s * 1000)

    def route_all(self, *, budget_s: float = 10.0) -> int:
        """Route what the inbox holds (within ``budget_s``); returns records created. Returns 0 at
        once when another process is routing (it routes what arrived meanwhile)."""
        token = uuid.uuid4().hex
        lock = self.keys.notify_router_lock
        created = 0
        deadline = time.monotonic() + budget_s
        while time.monotonic() < deadline:
            if not self.client.set(lock, token, nx=True, px=DEFAULT_LOCK_TTL_MS):
                return created
            try:
                self.outbox.ensure_group()
                while time.monotonic() < deadline:
                    entries = self.outbox.read_inbox(count=DEFAULT_BATCH)
                    if not entries:
                        break
                    created += self._route_batch(entries)
                    self.client.pexpire(lock, DEFAULT_LOCK_TTL_MS)
            finally:
                if self.client.get(lock) == token:
                    self.client.delete(lock)
            # An event that arrived after the last read, while its kick found the lock held.
            if not self.outbox.inbox_waiting():
                break
        return created

    def _route_batch(self, entries: list[tuple[str, dict[str, str]]]) -> int:
        alerts = [a for a in self.catalog.iter_kind("Alert") if not a.suspended]
        providers: dict[str, Object | None] = {}
        labels: dict[str, Mapping[str, str] | None] = {}
        objects: dict[str, Object | None] = {}

        def object_of(kind: str, namespace: str, name: str) -> Object | None:
            key = f"{kind}/{namespace}/{name}"
            if key not in objects:
                objects[key] = self.catalog.get(ObjectRef(kind, namespace, name))
            return objects[key]

        def labels_of(kind: str, namespace: str, name: str) -> Mapping[str, str] | None:
            key = f"{kind}/{namespace}/{name}"
            if key not in labels:
                obj = object_of(kind, namespace, name)
                labels[key] = None if obj is None else dict(obj.metadata.get("labels") or {})
            return labels[key]

        now = time.time()
        pipe = self.client.pipeline(transaction=False)
        for entry_id, fields in entries:
            event = {k: fields.get(k, "") for k in _EVENT_FIELDS}
            matches: list[Match] = []
            for alert in alerts:
                if not match.alert_matches(alert, event, labels_of):
                    continue
                provider_ref = ObjectRef("Provider", alert.namespace, str(alert.spec["providerRef"]["name"]))
                if provider_ref.key not in providers:
                    providers[provider_ref.key] = self.catalog.get(provider_ref)
                provider = providers[provider_ref.key]
                if provider is not None and provider.suspended:
                    continue  # Flux: a suspended Provider takes nothing
                obj = object_of(event["kind"], event["namespace"], event["name"])
                api_version = obj.api_version if obj is not None else match.api_version_of(event["kind"])
                matches.append(
                    Match(
                        alert_key=alert.ref.key,
                        provider_key=provider_ref.key,
                        transitions=match.transitions_only(alert),
                        event_json=_event_json(fields, alert, api_version),
                    )
                )
            self.outbox.route(
                entry_id,
                severity=event["severity"],
                revision=event["revision"],
                object_key=f"{event['kind']}/{event['namespace']}/{event['name']}",
                dedupe_digest=match.dedupe_digest(event),
                dedupe_ms=self.dedupe_ms,
                matches=matches,
                now=now,
                pipe=pipe,
            )
        # One script per event (each atomic), sent together and run in order.
        answers = [int(n) for n in pipe.execute()]
        log.debug(
            "routed %d events: %d records, %d deduplicated",
            len(entries),
            sum(n for n in answers if n > 0),
            sum(1 for n in answers if n < 0),
        )
        return sum(n for n in answers if n > 0)
