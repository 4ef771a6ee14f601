"""The catalog collector: what Redis holds about every object, read when Prometheus scrapes.

One process runs it (``gitops-tasks metrics``), so every series exists once however many workers
run. It yields:

- ``gotk_resource_info`` with the labels kube-state-metrics produces for Flux's kinds (the custom
  resource state configuration of Flux's monitoring example): ``customresource_group``,
  ``customresource_kind``, ``customresource_version``, ``exported_namespace``, ``name``, ``ready``,
  ``suspended``, ``revision`` and the kind's own (``url``, ``source_name``, ``image``…). A label
  whose field is unset is left out, as kube-state-metrics does; URLs are masked.
- ``gitops_tasks_objects{kind,condition,status}`` and ``gitops_tasks_objects_suspended{kind}``.
- ``gitops_tasks_queue_length{queue}``: messages waiting in each broker queue (Redis brokers only).
- ``gitops_tasks_schedule_due_objects`` and ``gitops_tasks_schedule_overdue_seconds``: objects
  past their due time and how late the oldest is (beat falling behind, or no beat).
- ``gitops_tasks_beat_leader_present``: whether any beat holds the leader lock.
- ``gitops_tasks_registry_rate_limit_rps{host}`` and ``…_blocked_seconds{host}``: each registry
  host's shared rate now (halved after 429s, recovering) and how long it stays blocked.
- ``gitops_tasks_notification_backlog{namespace,name}``: deliveries waiting for each Provider, and
  ``gitops_tasks_notification_lanes_due``: outbox lanes due now.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import redis
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.samples import Sample

from gitops_tasks.objects.model import Object
from gitops_tasks.redact import redact
from gitops_tasks.store.keys import Keys
from gitops_tasks.store.status import StatusStore
from gitops_tasks.store.summary import condition

log = logging.getLogger(__name__)

#: Kombu's separator between a queue's name and its priority level, and the levels it uses.
KOMBU_PRIORITY_SEP = "\x06\x16"
KOMBU_PRIORITY_STEPS = (3, 6, 9)
#: Conditions counted by ``gitops_tasks_objects``.
CONDITIONS = ("Ready", "Stalled", "Reconciling")

#: A host's bucket as the limiter sees it now: ``{"rate": rps, "blocked_for_s": s}``.
BucketReader = Callable[[str], dict[str, Any]]


def _get(data: Any, *path: str | int) -> Any:
    for step in path:
        if isinstance(step, int):
            data = data[step] if isinstance(data, list) and len(data) > step else None
        else:
            data = data.get(step) if isinstance(data, dict) else None
        if data is None:
            return None
    return data


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


#: Per kind: label → where kube-state-metrics reads it for Flux ("spec"/"status" rooted paths).
_KIND_LABELS: dict[str, dict[str, tuple[str | int, ...]]] = {
    "Kustomization": {
        "revision": ("status", "lastAppliedRevision"),
        "source_name": ("spec", "sourceRef", "name"),
    },
    "HelmRelease": {
        "revision": ("status", "history", 0, "chartVersion"),
        "chart_name": ("status", "history", 0, "chartName"),
        "chart_app_version": ("status", "history", 0, "appVersion"),
        "chart_ref_name": ("spec", "chartRef", "name"),
        "chart_source_name": ("spec", "chart", "spec", "sourceRef", "name"),
    },
    "GitRepository": {"revision": ("status", "artifact", "revision"), "url": ("spec", "url")},
    "OCIRepository": {"revision": ("status", "artifact", "revision"), "url": ("spec", "url")},
    "HelmRepository": {"revision": ("status", "artifact", "revision"), "url": ("spec", "url")},
    "Bucket": {
        "revision": ("status", "artifact", "revision"),
        "endpoint": ("spec", "endpoint"),
        "bucket_name": ("spec", "bucketName"),
    },
    "HelmChart": {
        "revision": ("status", "artifact", "revision"),
        "chart_name": ("spec", "chart"),
        "chart_version": ("spec", "version"),
    },
    "Receiver": {"webhook_path": ("status", "webhookPath")},
    "ImageRepository": {"image": ("spec", "image")},
    "ImagePolicy": {"source_name": ("spec", "imageRepositoryRef", "name")},
    "ImageUpdateAutomation": {"source_name": ("spec", "sourceRef", "name")},
}
_MASKED = {"url", "endpoint"}


def resource_info_labels(obj: Object, status: dict[str, Any]) -> dict[str, str]:
    """The labels of ``obj``'s ``gotk_resource_info`` sample (pure; unset fields left out)."""
    group, _, version = obj.api_version.rpartition("/")
    labels: dict[str, str | None] = {
        "customresource_group": group,
        "customresource_kind": obj.kind,
        "customresource_version": version,
        "exported_namespace": obj.namespace,
        "name": obj.name,
        "ready": _text((condition(status, "Ready") or {}).get("status")),
        "suspended": _text(obj.spec.get("suspend")),
    }
    doc = {"spec": obj.spec, "status": status}
    for label, path in _KIND_LABELS.get(obj.kind, {}).items():
        value = _text(_get(doc, *path))
        labels[label] = redact(value) if value is not None and label in _MASKED else value
    return {k: v for k, v in labels.items() if v not in (None, "")}


class CatalogCollector:
    """A ``prometheus_client`` collector reading Redis at every scrape (a few round trips).

    ``broker`` is the broker's Redis client (``None`` when the broker is not Redis: no queue
    lengths); ``broker_prefix`` the broker's key prefix (``GITOPS_TASKS_KEY_PREFIX``, kombu's
    ``global_keyprefix``); ``buckets`` reads a registry host's bucket (``None``: no rate metrics).
    A Redis error fails the scrape (500), so Prometheus's ``up`` shows it.
    """

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        queues: Iterable[str],
        broker: redis.Redis | None = None,
        broker_prefix: str = "",
        buckets: BucketReader | None = None,
    ) -> None:
        self.client = client
        self.keys = keys
        self.queues = tuple(queues)
        self.broker = broker
        self.broker_prefix = broker_prefix
        self.buckets = buckets
        self.status = StatusStore(client, keys)

    def describe(self) -> list[Metric]:
        return []  # samples come and go with objects: nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        yield from self._objects()
        yield from self._schedule()
        if self.broker is not None:
            yield self._queues()
        if self.buckets is not None:
            yield from self._registry_hosts()
        yield from self._notifications()

    def _notifications(self) -> Iterator[Metric]:
        """The outbox: deliveries waiting per Provider, and how many (alert, object) lanes are due."""
        providers = sorted(
            k.decode() if isinstance(k, bytes) else k
            for k in self.client.smembers(self.keys.catalog_kind("Provider"))
        )
        pipe = self.client.pipeline(transaction=False)
        for key in providers:
            pipe.hget(self.keys.notify_stats(key), "pending")
        seconds, micros = self.client.time()
        pipe.zcount(self.keys.notify_due, "-inf", float(seconds) + micros / 1_000_000)
        *pending, due = pipe.execute()
        backlog = GaugeMetricFamily(
            "gitops_tasks_notification_backlog",
            "Notifications waiting in the outbox for a Provider (not yet delivered or ended).",
            labels=["namespace", "name"],
        )
        for key, value in zip(providers, pending, strict=True):
            _, namespace, name = key.split("/", 2)
            backlog.add_metric([namespace, name], max(0, int(value or 0)))
        yield backlog
        yield GaugeMetricFamily(
            "gitops_tasks_notification_lanes_due",
            "Outbox lanes (alert, object) whose next delivery is due now (senders behind when it grows).",
            value=due,
        )

    def _objects(self) -> Iterator[Metric]:
        raw = self.client.hgetall(self.keys.catalog)
        objects = sorted((Object.from_json(text) for text in raw.values()), key=lambda o: o.ref.key)
        statuses = self.status.get_many([o.ref for o in objects]) if objects else []
        info = Metric(
            "gotk_resource_info", "The current state of an object (Flux's kube-state-metrics).", "gauge"
        )
        counts: Counter[tuple[str, str, str]] = Counter()
        suspended: Counter[str] = Counter()
        kinds = set()
        for obj, status in zip(objects, statuses, strict=True):
            kinds.add(obj.kind)
            info.samples.append(Sample("gotk_resource_info", resource_info_labels(obj, status), 1.0))
            for ctype in CONDITIONS:
                found = condition(status, ctype)
                if found is not None:
                    counts[(obj.kind, ctype, str(found.get("status", "Unknown")))] += 1
                elif ctype == "Ready":
                    counts[(obj.kind, ctype, "Unknown")] += 1
            if obj.suspended:
                suspended[obj.kind] += 1
        yield info
        by_condition = GaugeMetricFamily(
            "gitops_tasks_objects",
            "Objects in the catalog by kind and condition status (Ready Unknown: never reconciled).",
            labels=["kind", "condition", "status"],
        )
        for (kind, ctype, value), count in sorted(counts.items()):
            by_condition.add_metric([kind, ctype, value], count)
        yield by_condition
        paused = GaugeMetricFamily(
            "gitops_tasks_objects_suspended", "Suspended objects in the catalog by kind.", labels=["kind"]
        )
        for kind in sorted(kinds):
            paused.add_metric([kind], suspended[kind])
        yield paused

    def _schedule(self) -> Iterator[Metric]:
        seconds, micros = self.client.time()
        now = float(seconds) + micros / 1_000_000
        pipe = self.client.pipeline(transaction=False)
        pipe.zcount(self.keys.schedule, "-inf", now)
        pipe.zrange(self.keys.schedule, 0, 0, withscores=True)
        pipe.exists(self.keys.beat_leader)
        due, first, leader = pipe.execute()
        overdue = max(0.0, now - first[0][1]) if first else 0.0
        yield GaugeMetricFamily(
            "gitops_tasks_schedule_due_objects", "Objects whose due time has passed, not yet sent.", value=due
        )
        yield GaugeMetricFamily(
            "gitops_tasks_schedule_overdue_seconds",
            "How long ago the most overdue object fell due (0 when none is due).",
            value=overdue,
        )
        yield GaugeMetricFamily(
            "gitops_tasks_beat_leader_present", "1 when a beat holds the leader lock.", value=int(leader)
        )

    def _queues(self) -> Metric:
        assert self.broker is not None
        pipe = self.broker.pipeline(transaction=False)
        for queue in self.queues:
            base = self.broker_prefix + queue
            pipe.llen(base)
            for step in KOMBU_PRIORITY_STEPS:
                pipe.llen(f"{base}{KOMBU_PRIORITY_SEP}{step}")
        lengths = pipe.execute()
        per = 1 + len(KOMBU_PRIORITY_STEPS)
        family = GaugeMetricFamily(
            "gitops_tasks_queue_length",
            "Tasks waiting in a broker queue (not yet taken by a worker).",
            labels=["queue"],
        )
        for i, queue in enumerate(self.queues):
            family.add_metric([queue], sum(lengths[i * per : (i + 1) * per]))
        return family

    def _registry_hosts(self) -> Iterator[Metric]:
        assert self.buckets is not None
        prefix = self.keys.rate_bucket("")
        hosts = sorted(
            {
                k.decode() if isinstance(k, bytes) else k
                for k in self.client.scan_iter(f"{prefix}*", count=500)
            }
        )
        rate = GaugeMetricFamily(
            "gitops_tasks_registry_rate_limit_rps",
            "A registry host's shared request rate now (halved after a 429, recovering after quiet).",
            labels=["host"],
        )
        blocked = GaugeMetricFamily(
            "gitops_tasks_registry_rate_limit_blocked_seconds",
            "Seconds until a registry host may be sent to again (its Retry-After).",
            labels=["host"],
        )
        for key in hosts:
            host = key[len(prefix) :]
            state = self.buckets(host)
            rate.add_metric([host], float(state["rate"]))
            blocked.add_metric([host], float(state["blocked_for_s"]))
        yield rate
        yield blocked
