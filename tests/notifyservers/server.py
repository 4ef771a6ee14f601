"""The loopback server routing each request to its service."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.httpserve import QuietHandler, QuietThreadingServer
from tests.notifyservers.base import ROUTES, Received, Refused, Reply


class _Handler(QuietHandler):
    server: _HTTPd

    def do_PUT(self) -> None:
        self._serve()

    def _serve(self) -> None:
        srv = self.server.owner
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        req = Received(
            self.command,
            parts.path,
            parse_qs(parts.query),
            {k.lower(): v for k, v in self.headers.items()},
            self.rfile.read(length),
        )
        reply = srv.answer(req)
        body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        ctype = "text/plain" if isinstance(reply.body, bytes) else "application/json"
        self.send_header("Content-Type", ctype)
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _HTTPd(QuietThreadingServer):
    owner: ServiceServer


class ServiceServer:
    """Every provider's service on one loopback port (``with ServiceServer() as srv``).

    ``repos`` maps a forge repository id (``org/app``, ``group/sub/app``, ``PROJ/app``,
    ``org/project/app``) to a Git repository whose commits the forge routes accept."""

    def __init__(self, repos: dict[str, Path] | None = None) -> None:
        self.repos: dict[str, Path] = dict(repos or {})
        self.slack_channels = {"general", "C0123456789"}
        self.received: list[Received] = []
        self.statuses: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.matrix_events: dict[str, str] = {}
        self._failures: list[Reply] = []
        self._lock = threading.Lock()
        self._httpd = _HTTPd(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> ServiceServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def fail(self, status: int, times: int = 1, headers: dict[str, str] | None = None) -> None:
        """Answer the next ``times`` requests with ``status`` (and ``headers``) before checking."""
        with self._lock:
            self._failures += [Reply(status, {"error": "injected"}, dict(headers or {}))] * times

    def take(self) -> list[Received]:
        """The requests received so far, clearing the record."""
        with self._lock:
            out, self.received = self.received, []
        return out

    def reset(self) -> None:
        """Forget requests, pending failures, statuses and Matrix transactions (between tests)."""
        with self._lock:
            self.received, self._failures = [], []
            self.statuses.clear()
            self.matrix_events.clear()

    def has_repo(self, repo: str) -> bool:
        return repo in self.repos

    def has_commit(self, repo: str, sha: str) -> bool:
        path = self.repos.get(repo)
        if path is None:
            return False
        proc = subprocess.run(
            ["git", "-C", str(path), "cat-file", "-e", f"{sha}^{{commit}}"], capture_output=True, check=False
        )
        return proc.returncode == 0

    def set_status(self, repo: str, sha: str, key: str, body: dict[str, Any]) -> None:
        with self._lock:
            self.statuses.setdefault((repo, sha), {})[key] = body

    def status_of(self, repo: str, sha: str) -> dict[str, dict[str, Any]]:
        """The statuses on a commit, by context/key."""
        with self._lock:
            return dict(self.statuses.get((repo, sha), {}))

    def answer(self, req: Received) -> Reply:
        with self._lock:
            self.received.append(req)
            if self._failures:
                return self._failures.pop(0)
        matched_path = False
        for method, pattern, fn in ROUTES:
            m = pattern.match(req.path)
            if not m:
                continue
            matched_path = True
            if method != req.method:
                continue
            try:
                return fn(req, m, self)
            except Refused as refused:
                body = refused.body if isinstance(refused.body, dict | list) else str(refused.body).encode()
                return Reply(refused.status, body)
        return Reply(405 if matched_path else 404, b"no such endpoint")
