"""``KubeAPIServer``: the emulator on a loopback port, in a background thread of the test process.

Plain HTTP (no TLS) with a bearer token, HTTP/1.1 keep-alive, one thread per connection. The official
``kubernetes`` client reaches it through :meth:`KubeAPIServer.kubeconfig` or
:meth:`KubeAPIServer.api_client`, exactly as it would reach a real cluster.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import yaml

from tests.kubeapi.errors import ApiError
from tests.kubeapi.routes import PUBLIC_PATHS, Request, route
from tests.kubeapi.store import Store
from tests.kubeapi.watch import WatchStream

#: The bearer token the emulator accepts (written into its kubeconfig).
DEFAULT_TOKEN = "kubeapi-emulator-token"
#: Name of the cluster, user and context in the kubeconfig.
CONTEXT = "kubeapi-emulator"


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    store: Store
    token: str | None
    stopping: threading.Event

    def server_activate(self) -> None:
        self.connections: set[socket.socket] = set()
        super().server_activate()

    def process_request(self, request: Any, client_address: Any) -> None:
        self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End kept-alive connections too, so a stopped server really stops answering."""
        for connection in list(self.connections):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _HTTPServer

    def _handle(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=url.path,
            params=dict(parse_qsl(url.query, keep_blank_values=True)),
            body=body,
            content_type=(self.headers.get("Content-Type") or "").split(";")[0].strip(),
            user_agent=self.headers.get("User-Agent") or "",
            stopping=self.server.stopping.is_set,
        )
        try:
            self._authenticate(request)
            host, port = self.server.server_address[:2]
            code, payload = route(self.server.store, request, f"{host!s}:{port}")
        except ApiError as exc:
            code, payload = exc.code, exc.status()
        except Exception as exc:  # a bug in the emulator: answer 500 with the traceback, like a panic
            code = 500
            payload = ApiError(500, "InternalError", f"{exc!r}\n{traceback.format_exc()}").status()
        if isinstance(payload, WatchStream):
            self._stream(payload)
            return
        if isinstance(payload, str):
            data, content_type = payload.encode(), "text/plain; charset=utf-8"
        else:
            data, content_type = json.dumps(payload, separators=(",", ":")).encode(), "application/json"
        head = (
            f"HTTP/1.1 {code} {self.responses.get(code, ('',))[0]}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(data)}\r\n"
            "Cache-Control: no-cache, private\r\n\r\n"
        )
        self.wfile.write(head.encode() + data)
        self.log_request(code, len(data))

    def _stream(self, stream: WatchStream) -> None:
        """Send watch events as chunks of one JSON line each, then end the response."""
        self.wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
            b"Cache-Control: no-cache, private\r\n\r\n"
        )
        try:
            for event in stream.events:
                line = json.dumps(event, separators=(",", ":")).encode() + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.write(b"0\r\n\r\n")
        except OSError:  # the client went away
            self.close_connection = True

    def _authenticate(self, request: Request) -> None:
        """A wrong bearer token gets 401; none at all is accepted, because over plain HTTP client-go
        (kubectl) never sends one."""
        token, sent = self.server.token, self.headers.get("Authorization")
        if token is None or sent is None or request.path in PUBLIC_PATHS:
            return
        if sent != f"Bearer {token}":
            raise ApiError(401, "Unauthorized", "Unauthorized")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass


class KubeAPIServer:
    """An in-memory Kubernetes API server for tests (see ``tests/kubeapi/__init__.py`` for the scope).

    ``simulate_controllers`` makes workloads report a ready status as soon as they are written;
    ``token=None`` accepts unauthenticated requests.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = DEFAULT_TOKEN,
        simulate_controllers: bool = True,
    ) -> None:
        self.store = Store(simulate_controllers=simulate_controllers)
        self.token = token
        self._address = (host, port)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> KubeAPIServer:
        if self._httpd is not None:
            return self
        httpd = _HTTPServer(self._address, _Handler)
        httpd.store, httpd.token, httpd.stopping = self.store, self.token, threading.Event()
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, args=(0.05,), name="kubeapi-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        self._httpd = self._thread = None
        if httpd is not None:
            httpd.stopping.set()  # ends open watches
            httpd.shutdown()
            httpd.server_close()
            httpd.close_connections()
        if thread is not None:
            thread.join(10)

    def __enter__(self) -> KubeAPIServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def reset(self) -> None:
        """Drop every object and CRD; the initial namespaces come back."""
        self.store.reset()

    # -- how clients reach it -----------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("KubeAPIServer is not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._address[0]}:{self.port}"

    def kubeconfig_dict(self, *, namespace: str = "default") -> dict[str, Any]:
        user: dict[str, Any] = {"token": self.token} if self.token else {}
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": CONTEXT, "cluster": {"server": self.url}}],
            "users": [{"name": CONTEXT, "user": user}],
            "contexts": [
                {"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": namespace}}
            ],
            "current-context": CONTEXT,
        }

    def kubeconfig(self, path: str | Path, *, namespace: str = "default") -> Path:
        """Write a kubeconfig for this server (for ``load_kube_config``, kubectl, subprocesses)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.kubeconfig_dict(namespace=namespace), sort_keys=False))
        path.chmod(0o600)
        return path

    def api_client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` configured from this server's kubeconfig."""
        from kubernetes import config

        return config.new_client_from_config_dict(self.kubeconfig_dict())

    # -- what tests may do that a controller would ---------------------------------------------------

    def set_status(
        self, api_version: str, kind: str, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        """Replace an object's status, e.g. to make a Deployment unavailable; returns the object."""
        with self.store.lock:
            rt = self.store.registry.by_kind(api_version, kind)
        if rt is None:
            raise KeyError(f"{kind} is not served at {api_version}")
        return self.store.set_status(rt, namespace, name, status)

    @property
    def deletions(self) -> list[dict[str, str]]:
        """Every deletion so far (explicit and cascaded) with its propagation policy, oldest first."""
        with self.store.lock:
            return list(self.store.deletions)
