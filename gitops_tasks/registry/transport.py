"""Metered, retried, bounded HTTP for registries: rate limit, host circuits, slots, sessions and TLS.

Every request, to a registry or to its token server, passes three per-host gates first:

1. the host's **circuit** (:class:`gitops_tasks.ratelimit.HostCircuit`, shared by every worker): a
   host that answered 5xx, timed out or refused connections is blocked for a backoff that doubles
   per failure, and after repeated failures its circuit opens (one probe request at a time). A
   short block of a closed circuit is waited out (a blip); a longer one, or any block of an open
   circuit, fails the call at once with the host's last real error (``unavailable``, carrying
   ``retry_after_s``), so no worker slot is held for a failing host;
2. one of the host's **request slots** in this process (``host_concurrency``), so a host that
   accepts connections and never answers holds at most that many threads; a call that finds them
   all busy (after a wait of at most 50 ms) re-queues at once (``busy``);
3. a token from the host's bucket in the shared limiter. A 429 or a ``TOOMANYREQUESTS`` error body
   reports the throttle to the limiter (which blocks the host for every worker for ``Retry-After``
   and halves its rate) and retries when the wait is short; a longer wait raises ``rate_limited``.

Bodies are read in chunks up to a cap (:mod:`.bodies`). One :class:`requests.Session` per thread
keeps connections alive.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import certifi
import requests
from requests.adapters import HTTPAdapter

from gitops_tasks import __version__
from gitops_tasks.metrics import instruments
from gitops_tasks.ratelimit import HostCircuit, HostHealth, MemoryHostCircuit, RateLimited
from gitops_tasks.registry.bodies import BodyTimedOut, BodyTooLarge, read_body
from gitops_tasks.registry.errors import RegistryError
from gitops_tasks.registry.httpparse import error_codes, parse_retry_after

#: Longest wait for a rate-limit token or a host's short backoff inside a task; a longer one
#: re-queues the scan instead.
DEFAULT_MAX_WAIT_S = 2.0
#: Attempts per request on 5xx, connection errors and timeouts (the first one included); the waits
#: between them are the host's shared backoff (:mod:`gitops_tasks.ratelimit.circuit`).
DEFAULT_ATTEMPTS = 4
#: Retries of one request after 429s whose Retry-After is short enough to wait for in the task.
DEFAULT_THROTTLED_RETRIES = 3
#: Seconds to open a connection (the read timeout is what is left of the call's deadline).
DEFAULT_CONNECT_TIMEOUT_S = 10.0
#: Seconds a probe's lease outlasts the latest its request can end (scheduling delays).
DEFAULT_PROBE_LEASE_MARGIN_S = 5.0
#: Requests in flight to one host from one worker process; more re-queue.
DEFAULT_HOST_CONCURRENCY = 4
#: Longest wait for a free request slot of a host inside a task: long enough for a healthy host's
#: request to end, too short for scans of a host that never answers to tie up threads waiting.
DEFAULT_SLOT_WAIT_S = 0.05
#: Re-queue delay of a scan that found every slot of its host busy (short: a healthy host's
#: slots are busy for moments only, and a scan that finds them busy costs a thread 50 ms at most).
DEFAULT_SLOT_RETRY_S = 1.0
#: Largest body read from a registry or token server (tag lists pass their own cap).
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
#: Bytes of an error answer read (it is only quoted in messages).
MAX_ERROR_BODY_BYTES = 64 * 1024
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
    #: Hosts whose circuit let this call through (asked again only after a failure).
    admitted: set[str] = field(default_factory=set)
    #: Hosts with failures on record when admitted: a success closes their circuit.
    failing: dict[str, HostHealth] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.deadline:
            self.deadline = time.monotonic() + self.timeout_s

    def remaining_s(self) -> float:
        return self.deadline - time.monotonic()


class _HostFailure(Exception):
    """A failed request that counts against the host: ``text`` names the host and what happened."""

    def __init__(self, text: str, status_code: int | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.status_code = status_code


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


class HostSlots:
    """At most ``size`` requests in flight per host from this process (a semaphore per host)."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"host concurrency {size!r}: expected a whole number >= 1")
        self.size = size
        self._lock = threading.Lock()
        self._slots: dict[str, threading.BoundedSemaphore] = {}

    def get(self, host: str) -> threading.BoundedSemaphore:
        found = self._slots.get(host)
        if found is None:
            with self._lock:
                found = self._slots.setdefault(host, threading.BoundedSemaphore(self.size))
        return found


class Transport:
    """Sends requests for :class:`~gitops_tasks.registry.client.RegistryClient`. Thread-safe.

    ``circuit`` holds the hosts' health (in-process unless a shared one is given);
    ``host_concurrency`` bounds requests in flight per host in this process. ``session`` gives the
    session to use (this thread's by default); ``sleep`` is for tests.
    """

    def __init__(
        self,
        limiter: Limiter,
        *,
        circuit: HostCircuit | None = None,
        host_concurrency: int = DEFAULT_HOST_CONCURRENCY,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
        attempts: int = DEFAULT_ATTEMPTS,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        session: Callable[[], requests.Session] = thread_session,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limiter = limiter
        self.circuit = circuit or MemoryHostCircuit()
        self.slots = HostSlots(host_concurrency)
        self.max_wait_s = max_wait_s
        self.attempts = attempts
        self.connect_timeout_s = connect_timeout_s
        self._session = session
        self._sleep = sleep

    def request(
        self, call: Call, method: str, url: str, *, max_bytes: int | None = None, **kwargs: Any
    ) -> requests.Response:
        """Send one request through the host's gates; any answer below 500 other than 429 is returned
        with its body read (at most ``max_bytes``, default :data:`DEFAULT_MAX_BODY_BYTES`).

        Raises :class:`RegistryError`: ``unavailable`` (the host is backing off or its circuit is
        open; reason ``CircuitOpen`` for the latter; ``retry_after_s`` says when it may be tried),
        ``busy`` (every slot of the host busy), ``rate_limited`` (with ``retry_after_s``), ``limit``
        (the body is larger than ``max_bytes``) or ``transient`` (TLS errors, the deadline passed).
        """
        host = urlsplit(url).netloc
        attempts = 0
        while True:
            self._admit(call, host)
            try:
                response = self._once(call, host, method, url, max_bytes=max_bytes, **kwargs)
            except RegistryError:
                if self._probing(call, host):
                    self.circuit.release_probe(host)  # never sent: let another caller probe
                raise
            except _HostFailure as exc:
                attempts += 1
                call.admitted.discard(host)
                health = self.circuit.failed(host, exc.text, probe=self._probing(call, host))
                call.failing[host] = health
                patience_s = min(self.max_wait_s, call.remaining_s() - 0.1)
                if attempts >= self.attempts or health.open or health.wait_s > patience_s:
                    raise self._gave_up(call, host, exc, health) from None
                continue  # the next admission waits out the host's (short) backoff
            if host in call.failing:
                self.circuit.succeeded(host)
                del call.failing[host]
            return response

    @staticmethod
    def _probing(call: Call, host: str) -> bool:
        """Whether ``call`` holds ``host``'s probe lease."""
        found = call.failing.get(host)
        return found is not None and found.verdict == "probe"

    def _probe_lease_s(self, call: Call) -> float:
        """How long a probe this call sends may take: its request's read timeout is what is left of
        the deadline once connected, so it may end up to the connect timeout past the deadline.
        The lease covers that (and a margin), so nobody else probes while it may still be in flight;
        the probe's own outcome ends it earlier."""
        return max(call.remaining_s(), 1.0) + self.connect_timeout_s + DEFAULT_PROBE_LEASE_MARGIN_S

    def _admit(self, call: Call, host: str) -> None:
        """Pass the host's circuit, waiting out a short block; raise ``unavailable`` otherwise."""
        while host not in call.admitted:
            health = self.circuit.admit(host, lease_s=self._probe_lease_s(call))
            if health.allowed:
                call.admitted.add(host)
                if health.verdict != "clean":
                    call.failing[host] = health
                return
            call.failing[host] = health
            # An open circuit lets one probe through after its block: waiting for that is futile.
            if health.open or health.wait_s > min(self.max_wait_s, call.remaining_s() - 0.1):
                raise unavailable(call.label, host, health)
            self._sleep(health.wait_s)

    def _once(
        self, call: Call, host: str, method: str, url: str, *, max_bytes: int | None, **kwargs: Any
    ) -> requests.Response:
        throttles = 0
        while True:
            remaining = call.remaining_s()
            if remaining <= 0:
                raise RegistryError(
                    "transient", f"{call.label}: timed out after {call.timeout_s:g}s (spec.timeout)"
                )
            slot = self.slots.get(host)
            if not slot.acquire(timeout=min(DEFAULT_SLOT_WAIT_S, remaining)):
                raise RegistryError(
                    "busy",
                    f"every request slot for registry host {host} in this worker is busy "
                    f"({self.slots.size} in flight, GITOPS_TASKS_REGISTRY_HOST_CONCURRENCY)",
                    retry_after_s=DEFAULT_SLOT_RETRY_S,
                )
            try:
                response = self._send(call, host, method, url, max_bytes=max_bytes, **kwargs)
            finally:
                slot.release()
            instruments.registry_answered(host, response.status_code)
            if response.status_code == 429 or "TOOMANYREQUESTS" in _codes(response):
                if response.status_code != 429:
                    instruments.registry_throttled(host)
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
                raise _HostFailure(
                    f"HTTP {response.status_code} from {host}{detail(response)}", response.status_code
                )
            return response

    def _send(
        self, call: Call, host: str, method: str, url: str, *, max_bytes: int | None, **kwargs: Any
    ) -> requests.Response:
        """Take a rate-limit token, send, and read the body (bounded)."""
        remaining = call.remaining_s()
        try:
            instruments.registry_waited(
                host, self.limiter.acquire(host, max_wait_s=min(self.max_wait_s, remaining))
            )
        except RateLimited as exc:
            failing = call.failing.get(host)
            if failing is not None and failing.last_error:
                # The host is also failing: that, not the reduced rate, is what a person must see.
                raise unavailable(call.label, host, failing, rate_limited_s=exc.retry_after_s) from None
            raise RegistryError(
                "rate_limited",
                f"registry host {host} is rate limited (shared limit of this installation)",
                retry_after_s=exc.retry_after_s,
            ) from None
        call.requests += 1
        remaining = call.remaining_s()
        try:
            response = self._session().request(
                method,
                url,
                timeout=(min(self.connect_timeout_s, remaining), remaining),
                verify=call.verify,
                cert=call.cert,
                allow_redirects=False,
                stream=True,
                **kwargs,
            )
            ok = response.status_code < 400
            read_body(
                response,
                limit=(max_bytes or DEFAULT_MAX_BODY_BYTES) if ok else MAX_ERROR_BODY_BYTES,
                truncate=not ok,
                remaining_s=call.remaining_s,
            )
        except requests.exceptions.SSLError as exc:
            raise RegistryError("transient", f"{call.label}: TLS with {host} failed: {short(exc)}") from None
        except requests.exceptions.ConnectTimeout:
            raise _HostFailure(f"connecting to {host} timed out") from None
        except (requests.Timeout, BodyTimedOut):
            raise _HostFailure(f"{host} did not answer within {call.timeout_s:g}s (spec.timeout)") from None
        except requests.RequestException as exc:
            raise _HostFailure(f"cannot reach {host}: {short(exc)}") from None
        except BodyTooLarge as exc:
            raise RegistryError(
                "limit",
                f"{call.label}: {host} sent an answer larger than {exc.limit} bytes",
                reason="ResponseTooLarge",
            ) from None
        return response

    @staticmethod
    def _gave_up(call: Call, host: str, exc: _HostFailure, health: HostHealth) -> RegistryError:
        error = unavailable(call.label, host, health)
        error.status_code = exc.status_code
        return error


def unavailable(
    label: str, host: str, health: HostHealth, *, rate_limited_s: float | None = None
) -> RegistryError:
    """The error of a call that finds ``host`` backing off: names its last real error and when it
    may be tried again (absolute times, so the message stays the same for the whole block)."""
    last = health.last_error or f"requests to {host} failed"
    if rate_limited_s is not None:
        allowed = stamp(health.now + rate_limited_s)
        then = f"also rate limited after 429s, next request allowed after {allowed}"
        reason = None
    elif health.open and health.wait_s > 0 and health.now >= health.blocked_until:
        then = f"circuit open, a probe request is in flight until {stamp(health.now + health.wait_s)}"
        reason = "CircuitOpen"
    elif health.open:
        then = f"circuit open until {stamp(health.blocked_until)}, then one probe"
        reason = "CircuitOpen"
    else:
        then = f"next attempt after {stamp(health.blocked_until)}"
        reason = None
    failures = f"{health.failures} failed request" + ("" if health.failures == 1 else "s")
    return RegistryError(
        "unavailable",
        f"{label}: registry host {host} is failing ({failures} in a row, last: {last}); {then}",
        reason=reason,
        retry_after_s=max(health.wait_s, rate_limited_s or 0.0),
    )


def stamp(unix_s: float) -> str:
    """``2026-12-01T22:31:05Z`` for a Unix time (rounded up to the second)."""
    return datetime.fromtimestamp(int(unix_s) + (unix_s % 1 > 0), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
