"""The receiver's HTTP service (aiohttp): ``POST /hook/<digest>``, ``GET /healthz``, ``GET /readyz``,
``GET /metrics`` (Prometheus; requests answered by status among them).

A request goes through, in order: the path (404 unknown), the body cap (413), the per-path rate
limit (429 with ``Retry-After``), the Receiver's suspension (503, as Flux),
the type's verification (401 bad signature or token, 400 unusable payload or event not in
``spec.events``), pings (200, nothing reconciled), replays of a delivery id already handled
(200, nothing reconciled), then the trigger for every object the hook names (200; 500 when a
trigger failed, and the delivery is forgotten so the forge's retry is served).

Everything that blocks (Redis, Secrets, publishing) runs on a thread pool, never on the loop, in
one hop per request (a known path is found in memory on the loop).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gitops_tasks.objects.model import ObjectRef
from gitops_tasks.receivers.directory import Directory, Entry
from gitops_tasks.receivers.hooks import Hook
from gitops_tasks.receivers.targets import Objects, targets
from gitops_tasks.receivers.verify import HOOK_PATH_PREFIX, Rejected, verify
from gitops_tasks.store.hookgate import Deliveries

log = logging.getLogger(__name__)

#: Flux's cap on a request body (3 MiB); a larger one is answered 413 unread.
DEFAULT_MAX_BODY_BYTES = 3 * 1024 * 1024
#: Threads for the blocking work of requests (Redis round trips and publishing).
DEFAULT_THREADS = 8

#: ``(object, reason)`` → what became of the request (``queued``, ``trailing``, ``coalesced``).
Trigger = Callable[[ObjectRef, str], str]
#: Receiver path → 0.0 when a request may go now, else the seconds until one may.
Limiter = Callable[[str], float]


@dataclass
class Service:
    """What the handlers use; built by the command that starts the receiver."""

    directory: Directory
    objects: Objects
    trigger: Trigger
    limiter: Limiter
    deliveries: Deliveries
    ping: Callable[[], object]
    reconcilable: frozenset[str]
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    threads: int = DEFAULT_THREADS
    #: Path → monotonic time before which the limiter has no token for it (learnt from its answer),
    #: so a flood is answered 429 from memory, without a Redis round trip per request.
    blocked_until: dict[str, float] = field(default_factory=dict)


def _answer(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"message": message, **extra}, status=status)


def _too_many(wait_s: float) -> web.Response:
    retry = str(max(1, math.ceil(wait_s)))
    return web.json_response({"message": "rate limited"}, status=429, headers={"Retry-After": retry})


def make_app(service: Service) -> web.Application:
    """The aiohttp application serving ``service``."""
    pool = ThreadPoolExecutor(max_workers=service.threads, thread_name_prefix="receiver")
    app = web.Application(client_max_size=service.max_body_bytes)

    async def blocking(fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    async def hook(request: web.Request) -> web.Response:
        path = request.path
        entry = service.directory.cached(path)
        if entry is None:
            entry = await blocking(service.directory.lookup, path)
        if entry is None:
            return _answer(404, "no Receiver has this path")
        wait_s = service.blocked_until.get(path, 0.0) - time.monotonic()
        if wait_s > 0:
            return _too_many(wait_s)
        if (request.content_length or 0) > service.max_body_bytes:
            return _answer(413, f"body larger than {service.max_body_bytes} bytes")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _answer(413, f"body larger than {service.max_body_bytes} bytes")
        answer: web.Response = await blocking(_handle, service, entry, dict(request.headers), body)
        return answer

    async def healthz(request: web.Request) -> web.Response:
        return _answer(200, "ok")

    async def readyz(request: web.Request) -> web.Response:
        try:
            await blocking(service.ping)
        except Exception as exc:
            return _answer(503, f"Redis unreachable: {type(exc).__name__}")
        if not service.directory.loaded:
            return _answer(503, "Receivers not loaded yet")
        return _answer(200, "ready")

    async def close_pool(app: web.Application) -> None:
        pool.shutdown(wait=False, cancel_futures=True)

    # prometheus_client is imported here, not at import time: a worker chooses its multiprocess
    # directory first, and the CLI imports this module while building its parser.
    from gitops_tasks.metrics.exposition import CONTENT_TYPE, process_metrics
    from gitops_tasks.metrics.instruments import RECEIVER_REQUESTS

    async def metrics(request: web.Request) -> web.Response:
        body = await blocking(process_metrics)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    @web.middleware
    async def counted(request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        response: web.StreamResponse = await handler(request)
        if request.path.startswith(HOOK_PATH_PREFIX):
            RECEIVER_REQUESTS.labels(code=str(response.status)).inc()
        return response

    app.middlewares.append(counted)
    app.router.add_post(HOOK_PATH_PREFIX + "{digest}", hook)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.on_cleanup.append(close_pool)
    return app


def _handle(service: Service, entry: Entry, headers: dict[str, str], body: bytes) -> web.Response:
    """The rest of a request, on a pool thread (one hop): rate limit, suspension, verification,
    then what the hook names."""
    wait_s = service.limiter(entry.path)
    if wait_s > 0:
        service.blocked_until[entry.path] = time.monotonic() + wait_s
        return _too_many(wait_s)
    receiver = entry.receiver
    name = f"Receiver {receiver.namespace}/{receiver.name}"
    if receiver.suspended:
        log.info("%s: suspended; request refused", name)
        return _answer(503, "Receiver is suspended")
    try:
        verified = verify(
            str(receiver.spec.get("type", "")),
            token=entry.token,
            headers=headers,
            body=body,
            events=list(receiver.spec.get("events") or ()),
        )
    except Rejected as exc:
        log.warning("%s: request refused (%d): %s", name, exc.status, exc.message)
        return _answer(exc.status, exc.message)
    if verified.ping:
        return _answer(200, "pong")
    return _dispatch(service, entry, verified)


def _dispatch(service: Service, entry: Entry, hook: Hook) -> web.Response:
    """Trigger what ``hook`` names (on a pool thread)."""
    receiver = entry.receiver
    name = f"Receiver {receiver.namespace}/{receiver.name}"
    if hook.delivery and not service.deliveries.claim(entry.path, hook.delivery):
        log.info("%s: delivery %s already handled; nothing to do", name, hook.delivery)
        return _answer(200, "delivery already handled", requested=0)
    found = targets(receiver, hook, service.objects, reconcilable=service.reconcilable)
    for ref, why in found.skipped:
        log.info("%s: %s left alone: %s", name, ref, why)
    failed = 0
    for ref in found.matched:
        try:
            what = service.trigger(ref, f"webhook {receiver.namespace}/{receiver.name}")
        except Exception as exc:
            failed += 1
            log.error("%s: requesting a reconcile of %s failed: %s", name, ref, type(exc).__name__)
        else:
            log.info("%s: %s %s", name, ref, what)
    if failed:
        if hook.delivery:
            service.deliveries.forget(entry.path, hook.delivery)
        return _answer(500, f"{failed} reconcile request(s) failed", requested=len(found.matched) - failed)
    event = f" ({hook.event})" if hook.event else ""
    log.info("%s: hook%s handled, %d object(s) requested", name, event, len(found.matched))
    return _answer(200, "ok", requested=len(found.matched))
