"""Sending: a claimed lane's head record → its Provider's requests → delivered, retried or ended.

What happens next is decided by what the provider answered:

- 2xx: delivered; the lane's next record is due at once.
- a refused or dropped connection, a timeout, 5xx, 408 or 429: tried again with exponential backoff
  and jitter (a 429's ``Retry-After`` honoured, and reported to the shared rate limiter), until the
  record is older than ``max_age_s``; then it ends with a ``NotificationDispatchFailed`` event.
- any other 4xx, a Provider gone or of a type not sent: ended at once with that event.
- a missing secret: tried again (the secret may come); the Provider shows it in its status.

Each request to a limited host first takes a slot from that host's bucket in Redis
(:mod:`gitops_tasks.ratelimit`, shared with registries); a slot further away than a moment is
reserved and the lane put back until then, so no worker thread waits on a rate limit.
"""

from __future__ import annotations

import logging
import os
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests

from gitops_tasks.notify import providers
from gitops_tasks.notify.config import ConfigError, provider_config, secret_values
from gitops_tasks.notify.message import Event, InvalidProvider, NotSendable, ProviderConfig, Request
from gitops_tasks.notify.outbox import Outbox, Record
from gitops_tasks.objects.model import Object, ObjectRef
from gitops_tasks.redact import redact

log = logging.getLogger(__name__)

#: A rate-limit slot this close is slept for in the sending thread; a later one is reserved.
DEFAULT_SLEEP_MAX_S = 0.5
#: Furthest a slot is reserved ahead (a later one is asked for again when the lane comes back).
DEFAULT_RESERVE_MAX_S = 3600.0
#: Share of the claim's lease a send may take at most (its requests' timeouts together).
DEFAULT_TIMEOUT_SHARE = 0.8
#: Longest ``Retry-After`` honoured.
DEFAULT_MAX_RETRY_AFTER_S = 3600.0
#: The reason of the event on an Alert whose delivery ended without success (Flux's).
DISPATCH_FAILED = "NotificationDispatchFailed"


class Slot(Protocol):
    @property
    def wait_s(self) -> float: ...

    @property
    def taken(self) -> bool: ...


class Limiter(Protocol):
    """What sending needs of the shared per-host limiter (``gitops_tasks.ratelimit``'s buckets)."""

    def reserve(self, host: str, *, max_wait_s: float) -> Slot: ...

    def throttled(self, host: str, *, retry_after_s: float | None) -> None: ...


@dataclass(frozen=True)
class Sent:
    """How one attempt ended: ``delivered``, ``retry`` (after ``retry_after_s`` when the provider
    said), ``failed`` (never retried), ``skipped`` (not for this provider; ends quietly)."""

    result: str
    error: str = ""
    retry_after_s: float | None = None


def _retry_after(response: requests.Response) -> float | None:
    raw = response.headers.get("Retry-After", "").strip()
    if not raw:
        return None
    try:
        return min(max(0.0, float(raw)), DEFAULT_MAX_RETRY_AFTER_S)
    except ValueError:
        pass
    try:
        return min(max(0.0, parsedate_to_datetime(raw).timestamp() - time.time()), DEFAULT_MAX_RETRY_AFTER_S)
    except (TypeError, ValueError):
        return None


def _json_refusal(response: requests.Response, ok_field: str) -> str | None:
    """None when the JSON body's ``ok_field`` is true (Slack's Web API answers errors with 200 and
    ``{"ok": false, "error": "channel_not_found"}``), else the service's error word."""
    try:
        body = response.json()
    except ValueError:
        return "answer is not JSON"
    if isinstance(body, dict) and body.get(ok_field) is True:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return str(error)[:100] if error else f"'{ok_field}' is not true"


def _where(request: Request) -> str:
    """The request as text that holds no secret: method and host only (webhook paths carry tokens)."""
    parts = urlsplit(request.url)
    return f"{request.method} {parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"


def send_requests(
    session: requests.Session,
    requests_: list[Request],
    config: ProviderConfig,
    *,
    take_slot: Callable[[str], float | None],
    timeout_s: float,
) -> Sent:
    """Send each request in turn; the first that does not succeed decides. ``take_slot(host)``
    returns None when the request may go now, else the reserved slot time (nothing sent)."""
    ca_file = None
    try:
        if config.ca_pem:
            fd, ca_file = tempfile.mkstemp(prefix="gt-ca-", suffix=".crt")
            with os.fdopen(fd, "w") as handle:
                handle.write(config.ca_pem)
        for request in requests_:
            host = urlsplit(request.url).netloc
            slot = take_slot(host)
            if slot is not None:
                return Sent("wait", retry_after_s=slot)
            proxies = {"http": config.proxy, "https": config.proxy} if config.proxy else None
            try:
                response = session.request(
                    request.method,
                    request.url,
                    headers=request.headers,
                    data=request.body,
                    timeout=timeout_s,
                    proxies=proxies,
                    verify=ca_file or True,
                    allow_redirects=False,
                )
            except requests.Timeout:
                return Sent("retry", f"{_where(request)}: timed out after {timeout_s:g}s")
            except (
                requests.exceptions.MissingSchema,
                requests.exceptions.InvalidSchema,
                requests.exceptions.InvalidURL,
            ):
                # Never retried: the address stays wrong until the Provider or its secret changes.
                return Sent("failed", f"{_where(request)}: the address is not an http(s) URL")
            except requests.RequestException as exc:
                return Sent("retry", f"{_where(request)}: {type(exc).__name__}")
            code = response.status_code
            what = f"{_where(request)}: HTTP {code} {response.reason or ''}".rstrip()
            if 200 <= code < 300 and request.json_ok_field:
                refusal = _json_refusal(response, request.json_ok_field)
                response.close()
                if refusal == "ratelimited":
                    return Sent("throttled", f"{what} ({refusal})", _retry_after(response))
                if refusal is not None:
                    return Sent("failed", f"{what} ({refusal})")
                continue
            response.close()
            if 200 <= code < 300:
                continue
            if code == 429:
                return Sent("throttled", what, _retry_after(response))
            if code >= 500 or code == 408:
                return Sent("retry", what, _retry_after(response))
            return Sent("failed", what)
        return Sent("delivered")
    finally:
        if ca_file:
            Path(ca_file).unlink(missing_ok=True)


@dataclass
class Deliverer:
    """Sends lanes' heads. ``object_of`` reads the catalog (Alerts and Providers);
    ``bucket_for(type, host)`` gives the shared limiter for a host (None: not limited);
    ``emit_failure(alert_ref, message)`` writes the ``NotificationDispatchFailed`` event."""

    outbox: Outbox
    object_of: Callable[[ObjectRef], Object | None]
    bucket_for: Callable[[str, str], Limiter | None]
    emit_failure: Callable[[ObjectRef, str], None]
    secrets_dir: Path
    max_age_s: float
    backoff_base_s: float
    backoff_max_s: float
    session: requests.Session
    #: The claim's lease (see :mod:`gitops_tasks.notify.dispatch`): timeouts stay well below it.
    lease_s: float = 60.0
    clock: Callable[[], float] = time.time

    def backoff_s(self, attempts: int) -> float:
        delay = min(self.backoff_max_s, self.backoff_base_s * (2 ** max(0, attempts)))
        return float(delay * random.uniform(0.8, 1.2))

    def deliver_lane(self, lane: str) -> str:
        """Send ``lane``'s head once; returns what happened (for logs and tests)."""
        record = self.outbox.head(lane)
        if record is None:
            return "empty"
        try:
            return self._deliver(record)
        except Exception as exc:  # a bug must not leave the lane claimed for a whole lease
            log.exception("notification for %s: unexpected error", record.event.get("name"))
            now = self.clock()
            at = now + self.backoff_s(record.attempts)
            self.outbox.retry(record, at=at, now=now, error=type(exc).__name__)
            return "retry"

    def _deliver(self, record: Record) -> str:
        now = self.clock()
        subject = f"{record.event['kind']}/{record.event['namespace']}/{record.event['name']}"
        alert_ref = ObjectRef.parse(record.alert_key)
        alert = self.object_of(alert_ref)
        if alert is None:
            # Deleted since the event was routed: nobody to send for, nobody to tell.
            log.info("notification for %s dropped: %s was deleted", subject, alert_ref)
            self.outbox.finish(record, delivered=False, now=now, error=f"{alert_ref} deleted")
            return "skipped"
        provider = self.object_of(ObjectRef.parse(record.provider_key))
        if provider is None:
            return self._end(record, alert_ref, subject, f"Provider {record.provider_key} not found")
        if alert.suspended or provider.suspended:
            # Held, not dropped: sent once both are resumed (routing takes no new events meanwhile).
            self.outbox.retry(record, at=now + self.backoff_max_s, now=now)
            return "held"
        secrets: list[str] = []
        try:
            config = provider_config(provider, secrets_dir=self.secrets_dir)
            secrets = secret_values(config)
            if config.type not in providers.BUILDERS:
                return self._end(record, alert_ref, subject, f"provider type {config.type!r} is not sent")
            event = Event(**record.event)
            built = providers.build(config, event)
        except NotSendable as exc:
            log.debug("notification for %s not sent to %s: %s", subject, record.provider_key, exc)
            self.outbox.finish(record, delivered=True, now=now)
            return "skipped"
        except ConfigError as exc:
            return self._retry(record, alert_ref, subject, str(exc), None, now)
        except InvalidProvider as exc:
            return self._end(record, alert_ref, subject, redact(str(exc), secrets))
        except (ValueError, KeyError, TypeError) as exc:
            return self._end(record, alert_ref, subject, redact(f"{type(exc).__name__}: {exc}", secrets))

        def take_slot(host: str) -> float | None:
            if record.slot is not None and record.slot <= self.clock() + DEFAULT_SLEEP_MAX_S:
                return None  # reserved when the lane was put back
            bucket = self.bucket_for(config.type, host)
            if bucket is None:
                return None
            seen = bucket.reserve(host, max_wait_s=DEFAULT_RESERVE_MAX_S)
            if not seen.taken:
                return self.clock() + seen.wait_s
            if seen.wait_s <= DEFAULT_SLEEP_MAX_S:
                time.sleep(max(0.0, seen.wait_s))
                return None
            return self.clock() + seen.wait_s

        timeout_s = min(config.timeout_s, self.lease_s * DEFAULT_TIMEOUT_SHARE / max(1, len(built)))
        sent = send_requests(self.session, built, config, take_slot=take_slot, timeout_s=timeout_s)
        now = self.clock()
        error = redact(sent.error, secrets)
        if sent.result == "delivered":
            self.outbox.finish(record, delivered=True, now=now)
            return "delivered"
        if sent.result == "wait":
            slot = float(sent.retry_after_s or now)
            self.outbox.retry(record, at=slot, now=now, slot=slot)
            return "wait"
        if sent.result == "failed":
            return self._end(record, alert_ref, subject, error)
        if sent.result == "throttled":
            host = urlsplit(built[0].url).netloc if built else ""
            bucket = self.bucket_for(config.type, host) if host else None
            if bucket is not None:
                bucket.throttled(host, retry_after_s=sent.retry_after_s)
        return self._retry(record, alert_ref, subject, error, sent.retry_after_s, now)

    def _retry(
        self,
        record: Record,
        alert_ref: ObjectRef,
        subject: str,
        error: str,
        after_s: float | None,
        now: float,
    ) -> str:
        if now - record.created >= self.max_age_s:
            age = f"gave up after {record.attempts + 1} attempts over {now - record.created:.0f}s"
            return self._end(record, alert_ref, subject, f"{error} ({age})")
        delay = max(self.backoff_s(record.attempts), after_s or 0.0)
        log.info(
            "notification for %s to %s: %s; trying again in %.1fs", subject, record.provider_key, error, delay
        )
        self.outbox.retry(record, at=now + delay, now=now, error=error)
        return "retry"

    def _end(self, record: Record, alert_ref: ObjectRef, subject: str, error: str) -> str:
        message = f"failed to send notification for {subject}: {error}"
        log.warning("%s: %s", alert_ref, message)
        if self.outbox.finish(record, delivered=False, now=self.clock(), error=error):
            self.emit_failure(alert_ref, message)
        return "failed"


def describe(result: dict[str, Any]) -> str:
    """One line for a task's result: counts per outcome."""
    return ", ".join(f"{k} {v}" for k, v in sorted(result.items()) if v) or "nothing due"
