"""``gitops-tasks up``: the whole stack on one machine, supervised as child processes.

Starts an embedded Redis when ``GITOPS_TASKS_REDIS_URL`` is unset, applies the start-up objects,
then runs one worker serving every queue, beat, Flower and the webhook receiver (on loopback; not
started, with a warning, when its port is taken). A child that dies is restarted (with a
growing delay), the embedded Redis on its own port; Ctrl-C or SIGTERM stops every child, then
Redis, and removes the files this ``up`` wrote.

One ``up`` per data dir: it holds a lock on ``$DATA_DIR/up.lock`` (which records its pid, Redis
and Flower) for its lifetime, and a second one refuses to start, naming the first. So does one
whose Flower port is taken.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from gitops_tasks.embedded import start_redis
from gitops_tasks.redact import redact
from gitops_tasks.settings import Settings

#: Seconds a child gets to stop after SIGTERM before it is killed.
DEFAULT_STOP_GRACE_S = 15.0
#: Longest delay before restarting a child that keeps dying.
DEFAULT_MAX_RESTART_DELAY_S = 30.0


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default=0.0)

    def start(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(self.argv, env=env, stdin=subprocess.DEVNULL)
        self.started_at = time.monotonic()
        print(f"up: started {self.name} (pid {self.proc.pid})", flush=True)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "gitops_tasks.cli", *args]


class StackLock:
    """An exclusive ``flock`` on the data dir's ``up.lock``, held while ``up`` runs.

    The kernel drops the lock when the process dies, however it dies, so a stale file never blocks
    a new ``up``. The file is never removed (removing a locked file would let two holders in); it
    holds the running stack's facts as JSON and is emptied when that stack stops.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> dict[str, object] | None:
        """Take the lock: None, or the facts of the running stack holding it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            try:
                facts = json.loads(self.path.read_text() or "{}")
            except (OSError, ValueError):
                facts = {}
            return facts if isinstance(facts, dict) else {}
        self._fd = fd
        return None

    def record(self, facts: dict[str, object]) -> None:
        assert self._fd is not None
        data = json.dumps(facts).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None


def port_in_use(address: str, port: int) -> bool:
    """True if nothing may listen on (address, port) now (bound as Flower binds, SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError:
            return True
    return False


def already_running(facts: dict[str, object], data_dir: Path) -> str:
    pid = facts.get("pid", "unknown")
    return (
        f"error: gitops-tasks up is already running with data dir {data_dir} (pid {pid}): "
        f"Redis {facts.get('redis_url') or 'unknown'}, Flower {facts.get('flower_url') or 'off'}.\n"
        f"Stop it first (Ctrl-C in its terminal, or kill -INT {pid}), or start another with its own "
        "GITOPS_TASKS_DATA_DIR and GITOPS_TASKS_FLOWER_PORT."
    )


def flower_port_taken(address: str, port: int) -> str:
    return (
        f"error: Flower cannot listen on {address}:{port}: the port is in use (another gitops-tasks up "
        "with another data dir, or another program). Set GITOPS_TASKS_FLOWER_PORT to a free port, "
        "or pass --no-flower."
    )


class Supervisor:
    def __init__(
        self, settings: Settings, *, paths: list[str], flower: bool = True, receiver_port: int | None = None
    ) -> None:
        self.settings = settings
        self.paths = paths
        self.receiver_port = receiver_port
        self.children = [
            Child("worker", _cli("worker")),
            Child("beat", _cli("beat")),
        ]
        if flower:
            self.children.append(Child("flower", _cli("flower")))
        if receiver_port is not None:
            self.children.append(Child("receiver", _cli("receiver", "--port", str(receiver_port))))
        self.redis_proc: subprocess.Popen[bytes] | None = None
        self.redis_url = ""
        self.stopping = False
        self.lock = StackLock(settings.up_lock_file)

    @property
    def flower_url(self) -> str:
        return f"http://{self.settings.flower_address}:{self.settings.flower_port}"

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if not self.stopping:
            print(f"\nup: {signal.Signals(signum).name} received, stopping…", flush=True)
        self.stopping = True

    def run(self) -> int:
        """Run the stack until Ctrl-C or SIGTERM: 0 then; 1 when another stack is in the way."""
        running = self.lock.acquire()
        if running is not None:
            print(already_running(running, self.settings.data_dir), file=sys.stderr, flush=True)
            return 1
        flower = any(c.name == "flower" for c in self.children)
        if flower and port_in_use(self.settings.flower_address, self.settings.flower_port):
            self.lock.release()
            print(flower_port_taken(self.settings.flower_address, self.settings.flower_port), file=sys.stderr)
            return 1
        if self.receiver_port is not None and port_in_use("127.0.0.1", self.receiver_port):
            print(
                f"up: warning: the receiver is not started: port {self.receiver_port} is in use "
                "(pass --receiver-port PORT or --no-receiver)",
                file=sys.stderr,
                flush=True,
            )
            self.children = [c for c in self.children if c.name != "receiver"]
        env = dict(os.environ)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        state_file = self.settings.embedded_state_file
        try:
            if not self.settings.redis_url:
                self._start_redis()
                env["GITOPS_TASKS_REDIS_URL"] = self.redis_url
                state_file.parent.mkdir(parents=True, exist_ok=True)
                state_file.write_text(self.redis_url + "\n")
            self.lock.record(
                {
                    "pid": os.getpid(),
                    "redis_url": redact(self.redis_url or self.settings.redis_url or ""),
                    "flower_url": self.flower_url if flower else None,
                    "started_at": time.time(),
                }
            )
            paths = [str(Path(p).resolve()) for p in (*self.paths, *self.settings.catalog_paths)]
            if paths:
                env["GITOPS_TASKS_CATALOG_PATHS"] = os.pathsep.join(paths)
            from beat_schedule.startup import apply_startup_objects

            apply_startup_objects(Settings.from_env(env), paths)
            env.setdefault("FLOWER_UNAUTHENTICATED_API", "true")  # Flower listens on loopback by default
            for child in self.children:
                child.start(env)
            if any(c.name == "receiver" for c in self.children):
                print(f"up: webhook receiver on http://127.0.0.1:{self.receiver_port}/hook/…", flush=True)
            if flower:
                print(f"up: Flower on {self.flower_url}  (Ctrl-C stops everything)", flush=True)
            self._watch(env)
        finally:
            self._stop_all()
            if self.redis_proc is not None:
                self.redis_proc.terminate()
                try:
                    self.redis_proc.wait(DEFAULT_STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    self.redis_proc.kill()
                _remove_if_ours(state_file, self.redis_url + "\n")
            self.lock.release()
            print("up: stopped", flush=True)
        return 0

    def _start_redis(self) -> None:
        """Start the embedded Redis (again on the same port, after it died)."""
        port = int(self.redis_url.rsplit(":", 1)[1].split("/")[0]) if self.redis_url else None
        persist = self.settings.redis_persist
        directory = self.settings.data_dir / "redis"
        self.redis_proc, self.redis_url = start_redis(directory, port=port, persist=persist)
        kept = f"persisting to {directory}" if persist else "no persistence: GITOPS_TASKS_REDIS_PERSIST=false"
        print(f"up: embedded Redis at {self.redis_url} (pid {self.redis_proc.pid}, {kept})", flush=True)

    def _watch(self, env: dict[str, str]) -> None:
        while not self.stopping:
            time.sleep(0.2)
            now = time.monotonic()
            if self.redis_proc is not None and self.redis_proc.poll() is not None and not self.stopping:
                print(
                    f"up: embedded Redis exited with {self.redis_proc.returncode}; restarting it", flush=True
                )
                try:
                    self._start_redis()
                except RuntimeError as exc:
                    print(f"up: could not restart the embedded Redis ({exc}); stopping", flush=True)
                    break
            for child in self.children:
                if child.proc is None:
                    if now >= child.next_start:
                        child.start(env)
                    continue
                code = child.proc.poll()
                if code is None or self.stopping:
                    continue
                if child.name == "flower" and port_in_use(
                    self.settings.flower_address, self.settings.flower_port
                ):
                    print(f"up: {flower_port_taken(self.settings.flower_address, self.settings.flower_port)}")
                    print("up: Flower is not restarted; the rest of the stack runs on", flush=True)
                    self.children.remove(child)
                    break
                lived = now - child.started_at
                child.restarts = 0 if lived > 60 else child.restarts + 1
                delay = min(2**child.restarts, DEFAULT_MAX_RESTART_DELAY_S)
                print(f"up: {child.name} exited with {code}; restarting in {delay:.0f}s", flush=True)
                child.proc = None
                child.next_start = now + delay

    def _stop_all(self) -> None:
        running = [c for c in self.children if c.proc is not None and c.proc.poll() is None]
        for child in running:
            assert child.proc is not None
            child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + DEFAULT_STOP_GRACE_S
        for child in running:
            assert child.proc is not None
            try:
                child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"up: {child.name} did not stop in time; killing it", flush=True)
                child.proc.kill()
                child.proc.wait()


def _remove_if_ours(path: Path, content: str) -> None:
    """Remove ``path`` if it still holds what this ``up`` wrote (never another stack's file)."""
    try:
        if path.read_text() == content:
            path.unlink()
    except OSError:
        pass
