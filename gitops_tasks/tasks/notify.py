"""Tasks of the ``notify`` queue, and what drives them.

``gitops.notify.dispatch`` routes the inbox and sends what is due (:mod:`gitops_tasks.notify`).
It takes no object and no secret: the work is in Redis. Three things queue it, each at most once
at a time (the ``notify:kick`` key): an event being emitted in a worker, and each worker's tick
thread, which every ``notify_tick_s`` looks for unrouted events and due deliveries (retries,
rate-limited sends, a killed sender's lease run out) and refreshes Providers' and Alerts'
readiness. A dispatch task lost by the broker is thus replaced by the next tick.
"""

from __future__ import annotations

import logging
import threading
import time
from functools import cache
from typing import Any

import redis
import requests
from celery import shared_task
from celery.signals import worker_ready, worker_shutdown

from gitops_tasks import tasknames
from gitops_tasks.notify import dispatch, readiness
from gitops_tasks.notify.deliver import DISPATCH_FAILED, Deliverer, describe
from gitops_tasks.notify.outbox import Outbox
from gitops_tasks.notify.route import Router
from gitops_tasks.objects.model import ObjectRef
from gitops_tasks.ratelimit import RedisTokenBucket
from gitops_tasks.store.summary import summarise
from gitops_tasks.tasks.context import Context, context

log = logging.getLogger(__name__)

#: While a dispatch task is queued, no other is (renewed by nothing: a lost one is replaced then).
DEFAULT_KICK_TTL_MS = 10_000
#: How often one worker rewrites the readiness of every Provider and Alert.
DEFAULT_READINESS_S = 5.0

_stop = threading.Event()


def kick(ctx: Context, reason: str = "event") -> bool:
    """Queue a dispatch unless one is queued already. Never raises: an event must not fail its run
    because the broker is away (the next tick queues the dispatch)."""
    try:
        if not ctx.client.set(ctx.keys.notify_kick, reason, nx=True, px=DEFAULT_KICK_TTL_MS):
            return False
        ctx.app.send_task(tasknames.NOTIFY_DISPATCH, kwargs={"reason": reason}, queue="notify")
        return True
    except Exception as exc:  # the tick retries; the event itself is stored
        log.warning("notify dispatch not queued (%s: %s); the next tick queues it", type(exc).__name__, exc)
        return False


@cache
def session() -> requests.Session:
    return requests.Session()


_buckets: dict[tuple[float, int], RedisTokenBucket] = {}
_buckets_lock = threading.Lock()


def bucket_for(ctx: Context, provider_type: str, host: str) -> RedisTokenBucket | None:
    """The shared per-host limiter for ``host`` (settings ``notify_hosts``, then the type's rate
    in ``notify_type_rps``); None when neither limits it."""
    settings = ctx.settings
    host_limits = settings.notify_hosts.get(host) or settings.notify_hosts.get(host.split(":")[0]) or {}
    rps = host_limits.get("rps") or settings.notify_type_rps.get(provider_type)
    if not rps:
        return None
    burst = int(host_limits.get("burst", 1))
    with _buckets_lock:
        bucket = _buckets.get((float(rps), burst))
        if bucket is None:
            bucket = RedisTokenBucket(ctx.client, ctx.keys, rps=float(rps), burst=burst)
            _buckets[(float(rps), burst)] = bucket
        return bucket


def router(ctx: Context) -> Router:
    return Router(ctx.client, ctx.keys, ctx.catalog, dedupe_s=ctx.settings.notify_dedupe_s)


def deliverer(ctx: Context) -> Deliverer:
    def emit_failure(alert: ObjectRef, message: str) -> None:
        ctx.events.emit(alert, severity="error", reason=DISPATCH_FAILED, message=message)

    return Deliverer(
        outbox=Outbox(ctx.client, ctx.keys),
        object_of=ctx.catalog.get,
        bucket_for=lambda kind, host: bucket_for(ctx, kind, host),
        emit_failure=emit_failure,
        secrets_dir=ctx.settings.resolved_secrets_dir,
        max_age_s=ctx.settings.notify_max_age_s,
        backoff_base_s=ctx.settings.notify_backoff_base_s,
        backoff_max_s=ctx.settings.notify_backoff_max_s,
        session=session(),
        lease_s=ctx.settings.notify_lease_s,
    )


@shared_task(name=tasknames.NOTIFY_DISPATCH, bind=True, ignore_result=True)
def dispatch_task(self: Any, reason: str = "event") -> dict[str, Any]:
    """Route new events to their Alerts and send the notifications that are due."""
    ctx = context()
    # From here on a new event queues another dispatch (which may run beside this one: lanes are
    # claimed atomically, so no record is sent twice).
    ctx.client.delete(ctx.keys.notify_kick)
    counts = dispatch.run_once(
        router(ctx),
        deliverer(ctx),
        concurrency=ctx.settings.notify_concurrency,
        lease_s=ctx.settings.notify_lease_s,
    )
    if counts.get("retry") or counts.get("failed"):
        log.info("notify dispatch (%s): %s", reason, describe(counts))
    return {"result": "success", **counts}


def refresh_readiness(ctx: Context) -> None:
    """Write the Ready condition of every Provider and Alert whose readiness changed."""
    now = time.time()
    ready_providers: dict[str, bool] = {}
    providers = {p.ref.key: p for p in ctx.catalog.iter_kind("Provider")}
    for key, provider in providers.items():
        outcome = readiness.provider_outcome(provider, secrets_dir=ctx.settings.resolved_secrets_dir)
        ready_providers[key] = outcome.ready
        _store(ctx, provider.ref, outcome, int(provider.metadata.get("generation", 1)), now)
    for alert in ctx.catalog.iter_kind("Alert"):
        name = str((alert.spec.get("providerRef") or {}).get("name", ""))
        ref = ObjectRef("Provider", alert.namespace, name)
        outcome = readiness.alert_outcome(alert, providers.get(ref.key), ready_providers.get(ref.key, False))
        _store(ctx, alert.ref, outcome, int(alert.metadata.get("generation", 1)), now)


def _store(ctx: Context, ref: ObjectRef, outcome: Any, generation: int, now: float) -> None:
    prev = ctx.status.get(ref)
    ready: dict[str, Any] = next((c for c in prev.get("conditions", []) if c.get("type") == "Ready"), {})
    same = (
        ready.get("reason") == outcome.reason
        and ready.get("message") == outcome.message
        and prev.get("observedGeneration") == generation
    )
    if not same:
        ctx.status.put(ref, summarise(prev, outcome, generation=generation, now=now))


def tick(ctx: Context) -> None:
    """One look for work: kick a dispatch when events wait or a delivery is due; refresh
    readiness when no other worker did lately."""
    outbox = Outbox(ctx.client, ctx.keys)
    due = outbox.next_due()
    if outbox.inbox_waiting() or (due is not None and due <= time.time()):
        kick(ctx, "tick")
    if ctx.client.set(ctx.keys.notify_readiness, "1", nx=True, px=int(DEFAULT_READINESS_S * 1000)):
        refresh_readiness(ctx)


def _tick_loop() -> None:
    ctx = context()
    while not _stop.is_set():
        try:
            tick(ctx)
        except redis.RedisError as exc:
            log.debug("notify tick: %s", exc)
        except Exception:
            log.exception("notify tick failed")
        _stop.wait(ctx.settings.notify_tick_s)


@worker_ready.connect
def _start(**_: Any) -> None:
    _stop.clear()
    threading.Thread(target=_tick_loop, name="notify-tick", daemon=True).start()


@worker_shutdown.connect
def _shutdown(**_: Any) -> None:
    _stop.set()
