"""Every Redis key this project writes, in one place (all under one configurable prefix)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    """Key names under ``prefix`` (default ``gt:``)."""

    prefix: str = "gt:"

    @property
    def catalog(self) -> str:
        """Hash: object key (``Kind/ns/name``) → object JSON."""
        return f"{self.prefix}catalog"

    def catalog_kind(self, kind: str) -> str:
        """Set: the object keys of one kind in the catalog (an index: listing a kind reads only it)."""
        return f"{self.prefix}catalog:kind:{kind}"

    def catalog_dependents(self, target_key: str) -> str:
        """Set: the keys of the objects whose ``sourceRef``, ``imageRepositoryRef`` or ``dependsOn``
        names the object ``target_key`` (an index: a run that changed something reads only its own
        dependents, and a scan only its own ImagePolicies)."""
        return f"{self.prefix}catalog:dependents:{target_key}"

    @property
    def catalog_indexes(self) -> str:
        """String: the version of the catalog's indexes (per kind, dependents) once they cover the
        whole catalog; a catalog written by an earlier version has them rebuilt by its next apply."""
        return f"{self.prefix}catalog:indexes"

    @property
    def catalog_marker(self) -> str:
        """Hash: the catalog's marker, written once when the catalog is created (epoch, created_at,
        created_by; replaces and lost_at when re-created after a loss): see ``store.marker``."""
        return f"{self.prefix}catalog:marker"

    @property
    def catalog_legacy_index_prefix(self) -> str:
        """Start of every key of an earlier version's ImagePolicy index (removed when the indexes
        are rebuilt)."""
        return f"{self.prefix}catalog:imagepolicies"

    @property
    def schedule(self) -> str:
        """Sorted set: object key → epoch seconds when it is next due."""
        return f"{self.prefix}schedule"

    @property
    def schedule_meta(self) -> str:
        """Hash: object key → JSON {task, queue, interval_s, timeout_s} beat needs to enqueue it."""
        return f"{self.prefix}schedule:meta"

    @property
    def status(self) -> str:
        """Hash: object key → status JSON."""
        return f"{self.prefix}status"

    @property
    def requests(self) -> str:
        """Hash: object key → token of the latest ``reconcile`` request (Flux's requestedAt)."""
        return f"{self.prefix}requests"

    @property
    def pending(self) -> str:
        """Hash: object key → reason of a request that found the object running (the holder owes a
        run that starts after it)."""
        return f"{self.prefix}pending"

    @property
    def events(self) -> str:
        """Capped stream of events."""
        return f"{self.prefix}events"

    @property
    def beat_leader(self) -> str:
        """String: the beat instance currently scheduling (others stand by)."""
        return f"{self.prefix}beat:leader"

    def guard(self, object_key: str) -> str:
        """String with TTL: set while a task for the object is queued (at most one queued)."""
        return f"{self.prefix}guard:{object_key}"

    def run_lock(self, object_key: str) -> str:
        """String with TTL: held while a task for the object runs (at most one running)."""
        return f"{self.prefix}lock:{object_key}"

    def branch_lock(self, url: str, branch: str) -> str:
        """String with TTL: serialises writes to one git branch."""
        digest = hashlib.sha256(f"{url}\0{branch}".encode()).hexdigest()[:24]
        return f"{self.prefix}lock:branch:{digest}"

    def rate_bucket(self, host: str) -> str:
        """Hash: the global token bucket of one registry host (tokens, last refill, rate, penalty)."""
        return f"{self.prefix}rl:{host}"

    def host_circuit(self, host: str) -> str:
        """Hash with TTL: one registry host's circuit (failures, backoff level, block, probe lease)."""
        return f"{self.prefix}circuit:{host}"

    def registry_token(self, host: str, scope: str) -> str:
        """String with TTL: a registry bearer token for (host, scope), shared by every worker."""
        digest = hashlib.sha256(f"{host}\0{scope}".encode()).hexdigest()[:24]
        return f"{self.prefix}regtoken:{digest}"

    def tags(self, object_key: str) -> str:
        """String: the compact tag list of one ImageRepository."""
        return f"{self.prefix}tags:{object_key}"

    def hook_window(self, object_key: str) -> str:
        """String with TTL: set while webhook-triggered reconciles of the object are throttled
        (``store.hookgate``): the end of the current window."""
        return f"{self.prefix}hook:window:{object_key}"

    def hook_trailing(self, object_key: str) -> str:
        """String with TTL: set while the object's one trailing webhook reconcile is scheduled."""
        return f"{self.prefix}hook:trailing:{object_key}"

    def hook_delivery(self, path: str, delivery: str) -> str:
        """String with TTL: a webhook delivery id already handled for one Receiver path (replays)."""
        digest = hashlib.sha256(f"{path}\0{delivery}".encode()).hexdigest()[:32]
        return f"{self.prefix}hook:delivery:{digest}"

    def receiver_bucket(self, path: str) -> str:
        """Hash: the global token bucket of one Receiver path (requests per second it may take)."""
        digest = hashlib.sha256(path.encode()).hexdigest()[:32]
        return f"{self.prefix}rl:hook:{digest}"

    # Notifications (gitops_tasks.notify): the inbox, the outbox and what delivery remembers.

    @property
    def notify_inbox(self) -> str:
        """Stream: every event, written with it, until the notify router has matched it to Alerts
        (consumer group ``notify``); routed entries are deleted."""
        return f"{self.prefix}notify:inbox"

    def notify_lane(self, lane: str) -> str:
        """Sorted set (all scores 0, ordered by member): the pending deliveries of one
        (alert, object) lane, members being zero-padded event ids (oldest first)."""
        return f"{self.prefix}notify:lane:{lane}"

    def notify_record(self, lane: str, member: str) -> str:
        """Hash: one delivery record (event JSON, alert, provider, created, attempts, last error)."""
        return f"{self.prefix}notify:rec:{lane}:{member}"

    @property
    def notify_due(self) -> str:
        """Sorted set: lane → when its head delivery may be tried (a claim moves it a lease ahead)."""
        return f"{self.prefix}notify:due"

    def notify_state(self, lane: str) -> str:
        """Hash: the last state one lane's Alert saw of its object (``failing``, ``revision``), for
        the ``transitions`` mode."""
        return f"{self.prefix}notify:state:{lane}"

    def notify_stats(self, object_key: str) -> str:
        """Hash: delivery figures of one Alert or Provider (pending, delivered, failed, last
        delivery time, last error)."""
        return f"{self.prefix}notify:stats:{object_key}"

    def notify_dedupe(self, digest: str) -> str:
        """String with TTL: an (object, message, revision) sent within the dedupe window."""
        return f"{self.prefix}notify:dedupe:{digest}"

    @property
    def notify_router_lock(self) -> str:
        """String with TTL: held by the one process routing the inbox (keeps lanes in order)."""
        return f"{self.prefix}notify:router"

    @property
    def notify_kick(self) -> str:
        """String with TTL: set while a notify dispatch task is queued (at most one waits)."""
        return f"{self.prefix}notify:kick"

    @property
    def notify_readiness(self) -> str:
        """String with TTL: set by the worker that refreshes Alert and Provider readiness now."""
        return f"{self.prefix}notify:readiness"
