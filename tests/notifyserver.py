"""A loopback HTTP server standing in for a notification service: it records every request and
answers as told (2xx, a run of 500s, 429 with Retry-After, 4xx, or a stall past the client's
timeout). No pytest here: benchmarks use it too.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tests.httpserve import QuietHandler, QuietThreadingServer

#: The status recorded for a request the server stalled on past the client's timeout.
STALLED = 599


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    #: time.time() when the request arrived.
    at: float
    #: The status this server answered with.
    status: int

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Behaviour:
    """What the next requests get: ``script`` is consumed first (one entry per request: a status,
    or ``"stall"``), then ``status`` for every request. ``retry_after`` goes with 429s."""

    status: int = 200
    script: deque[int | str] = field(default_factory=deque)
    retry_after: str | None = None
    stall_s: float = 3.0
    #: The body of every answer (JSON services answer errors inside a 200, as Slack's Web API).
    body: bytes = b"ok"


class NotifyServer:
    def __init__(self) -> None:
        #: Path → its behaviour (paths not named answer 200).
        self.behaviours: dict[str, Behaviour] = {}
        self.lock = threading.Lock()
        self.requests: list[Received] = []
        owner = self

        class Handler(QuietHandler):
            def _serve(self) -> None:
                arrived = time.time()
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with owner.lock:
                    b = owner.behaviours.setdefault(self.path, Behaviour())
                    step: int | str = b.script.popleft() if b.script else b.status
                # A stalled request's client has given up by the end: recorded as 599 (at once),
                # never as delivered.
                status = STALLED if step == "stall" else int(step)
                seen = Received(self.command, self.path, dict(self.headers.items()), body, arrived, status)
                with owner.lock:
                    owner.requests.append(seen)
                if status == STALLED:
                    time.sleep(b.stall_s)
                with contextlib.suppress(OSError):
                    self._answer(status, b)

            def _answer(self, status: int, b: Behaviour) -> None:
                self.send_response(200 if status == STALLED else status)
                if status == 429 and b.retry_after is not None:
                    self.send_header("Retry-After", b.retry_after)
                self.send_header("Content-Length", str(len(b.body)))
                self.end_headers()
                self.wfile.write(b.body)

            def do_PUT(self) -> None:
                self._serve()

        self.server = QuietThreadingServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def set(
        self,
        path: str,
        *,
        status: int = 200,
        script: list[int | str] | None = None,
        retry_after: str | None = None,
        stall_s: float = 3.0,
        body: bytes = b"ok",
    ) -> None:
        """How ``path`` answers from now on."""
        with self.lock:
            self.behaviours[path] = Behaviour(status, deque(script or []), retry_after, stall_s, body)

    def delivered(self, path: str | None = None) -> list[Received]:
        """Requests answered 2xx (to ``path`` if given), in arrival order."""
        with self.lock:
            return [r for r in self.requests if 200 <= r.status < 300 and (path is None or r.path == path)]

    def received(self, path: str | None = None) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if path is None or r.path == path]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def provider_and_alert(address: str, *, suspend: bool = False, timeout: str = "15s") -> str:
    """YAML of Provider ``default/hook`` (``generic``, to ``address``) and Alert ``default/all``
    taking every Kustomization's events to it."""
    return f"""apiVersion: notification.toolkit.fluxcd.io/v1beta3
kind: Provider
metadata: {{name: hook, namespace: default}}
spec: {{type: generic, address: "{address}", timeout: {timeout}, suspend: {str(suspend).lower()}}}
---
apiVersion: notification.toolkit.fluxcd.io/v1beta3
kind: Alert
metadata: {{name: all, namespace: default}}
spec:
  providerRef: {{name: hook}}
  eventSources: [{{kind: Kustomization, name: "*"}}]
"""
