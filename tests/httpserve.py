"""Plumbing shared by the tests' own HTTP servers (smart HTTP for git, the spec-following registry).

No pytest here: benchmarks import the servers too.
"""

from __future__ import annotations

import http.server
import socket
import sys
from typing import Any

#: Listen backlog: the default of 5 drops connections once 8 or more clients connect at once.
DEFAULT_BACKLOG = 128


class QuietThreadingServer(http.server.ThreadingHTTPServer):
    """A threaded server with a real backlog, for which clients hanging up are not errors."""

    daemon_threads = True
    request_queue_size = DEFAULT_BACKLOG

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (a killed worker, a timed-out poll) are normal here, not errors."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive without Nagle's delay and without access logs; GET and POST go to
    :meth:`_serve`."""

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Without TCP_NODELAY every request waits ~40 ms for the delayed ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        raise NotImplementedError
