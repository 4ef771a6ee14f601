"""Redis going away under a running beat and worker: an outage waited out, a lost catalog recovered.

Each test runs its own redis-server (the session's is shared) and stops and restarts it on the
same port: with append-only persistence for an outage that keeps the data, without for a Redis
that comes back empty.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import pytest

from gitops_tasks.settings import Settings
from gitops_tasks.tasks.context import Context
from tests.gitservers import FileRemotes
from tests.procs import RedisServer, wait_for

#: A Redis that keeps its data across a restart (SIGTERM writes the append-only file out).
PERSIST = ("--appendonly", "yes", "--appendfsync", "everysec")

#: Seconds Redis stays down in the outage test.
OUTAGE_S = 5.0


def git_repository(name: str, url: str, *, interval: str = "1s") -> str:
    return (
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n"
        f"metadata:\n  name: {name}\n  namespace: default\n"
        f"spec:\n  interval: {interval}\n  url: {url}\n"
    )


def last_run(ctx: Context, name: str) -> float:
    """Epoch seconds of the object's last run (0 if it never ran); whole seconds, as status has."""
    raw = ctx.client.hget(ctx.keys.status, f"GitRepository/default/{name}")
    stamp = json.loads(raw).get("lastRunTime") if raw else None
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if stamp else 0.0


@pytest.fixture
def remotes(tmp_path: Path) -> FileRemotes:
    return FileRemotes(tmp_path / "remotes").start()


class Restartable:
    """A private redis-server that the test stops and starts again on the same port."""

    def __init__(self, directory: Path, extra_args: tuple[str, ...] = ()) -> None:
        self.directory = directory
        self.extra_args = extra_args
        self.server: RedisServer | None = RedisServer(directory, extra_args=extra_args)
        self.port = self.server.port

    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def start(self) -> None:
        self.server = RedisServer(self.directory, port=self.port, extra_args=self.extra_args)


@pytest.fixture
def own_redis(tmp_path: Path, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    servers: list[Restartable] = []

    def make(extra_args: tuple[str, ...] = ()) -> Restartable:
        servers.append(Restartable(tmp_path / f"redis-{len(servers)}", extra_args))
        return servers[-1]

    yield make
    for server in servers:
        server.stop()


def test_beat_survives_a_redis_outage_and_resumes_the_schedule(
    gt_env, cli, procs, remotes, own_redis, tmp_path: Path
) -> None:
    # Given two repositories polled every second by a worker and beat, on a Redis that keeps its data
    redis_server = own_redis(PERSIST)
    env = {"GITOPS_TASKS_REDIS_URL": redis_server.url()}
    names = ["one", "two"]
    for name in names:
        repo = remotes.new_repo(name, {"deploy.yaml": "replicas: 1\n"})
        (tmp_path / f"{name}.yaml").write_text(git_repository(name, repo.url))
        assert cli("apply", "-f", str(tmp_path / f"{name}.yaml"), env=env).returncode == 0
    ctx = Context(Settings.from_env({**gt_env, **env}))
    procs("worker", "-c", "2", env=env)
    beat = procs("beat", env=env)
    wait_for(lambda: all(last_run(ctx, n) for n in names), what="a first run of each repository")

    # When Redis is unreachable for 5 s, then back on the same port with the same data
    redis_server.stop()
    time.sleep(OUTAGE_S)
    redis_server.start()
    back = time.time()

    # Then beat is still running and every object runs again after Redis returned
    def ran_again() -> bool:
        assert beat.proc.poll() is None, f"beat exited with {beat.proc.returncode}:\n{beat.log()[-3000:]}"
        return all(last_run(ctx, n) >= back + 1 for n in names)

    wait_for(ran_again, timeout_s=60, interval_s=0.3, what="every repository to run after the outage")
    ctx.client.close()
    # And the outage is logged once when it starts and once when it ends, not once per tick
    log = beat.log()
    assert log.count("is unreachable") == 1, log[-3000:]
    assert log.count("is reachable again") == 1, log[-3000:]
