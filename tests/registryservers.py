"""Real OCI registries for tests and benchmarks (no pytest here, so benchmarks reuse it).

- :class:`DockerRegistry`: Debian's ``docker-registry`` (distribution 2.8) with its own config, on
  127.0.0.1 and a free port, plain HTTP, optional htpasswd basic auth; stopped by PID.
- :func:`push_image`: pushes a tiny image (config blob + one layer + a Docker v2 manifest) over the
  distribution API, the way ``docker push`` does, without docker.
- :class:`SpecRegistry`: a small threaded HTTP server of our own that follows the distribution spec
  where distribution 2.8 does not: tag-list pagination with ``n``/``last`` and ``Link``, bearer
  tokens from its own token endpoint (counted), 429 with Retry-After and 5xx on demand, and a
  timestamped log of every request.
- :class:`HangingServer`: a TCP server that accepts connections and never answers (a registry host
  whose process is stuck), recording when each connection opened and closed.
- :func:`realistic_tags`: tag lists shaped like real repositories' (semver with variants, CI
  builds, git SHAs, dates), for size measurements.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import hmac
import io
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import tarfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import requests

from tests.httpserve import QuietHandler, QuietThreadingServer

DOCKER_REGISTRY_BINARY = "/usr/bin/docker-registry"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_V1 = "application/vnd.docker.container.image.v1+json"
LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
START_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def docker_registry_available() -> tuple[bool, str]:
    if not os.access(DOCKER_REGISTRY_BINARY, os.X_OK):
        return False, "docker-registry is not installed (apt-get install docker-registry)"
    return True, ""


class DockerRegistry:
    """``docker-registry serve`` on ``http://127.0.0.1:<port>`` with filesystem storage in ``directory``.

    With ``htpasswd=(user, password)`` every request needs basic auth (bcrypt, checked per request).
    """

    def __init__(self, directory: Path, *, htpasswd: tuple[str, str] | None = None) -> None:
        self.directory = Path(directory).resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.htpasswd = htpasswd
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def auth(self) -> tuple[str, str] | None:
        return self.htpasswd

    def _config(self) -> str:
        lines = [
            "version: 0.1",
            "log:",
            "  level: error",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {self.directory / 'data'}",
            "  delete:",
            "    enabled: true",
            "  maintenance:",
            "    uploadpurging:",
            "      enabled: false",
            "http:",
            f"  addr: {self.host}",
            f"  secret: {secrets.token_hex(16)}",
        ]
        if self.htpasswd is not None:
            user, password = self.htpasswd
            line = subprocess.run(
                ["htpasswd", "-Bbn", user, password], capture_output=True, text=True, check=True
            ).stdout.strip()
            (self.directory / "htpasswd").write_text(line + "\n")
            lines += [
                "auth:",
                "  htpasswd:",
                "    realm: gitops-tasks-test",
                f"    path: {self.directory / 'htpasswd'}",
            ]
        return "\n".join(lines) + "\n"

    def start(self) -> Self:
        self.port = free_port()
        config = self.directory / "config.yml"
        config.write_text(self._config())
        log = (self.directory / "registry.log").open("ab")
        self.proc = subprocess.Popen(
            [DOCKER_REGISTRY_BINARY, "serve", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {(self.directory / 'registry.log').read_text()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/v2/", timeout=1).status_code in (200, 401):
                    return self
            if time.monotonic() > deadline:
                raise RuntimeError(f"docker-registry did not answer on {self.host}")
            time.sleep(0.02)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def push(self, name: str, *tags: str) -> list[str]:
        """Push a tiny image under each of ``tags``; returns the manifest digests."""
        with requests.Session() as session:
            return [push_image(self.url, name, tag, auth=self.htpasswd, session=session) for tag in tags]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer(name: str) -> tuple[bytes, str]:
    """A gzipped tar holding one small file; returns (blob, diff_id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        payload = f"image {name}\n".encode()
        info = tarfile.TarInfo("hello.txt")
        info.size, info.mtime = len(payload), 0
        tar.addfile(info, io.BytesIO(payload))
    uncompressed = raw.getvalue()
    return gzip.compress(uncompressed, mtime=0), _digest(uncompressed)


def _push_blob(session: requests.Session, base: str, name: str, blob: bytes, auth: Any) -> str:
    digest = _digest(blob)
    if session.head(f"{base}/v2/{name}/blobs/{digest}", auth=auth, timeout=30).status_code == 200:
        return digest
    started = session.post(f"{base}/v2/{name}/blobs/uploads/", auth=auth, timeout=30)
    if started.status_code != 202:
        raise RuntimeError(f"blob upload to {name} refused: {started.status_code} {started.text[:200]}")
    location = started.headers["Location"]
    if location.startswith("/"):
        location = base + location
    separator = "&" if "?" in location else "?"
    done = session.put(
        f"{location}{separator}digest={digest}",
        data=blob,
        headers={"Content-Type": "application/octet-stream"},
        auth=auth,
        timeout=30,
    )
    if done.status_code != 201:
        raise RuntimeError(f"blob upload to {name} failed: {done.status_code} {done.text[:200]}")
    return digest


def push_image(
    base_url: str,
    name: str,
    tag: str,
    auth: tuple[str, str] | None = None,
    *,
    session: requests.Session | None = None,
) -> str:
    """Push a tiny image to ``base_url`` (``http://host:port``) as ``name:tag``; returns its digest.

    Blobs are checked with HEAD first and uploaded with POST + PUT (monolithic); the config names
    the tag, so every tag has its own manifest digest while the layer is shared.
    """
    own = session is None
    session = session or requests.Session()
    try:
        layer, diff_id = _layer(name)
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Labels": {"tag": tag}},
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            },
            sort_keys=True,
        ).encode()
        config_digest = _push_blob(session, base_url, name, config, auth)
        layer_digest = _push_blob(session, base_url, name, layer, auth)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST_V2,
                "config": {"mediaType": CONFIG_V1, "size": len(config), "digest": config_digest},
                "layers": [{"mediaType": LAYER_GZIP, "size": len(layer), "digest": layer_digest}],
            }
        ).encode()
        put = session.put(
            f"{base_url}/v2/{name}/manifests/{tag}",
            data=manifest,
            headers={"Content-Type": MANIFEST_V2},
            auth=auth,
            timeout=30,
        )
        if put.status_code != 201:
            raise RuntimeError(f"manifest {name}:{tag} refused: {put.status_code} {put.text[:200]}")
        return _digest(manifest)
    finally:
        if own:
            session.close()


# --------------------------------------------------------------------------- SpecRegistry


@dataclass(frozen=True)
class Logged:
    """One request the SpecRegistry served."""

    #: ``time.monotonic()`` when the request arrived (same clock for every request).
    at: float
    method: str
    path: str
    status: int
    #: ``token`` for the token endpoint, ``registry`` otherwise.
    target: str


@dataclass
class Failure:
    """A scripted answer: ``status``, optional Retry-After, optional distribution error code."""

    status: int
    retry_after: str | None = None
    code: str | None = None
    target: str = "registry"


class SpecRegistry:
    """A distribution-spec registry of our own on ``http://127.0.0.1:<port>``.

    ``set_tags(name, tags)`` declares repositories. Tag lists are served sorted, at most
    ``page_max`` per page (``n`` may ask for fewer), with ``Link`` to the next page (``absolute_links``
    for absolute URLs). With ``token_auth`` the registry answers 401 with a Bearer challenge whose
    realm is its own ``/token`` endpoint, which issues tokens living ``token_lifetime_s``
    (checking ``username``/``password`` by basic auth when set). ``fail(...)`` scripts the next
    answers; ``log`` records every request. Hostile repositories: ``set_endless(name)`` serves pages
    whose ``Link`` never ends; ``set_huge(name, size)`` answers one tag list of ``size`` bytes,
    generated while it is written (the server never holds it), and ``sent[name]`` counts the bytes
    the client took before hanging up.
    """

    def __init__(
        self,
        *,
        page_max: int = 100,
        token_auth: bool = False,
        username: str | None = None,
        password: str | None = None,
        token_lifetime_s: float = 60.0,
        absolute_links: bool = False,
    ) -> None:
        self.page_max = page_max
        self.token_auth = token_auth
        self.username, self.password = username, password
        self.token_lifetime_s = token_lifetime_s
        self.absolute_links = absolute_links
        self.repos: dict[str, list[str]] = {}
        self.tokens: dict[str, tuple[float, str]] = {}
        self.failures: deque[Failure] = deque()
        self.log: list[Logged] = []
        self.endless: set[str] = set()
        self.huge: dict[str, int] = {}
        self.unannounced: set[str] = set()
        self.sent: dict[str, int] = {}
        self.lock = threading.Lock()
        self.port = 0
        self._httpd: _SpecHTTPd | None = None
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def set_tags(self, name: str, tags: list[str]) -> None:
        with self.lock:
            self.repos[name] = sorted(set(tags))

    def set_endless(self, name: str) -> None:
        with self.lock:
            self.endless.add(name)

    def set_huge(self, name: str, size: int, *, announce: bool = True) -> None:
        """``announce=False`` sends no Content-Length (the body ends when the connection closes)."""
        with self.lock:
            self.huge[name] = size
            self.sent[name] = 0
            if not announce:
                self.unannounced.add(name)

    def fail(
        self,
        status: int,
        *,
        count: int = 1,
        retry_after: str | None = None,
        code: str | None = None,
        target: str = "registry",
    ) -> None:
        """Answer the next ``count`` requests to ``target`` (``registry`` or ``token``) with ``status``."""
        with self.lock:
            self.failures.extend(Failure(status, retry_after, code, target) for _ in range(count))

    def requests_to(self, target: str = "registry", *, status: int | None = None) -> list[Logged]:
        with self.lock:
            return [r for r in self.log if r.target == target and (status is None or r.status == status)]

    @property
    def token_requests(self) -> int:
        return len(self.requests_to("token"))

    def start(self) -> Self:
        self._httpd = _SpecHTTPd(("127.0.0.1", 0), _SpecHandler)
        self._httpd.owner = self
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="spec-registry", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd, self._thread = None, None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # What the handler asks of its owner (under the lock).

    def _take_failure(self, target: str) -> Failure | None:
        with self.lock:
            for failure in self.failures:
                if failure.target == target:
                    self.failures.remove(failure)
                    return failure
        return None

    def _issue_token(self, scope: str) -> str:
        token = secrets.token_hex(16)
        with self.lock:
            self.tokens[token] = (time.monotonic() + self.token_lifetime_s, scope)
        return token

    def _token_valid(self, token: str, name: str) -> bool:
        with self.lock:
            found = self.tokens.get(token)
        return found is not None and found[0] > time.monotonic() and f"repository:{name}:" in found[1]


class _SpecHTTPd(QuietThreadingServer):
    owner: SpecRegistry


class _SpecHandler(QuietHandler):
    server: _SpecHTTPd

    def _serve(self) -> None:
        arrived = time.monotonic()
        owner = self.server.owner
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = urlsplit(self.path)
        target = "token" if parts.path == "/token" else "registry"
        failure = owner._take_failure(target)
        if failure is not None:
            status, headers, payload = self._failure(failure)
        elif target == "token":
            status, headers, payload = self._token(parts.query, body)
        else:
            status, headers, payload = self._registry(parts.path, parse_qs(parts.query))
        with owner.lock:
            owner.log.append(Logged(arrived, self.command, self.path, status, target))
            huge = owner.huge.get(payload.decode()) if status == _HUGE else None
        if huge is not None:
            self._send_huge(payload.decode(), huge)
            return
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _send_huge(self, name: str, size: int) -> None:
        """A ``{"name": …, "tags": ["t0", "t1", …]}`` body of exactly ``size`` bytes, written in
        chunks as it is generated; stops when the client hangs up."""
        owner = self.server.owner
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if name in owner.unannounced:
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(size))
        self.end_headers()
        head, tail = json.dumps({"name": name})[:-1].encode() + b', "tags": [', b"]}"
        written, index = 0, 0
        try:
            self.wfile.write(head)
            written = len(head)
            while written < size:
                chunk = bytearray()
                while len(chunk) < 65536 and written + len(chunk) < size - len(tail) - 16:
                    chunk += b'"t%d",' % index
                    index += 1
                room = size - len(tail) - written - len(chunk)
                if room <= 16:  # the last tag pads the body to its announced size
                    chunk += b'"' + b"x" * max(0, room - 2) + b'"' + tail
                self.wfile.write(bytes(chunk))
                written += len(chunk)
                with owner.lock:
                    owner.sent[name] = written
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    @staticmethod
    def _errors(code: str, message: str) -> bytes:
        return json.dumps({"errors": [{"code": code, "message": message, "detail": None}]}).encode()

    def _failure(self, failure: Failure) -> tuple[int, list[tuple[str, str]], bytes]:
        headers = [("Content-Type", "application/json")]
        if failure.retry_after is not None:
            headers.append(("Retry-After", failure.retry_after))
        code = failure.code or ("TOOMANYREQUESTS" if failure.status == 429 else "UNKNOWN")
        return failure.status, headers, self._errors(code, "scripted failure")

    def _token(self, query: str, form: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        owner = self.server.owner
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        params.update({k: v[-1] for k, v in parse_qs(form.decode()).items()})
        if owner.username is not None:
            pair = f"{owner.username}:{owner.password or ''}".encode()
            expected = "Basic " + base64.b64encode(pair).decode()
            given = self.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), expected.encode()):
                return (
                    401,
                    [("Content-Type", "application/json")],
                    self._errors("UNAUTHORIZED", "bad credentials"),
                )
        token = owner._issue_token(params.get("scope", ""))
        issued = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        answer = {
            "token": token,
            "access_token": token,
            "expires_in": owner.token_lifetime_s,
            "issued_at": issued,
        }
        return 200, [("Content-Type", "application/json")], json.dumps(answer).encode()

    def _registry(self, path: str, query: dict[str, list[str]]) -> tuple[int, list[tuple[str, str]], bytes]:
        owner = self.server.owner
        json_type = ("Content-Type", "application/json")
        if path == "/v2/" or path == "/v2":
            name = ""
        elif path.startswith("/v2/") and path.endswith("/tags/list"):
            name = path[len("/v2/") : -len("/tags/list")]
        else:
            return 404, [json_type], self._errors("UNSUPPORTED", "not served here")
        if owner.token_auth:
            given = self.headers.get("Authorization", "")
            token = given[len("Bearer ") :] if given.startswith("Bearer ") else ""
            if not (token and owner._token_valid(token, name)):
                challenge = f'Bearer realm="{owner.url}/token",service="spec-registry"'
                if name:
                    challenge += f',scope="repository:{name}:pull"'
                return (
                    401,
                    [json_type, ("WWW-Authenticate", challenge)],
                    self._errors("UNAUTHORIZED", "token"),
                )
        if not name:
            return 200, [json_type], b"{}"
        with owner.lock:
            tags = owner.repos.get(name)
            endless, huge = name in owner.endless, name in owner.huge
        if huge:
            return _HUGE, [], name.encode()
        if endless:
            return self._endless(name, query)
        if tags is None:
            return 404, [json_type], self._errors("NAME_UNKNOWN", f"repository name not known: {name}")
        try:
            n = min(int(query.get("n", [str(owner.page_max)])[-1]), owner.page_max)
        except ValueError:
            return 400, [json_type], self._errors("PAGINATION_NUMBER_INVALID", "n")
        last = query.get("last", [""])[-1]
        start = next((i for i, t in enumerate(tags) if t > last), len(tags)) if last else 0
        page = tags[start : start + n]
        headers = [json_type]
        if start + n < len(tags) and page:
            link = f"/v2/{name}/tags/list?n={n}&last={page[-1]}"
            headers.append(("Link", f'<{owner.url if owner.absolute_links else ""}{link}>; rel="next"'))
        return 200, headers, json.dumps({"name": name, "tags": page}).encode()

    def _endless(self, name: str, query: dict[str, list[str]]) -> tuple[int, list[tuple[str, str]], bytes]:
        """Page k holds ``page_max`` tags never seen before, and links to page k+1, forever."""
        owner = self.server.owner
        page = int(query.get("last", ["p0"])[-1][1:] or 0)
        tags = [f"p{page + 1}-{i}" for i in range(owner.page_max)]
        link = f'</v2/{name}/tags/list?n={owner.page_max}&last=p{page + 1}>; rel="next"'
        headers = [("Content-Type", "application/json"), ("Link", link)]
        return 200, headers, json.dumps({"name": name, "tags": tags}).encode()


#: Internal status of :meth:`_SpecHandler._registry`: stream a huge body instead.
_HUGE = -1


class HangingServer:
    """Accepts TCP connections on 127.0.0.1 and never answers; each one is held until the client
    closes it. ``connections`` lists (opened, closed or None) in ``time.monotonic()``."""

    def __init__(self) -> None:
        self.connections: list[list[float | None]] = []
        self.lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self.port = int(self._sock.getsockname()[1])
        self._stopped = threading.Event()
        threading.Thread(target=self._accept, name="hanging-server", daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            record: list[float | None] = [time.monotonic(), None]
            with self.lock:
                self.connections.append(record)
            threading.Thread(target=self._hold, args=(conn, record), daemon=True).start()

    def _hold(self, conn: socket.socket, record: list[float | None]) -> None:
        with conn, contextlib.suppress(OSError):
            while not self._stopped.is_set() and conn.recv(65536):
                pass
        with self.lock:
            record[1] = time.monotonic()

    def most_open_at_once(self, *, since: float = 0.0) -> int:
        """The most connections open at the same moment, counting those opened after ``since``."""
        with self.lock:
            spans = [
                (o, c if c is not None else float("inf")) for o, c in self.connections if o and o >= since
            ]
        edges = sorted([(o, 1) for o, _ in spans] + [(c, -1) for _, c in spans])
        most = now = 0
        for _, step in edges:
            now += step
            most = max(most, now)
        return most

    def first_closed(self) -> float | None:
        with self.lock:
            closed = [c for _, c in self.connections if c is not None]
        return min(closed) if closed else None

    def stop(self) -> None:
        self._stopped.set()
        self._sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def max_in_window(times: list[float], window_s: float) -> int:
    """The most of ``times`` (sorted or not) that fall in any interval of ``window_s`` seconds."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, at in enumerate(ordered):
        while at - ordered[start] > window_s:
            start += 1
        best = max(best, end - start + 1)
    return best


# --------------------------------------------------------------------------- tag lists


def _hex(rng: random.Random, digits: int) -> str:
    return f"{rng.getrandbits(4 * digits):0{digits}x}"


def realistic_tags(rng: random.Random, count: int) -> list[str]:
    """``count`` distinct tags in one of the shapes real repositories have.

    Styles: semver releases (``1.4.2``, ``v1.4.2``, with ``-alpine``/``-slim``/``-bookworm`` or
    bitnami-like ``-debian-12-r4`` variants and release candidates), CI builds
    (``main-1a2b3c4-1700000000``, ``pr-123-...``), git SHAs (40 hex, ``sha-1a2b3c4``), date builds
    (``20240115.2``, ``20240115-1a2b3c4``), or a mix of all.
    """
    style = rng.choice(["semver", "semver", "ci", "ci", "sha", "date", "mixed"])
    variants = rng.choice([[""], ["", "-alpine"], ["", "-alpine", "-slim", "-bookworm"], ["-debian-12-r%d"]])
    prefix = rng.choice(["", "v"])
    major, minor, patch = rng.randint(0, 3), 0, 0
    clock = 1_600_000_000 + rng.randint(0, 10**8)
    out: set[str] = set()
    while len(out) < count:
        kind = style if style != "mixed" else rng.choice(["semver", "ci", "sha", "date"])
        if kind == "semver":
            roll = rng.random()
            if roll < 0.05:
                major, minor, patch = major + 1, 0, 0
            elif roll < 0.3:
                minor, patch = minor + 1, 0
            else:
                patch += 1
            version = f"{prefix}{major}.{minor}.{patch}"
            for variant in variants:
                out.add(version + (variant % rng.randint(0, 12) if "%d" in variant else variant))
            if rng.random() < 0.1:
                out.add(f"{version}-rc.{rng.randint(1, 4)}")
        elif kind == "ci":
            clock += rng.randint(60, 86_400)
            branch = rng.choice(["main", "main", "main", "develop", f"pr-{rng.randint(1, 4000)}"])
            out.add(f"{branch}-{_hex(rng, 7)}-{clock}")
        elif kind == "sha":
            out.add(rng.choice([_hex(rng, 40), "sha-" + _hex(rng, 7)]))
        else:
            clock += rng.randint(3_600, 3 * 86_400)
            day = time.strftime("%Y%m%d", time.gmtime(clock))
            out.add(rng.choice([f"{day}.{rng.randint(1, 5)}", f"{day}-{_hex(rng, 7)}"]))
    return sorted(out)[:count]


def tag_counts(rng: random.Random, *, images: int, total: int, popular: int | None = None) -> list[int]:
    """How many tags each of ``images`` repositories has, summing to about ``total``: 3% popular
    ones with 4,500 to 8,000 tags (as real popular images), the rest exponentially distributed."""
    popular = max(1, images * 3 // 100) if popular is None else popular
    counts = [rng.choice([4_500, 6_000, 8_000]) for _ in range(popular)]
    rest = max(images - popular, 1)
    budget = max(total - sum(counts), rest)
    raw = [rng.expovariate(1.0) for _ in range(rest)]
    scale = budget / sum(raw)
    counts += [max(1, round(r * scale)) for r in raw]
    return counts[:images]
