"""``gitops-tasks up``: the whole stack on one machine, supervised as child processes.

Starts an embedded Redis when ``GITOPS_TASKS_REDIS_URL`` is unset, applies the start-up objects,
then runs one worker serving every queue, beat and Flower. A child that dies is restarted (with a
growing delay); Ctrl-C or SIGTERM stops every child, then Redis, and removes the state file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from gitops_tasks.embedded import start_redis
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


class Supervisor:
    def __init__(self, settings: Settings, *, paths: list[str], flower: bool = True) -> None:
        self.settings = settings
        self.paths = paths
        self.children = [
            Child("worker", _cli("worker")),
            Child("beat", _cli("beat")),
        ]
        if flower:
            self.children.append(Child("flower", _cli("flower")))
        self.redis_proc: subprocess.Popen[bytes] | None = None
        self.stopping = False

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if not self.stopping:
            print(f"\nup: {signal.Signals(signum).name} received, stopping…", flush=True)
        self.stopping = True

    def run(self) -> int:
        env = dict(os.environ)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        state_file = self.settings.embedded_state_file
        try:
            if not self.settings.redis_url:
                self.redis_proc, url = start_redis(
                    self.settings.data_dir / "redis", persist=self.settings.redis_persist
                )
                env["GITOPS_TASKS_REDIS_URL"] = url
                state_file.parent.mkdir(parents=True, exist_ok=True)
                state_file.write_text(url + "\n")
                print(f"up: embedded Redis at {url} (pid {self.redis_proc.pid})", flush=True)
            paths = [str(Path(p).resolve()) for p in (*self.paths, *self.settings.catalog_paths)]
            if paths:
                env["GITOPS_TASKS_CATALOG_PATHS"] = os.pathsep.join(paths)
            from gitops_tasks.cli import apply_startup_objects

            apply_startup_objects(Settings.from_env(env), paths)
            env.setdefault("FLOWER_UNAUTHENTICATED_API", "true")  # Flower listens on loopback by default
            for child in self.children:
                child.start(env)
            if any(c.name == "flower" for c in self.children):
                print(
                    f"up: Flower on http://{self.settings.flower_address}:{self.settings.flower_port}  "
                    "(Ctrl-C stops everything)",
                    flush=True,
                )
            self._watch(env)
        finally:
            self._stop_all()
            if self.redis_proc is not None:
                self.redis_proc.terminate()
                try:
                    self.redis_proc.wait(DEFAULT_STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    self.redis_proc.kill()
                state_file.unlink(missing_ok=True)
            print("up: stopped", flush=True)
        return 0

    def _watch(self, env: dict[str, str]) -> None:
        while not self.stopping:
            time.sleep(0.2)
            now = time.monotonic()
            for child in self.children:
                if child.proc is None:
                    if now >= child.next_start:
                        child.start(env)
                    continue
                code = child.proc.poll()
                if code is None or self.stopping:
                    continue
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
