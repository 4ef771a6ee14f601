"""The registry side of ``bench_registry``: a spec-following registry and a counting proxy, each in a
process of its own.

``python -m benchmarks.bench_registry_servers registry --repos N --tags T`` serves ``bench/img-<i>``
(``T`` tags each, one page) from :class:`tests.registryservers.SpecRegistry`.

``python -m benchmarks.bench_registry_servers proxy --upstream HOST:PORT`` forwards every request
to the registry over keep-alive connections (one per client connection), after an optional added
delay, and records when each request arrived (``time.monotonic()``: one clock for every process on
the machine). Its own endpoints, not forwarded and not counted:

- ``GET /_proxy/times?since=I``: ``{"times": [...]}``, the arrival times from index ``I`` on;
- ``GET /_proxy/delay?ms=D``: add ``D`` ms before forwarding each later request;
- ``GET /_proxy/reset``: forget the recorded times.

Both print ``port <N>`` on stdout once they listen on 127.0.0.1, and stop on SIGTERM. Running them
out of the benchmark's process keeps the benchmark's own threads (the lower-bound loop) from
competing with them for one interpreter lock.
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.procs import REPO_ROOT

#: Listen backlog of the proxy: every worker thread and loop thread holds one connection, but a
#: burst of new ones must not be dropped (a drop costs the client a 1 s SYN retransmit).
DEFAULT_BACKLOG = 256
#: Seconds a server may take to print its port.
DEFAULT_START_TIMEOUT_S = 15.0
#: Response headers passed back to the client (everything a tag listing looks at).
_PASSED_HEADERS = (
    "Content-Type",
    "Link",
    "WWW-Authenticate",
    "Retry-After",
    "Docker-Distribution-Api-Version",
)


def repo_name(index: int) -> str:
    return f"bench/img-{index}"


def tags_of(index: int, count: int) -> list[str]:
    """``count`` semver-ish tags for repository ``index`` (deterministic, so any process agrees)."""
    rng = random.Random(index)
    out = {f"{rng.randint(0, 3)}.{rng.randint(0, 40)}.{rng.randint(0, 99)}" for _ in range(count * 2)}
    return sorted(out)[:count]


# --------------------------------------------------------------------------- proxy


class _ProxyServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = DEFAULT_BACKLOG
    upstream: tuple[str, int]
    delay_s: float = 0.0
    times: list[float]

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._upstream: http.client.HTTPConnection | None = None

    def finish(self) -> None:
        if self._upstream is not None:
            self._upstream.close()
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        arrived = time.monotonic()
        if self.path.startswith("/_proxy/"):
            self._control()
            return
        self.server.times.append(arrived)  # list.append is atomic under the GIL
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.server.delay_s > 0:
            time.sleep(self.server.delay_s)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        status, answer_headers, payload = self._forward(method, body, headers)
        self.send_response(status)
        for key, value in answer_headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(payload)

    def _forward(
        self, method: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        for attempt in (1, 2):  # a kept-alive upstream connection may have been closed meanwhile
            if self._upstream is None:
                host, port = self.server.upstream
                self._upstream = http.client.HTTPConnection(host, port, timeout=30)
            try:
                self._upstream.request(method, self.path, body=body or None, headers=headers)
                response = self._upstream.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException):
                self._upstream.close()
                self._upstream = None
                if attempt == 2:
                    return 502, [("Content-Type", "text/plain")], b"upstream failed"
                continue
            passed = [(k, v) for k, v in response.getheaders() if k in _PASSED_HEADERS]
            return response.status, passed, payload
        raise AssertionError("unreachable")

    def _control(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if parts.path == "/_proxy/times":
            since = int(query.get("since", "0"))
            answer: dict[str, Any] = {"times": self.server.times[since:]}
        elif parts.path == "/_proxy/delay":
            self.server.delay_s = float(query.get("ms", "0")) / 1000
            answer = {"delay_s": self.server.delay_s}
        elif parts.path == "/_proxy/reset":
            self.server.times = []
            answer = {}
        else:
            self.send_error(404)
            return
        payload = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def _serve_until_term(server: http.server.HTTPServer, port: int) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    print(f"port {port}", flush=True)
    stop.wait()
    server.shutdown()
    server.server_close()


def run_proxy(upstream: str, delay_ms: float) -> None:
    host, _, port = upstream.rpartition(":")
    server = _ProxyServer(("127.0.0.1", 0), _ProxyHandler)
    server.upstream = (host, int(port))
    server.delay_s = delay_ms / 1000
    server.times = []
    _serve_until_term(server, int(server.server_address[1]))


def run_registry(repos: int, tags: int, page_max: int) -> None:
    from tests.registryservers import SpecRegistry

    registry = SpecRegistry(page_max=page_max)
    for i in range(repos):
        registry.set_tags(repo_name(i), tags_of(i, tags))
    registry.start()
    # SpecRegistry logs every request; this process lives for one benchmark, so the log is bounded
    # by the benchmark's request count (tens of thousands of small records).
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"port {registry.port}", flush=True)
    stop.wait()
    registry.stop()


# --------------------------------------------------------------------------- the benchmark's face


class ServerProc:
    """One of the servers above as a child process; ``port`` once it listens."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bench_registry_servers", *args],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            cwd=str(REPO_ROOT),
            text=True,
        )
        assert self.proc.stdout is not None
        ready: list[str] = []
        reader = threading.Thread(target=lambda: ready.append(self.proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(DEFAULT_START_TIMEOUT_S)
        if not ready or not ready[0].startswith("port "):
            self.stop()
            raise RuntimeError(f"benchmark server {args[0]} did not start: {ready}")
        self.port = int(ready[0].split()[1])

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class ProxyControl:
    """The benchmark's handle on the proxy's own endpoints."""

    def __init__(self, host: str) -> None:
        self.host = host

    def _get(self, path: str) -> dict[str, Any]:
        host, _, port = self.host.rpartition(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            data = response.read()
            if response.status != 200:
                raise RuntimeError(f"proxy {path}: {response.status}")
            return dict(json.loads(data))
        finally:
            conn.close()

    def times(self, since: int = 0) -> list[float]:
        return [float(t) for t in self._get(f"/_proxy/times?since={since}")["times"]]

    def count(self) -> int:
        return len(self.times())

    def set_delay(self, ms: float) -> None:
        self._get(f"/_proxy/delay?ms={ms}")

    def reset(self) -> None:
        self._get("/_proxy/reset")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Registry and counting proxy for bench_registry.")
    sub = parser.add_subparsers(dest="what", required=True)
    proxy = sub.add_parser("proxy")
    proxy.add_argument("--upstream", required=True, help="HOST:PORT of the registry")
    proxy.add_argument("--delay-ms", type=float, default=0.0)
    registry = sub.add_parser("registry")
    registry.add_argument("--repos", type=int, required=True)
    registry.add_argument("--tags", type=int, required=True)
    registry.add_argument("--page-max", type=int, default=100)
    args = parser.parse_args(argv)
    if args.what == "proxy":
        run_proxy(args.upstream, args.delay_ms)
    else:
        run_registry(args.repos, args.tags, args.page_max)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
