"""A small threaded HTTP server for ``/metrics``, ``/healthz`` and ``/readyz``.

It runs in a daemon thread of the process it reports on (a worker's main process, beat, the
catalog collector), so a probe costs a request, never a new Python process. Health answers are
JSON: ``{"alive": …, "ready": …, "heartbeatAgeSeconds": …}`` with 200 or 503.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from gitops_tasks.metrics.exposition import CONTENT_TYPE

log = logging.getLogger(__name__)

#: A health check: the query parameters in; (healthy, JSON-able facts) out.
Check = Callable[[Mapping[str, list[str]]], tuple[bool, dict[str, Any]]]


class MetricsServer:
    """Serves ``metrics()`` at ``/metrics`` and each of ``checks`` at its path (``/healthz`` …)."""

    def __init__(
        self,
        address: str,
        port: int,
        *,
        metrics: Callable[[], bytes],
        checks: Mapping[str, Check],
    ) -> None:
        handler = _handler(metrics, dict(checks))
        self.httpd = ThreadingHTTPServer((address, port), handler)
        self.httpd.daemon_threads = True
        self.address, self.port = self.httpd.server_address[:2]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="metrics-http", daemon=True)

    def start(self) -> MetricsServer:
        self._thread.start()
        log.info(
            "metrics and health on http://%s:%s (/metrics, %s)", self.address, self.port, "/healthz, /readyz"
        )
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler(metrics: Callable[[], bytes], checks: dict[str, Check]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "gitops-tasks"

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/metrics":
                try:
                    self._send(200, metrics(), CONTENT_TYPE)
                except Exception as exc:
                    log.warning("could not produce metrics: %s", exc)
                    self._send(500, f"metrics unavailable: {type(exc).__name__}\n".encode(), "text/plain")
                return
            check = checks.get(url.path)
            if check is None:
                self._send(404, b"not found; try /metrics, /healthz or /readyz\n", "text/plain")
                return
            try:
                ok, facts = check(parse_qs(url.query))
            except Exception as exc:
                ok, facts = False, {"error": type(exc).__name__}
            body = (json.dumps(facts, sort_keys=True) + "\n").encode()
            self._send(200 if ok else 503, body, "application/json")

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Probes and scrapes every few seconds are not worth a log line."""

    return Handler
