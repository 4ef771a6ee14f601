"""Metered, retried HTTP for registries: the rate limiter, backoff, 429s, sessions and TLS.

Every request, to a registry or to its token server, first takes a token from that host's bucket
in the shared limiter. A 429 or a ``TOOMANYREQUESTS`` error body reports the throttle to the limiter
(which blocks the host for every worker for ``Retry-After`` and halves its rate) and retries when
the wait is short; a longer wait raises a ``rate_limited`` :class:`RegistryError` carrying
``retry_after_s``, so the caller re-queues instead of sleeping in a worker slot. 5xx answers,
connection errors and timeouts are retried with exponential backoff and jitter (tenacity), never
past the call's deadline. One :class:`requests.Session` per thread keeps connections alive.
"""

from __future__ import annotations

import hashlib
import random
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import certifi
import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception_type

from gitops_tasks import __version__
from gitops_tasks.ratelimit import RateLimited
from gitops_tasks.registry.errors import RegistryError
from gitops_tasks.registry.httpparse import error_codes, parse_retry_after

#: Longest wait for a rate-limit token inside a task; a longer one re-queues the scan instead.
DEFAULT_MAX_WAIT_S = 2.0
#: Attempts per request on 5xx, connection errors and timeouts (the first one included).
DEFAULT_ATTEMPTS = 4
#: First backoff between attempts; doubled each time, with jitter, up to DEFAULT_BACKOFF_MAX_S.
DEFAULT_BACKOFF_INITIAL_S = 0.25
DEFAULT_BACKOFF_MAX_S = 4.0
#: Retries of one request after 429s whose Retry-After is short enough to wait for in the task.
DEFAULT_THROTTLED_RETRIES = 3
#: Seconds to open a connection (the read timeout is what is left of the call's deadline).
DEFAULT_CONNECT_TIMEOUT_S = 10.0
#: Connections kept per host in each thread's session.
DEFAULT_POOL_SIZE = 10
#: Characters of a registry's error text kept in messages.
MAX_DETAIL = 200
USER_AGENT = f"gitops-tasks/{__version__}"


class Limiter(Protocol):
    """The global rate limiter (:class:`gitops_tasks.ratelimit.RedisTokenBucket` implements it)."""

    def acquire(self, host: str, *, max_wait_s: float) -> float: ...

    def throttled(self, host: str, *, retry_after_s: float | None) -> None: ...


@dataclass
class Call:
    """One logical operation (a listing): its deadline, TLS settings and what it has sent."""

    #: Names the operation in messages (the image).
    label: str
    timeout_s: float
    verify: bool | str = True
    cert: tuple[str, str] | None = None
    deadline: float = 0.0
    requests: int = 0

    def __post_init__(self) -> None:
        if not self.deadline:
            self.deadline = time.monotonic() + self.timeout_s

    def remaining_s(self) -> float:
        return self.deadline - time.monotonic()


class _Retryable(Exception):
    def __init__(self, error: RegistryError) -> None:
        super().__init__(error.message)
        self.error = error


_local = threading.local()
_ca_lock = threading.Lock()
_ca_dir: Path | None = None


def thread_session() -> requests.Session:
    """This thread's session (a connection pool per host, kept between scans)."""
    session: requests.Session | None = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        session.trust_env = False  # no ~/.netrc credentials or REQUESTS_CA_BUNDLE behind our back
        adapter = HTTPAdapter(
            pool_connections=DEFAULT_POOL_SIZE, pool_maxsize=DEFAULT_POOL_SIZE, max_retries=0
        )
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers["User-Agent"] = USER_AGENT
        _local.session = session
    return session


def ca_bundle(ca_file: Path) -> str:
    """A CA bundle trusting the system's CAs plus ``ca_file`` (as Flux adds a certSecretRef CA to
    the system pool), written once per CA content to a private temp dir."""
    global _ca_dir
    data = ca_file.read_bytes()
    with _ca_lock:
        if _ca_dir is None:
            _ca_dir = Path(tempfile.mkdtemp(prefix="gitops-tasks-ca-"))
        path = _ca_dir / f"{hashlib.sha256(data).hexdigest()[:24]}.pem"
        if not path.exists():
            path.write_bytes(Path(certifi.where()).read_bytes() + b"\n" + data + b"\n")
        return str(path)


class Transport:
    """Sends requests for :class:`~gitops_tasks.registry.client.RegistryClient`. Thread-safe.

    ``session`` gives the session to use (this thread's by default); ``sleep`` is for tests.
    """

    def __init__(
        self,
        limiter: Limiter,
        *,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
        attempts: int = DEFAULT_ATTEMPTS,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        session: Callable[[], requests.Session] = thread_session,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limiter = limiter
        self.max_wait_s = max_wait_s
        self.attempts = attempts
        self.connect_timeout_s = connect_timeout_s
        self._session = session
        self._sleep = sleep

    def request(self, call: Call, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Send one request, metered and retried; any answer below 500 other than 429 is returned.

        Raises :class:`RegistryError`: ``rate_limited`` (with ``retry_after_s``) or ``transient``
        (timeouts, connection and TLS errors, 5xx after the last attempt).
        """

        def stop(state: RetryCallState) -> bool:
            return state.attempt_number >= self.attempts or call.remaining_s() <= 0.1

        def wait(state: RetryCallState) -> float:
            return max(0.0, min(backoff_s(state.attempt_number), call.remaining_s() - 0.1))

        retrying = Retrying(
            retry=retry_if_exception_type(_Retryable), stop=stop, wait=wait, sleep=self._sleep, reraise=True
        )
        try:
            return retrying(self._once, call, method, url, **kwargs)
        except _Retryable as exc:
            raise exc.error from None

    def _once(self, call: Call, method: str, url: str, **kwargs: Any) -> requests.Response:
        host = urlsplit(url).netloc
        throttles = 0
        while True:
            remaining = call.remaining_s()
            if remaining <= 0:
                raise RegistryError(
                    "transient", f"{call.label}: timed out after {call.timeout_s:g}s (spec.timeout)"
                )
            try:
                self.limiter.acquire(host, max_wait_s=min(self.max_wait_s, remaining))
            except RateLimited as exc:
                raise RegistryError(
                    "rate_limited",
                    f"registry host {host} is rate limited (shared limit of this installation)",
                    retry_after_s=exc.retry_after_s,
                ) from None
            call.requests += 1
            try:
                response = self._session().request(
                    method,
                    url,
                    timeout=(min(self.connect_timeout_s, remaining), remaining),
                    verify=call.verify,
                    cert=call.cert,
                    allow_redirects=False,
                    **kwargs,
                )
            except requests.exceptions.SSLError as exc:
                raise RegistryError(
                    "transient", f"{call.label}: TLS with {host} failed: {short(exc)}"
                ) from None
            except requests.Timeout:
                raise _Retryable(
                    RegistryError("transient", f"{call.label}: {host} did not answer in time")
                ) from None
            except requests.RequestException as exc:
                raise _Retryable(RegistryError("transient", f"{call.label}: {host}: {short(exc)}")) from None
            if response.status_code == 429 or "TOOMANYREQUESTS" in _codes(response):
                retry_after_s = parse_retry_after(response.headers.get("Retry-After"))
                self.limiter.throttled(host, retry_after_s=retry_after_s)
                throttles += 1
                if throttles > DEFAULT_THROTTLED_RETRIES:
                    raise RegistryError(
                        "rate_limited",
                        f"registry host {host} is rate limiting us ({response.status_code} TOOMANYREQUESTS)",
                        retry_after_s=retry_after_s,
                        status_code=response.status_code,
                    )
                continue  # the next acquire waits out the block, or re-queues the scan
            if response.status_code >= 500:
                error = RegistryError(
                    "transient",
                    f"{call.label}: {host} answered {response.status_code}{detail(response)}",
                    status_code=response.status_code,
                )
                raise _Retryable(error)
            return response


def backoff_s(attempt: int) -> float:
    """The pause after failed attempt number ``attempt`` (1-based): exponential, capped, with jitter."""
    delay: float = min(DEFAULT_BACKOFF_MAX_S, DEFAULT_BACKOFF_INITIAL_S * 2.0 ** (attempt - 1))
    return delay + random.uniform(0, DEFAULT_BACKOFF_INITIAL_S)


def _codes(response: requests.Response) -> list[str]:
    if response.status_code < 400 or "json" not in response.headers.get("Content-Type", "json"):
        return []
    return error_codes(response.content[:65536])


def detail(response: requests.Response) -> str:
    """`` (CODE: message)`` from a distribution error body, if any (the registry's own words)."""
    try:
        first = (response.json().get("errors") or [])[0]
        text = f"{first.get('code', '')}: {first.get('message', '')}".strip(": ")
    except (ValueError, AttributeError, IndexError, TypeError):
        return ""
    return f" ({text[:MAX_DETAIL]})" if text else ""


def short(exc: BaseException) -> str:
    """The first line of an exception's text, bounded."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:MAX_DETAIL]
