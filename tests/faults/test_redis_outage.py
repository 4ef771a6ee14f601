"""Redis going away under a running beat and worker: an outage waited out, a lost catalog recovered.

Each test runs its own redis-server (the session's is shared) and stops and restarts it on the
same port: with append-only persistence for an outage that keeps the data, without for a Redis
that comes back empty.
"""

from __future__ import annotations

import json
import signal
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
    gt_env, own_redis, cli, procs, remotes, tmp_path: Path
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


def error_lines(log: str, *phrases: str) -> list[str]:
    return [line for line in log.splitlines() if "ERROR" in line and any(p in line for p in phrases)]


def test_a_redis_restart_without_persistence_is_reported_and_the_start_up_objects_come_back(
    gt_env, own_redis, cli, procs, remotes, tmp_path: Path
) -> None:
    # Given a repository in the start-up paths and one applied by hand, reconciled by a worker and
    # beat, on a Redis without persistence
    redis_server = own_redis()
    boot = remotes.new_repo("boot", {"deploy.yaml": "replicas: 1\n"})
    manual = remotes.new_repo("manual", {"deploy.yaml": "replicas: 1\n"})
    (tmp_path / "boot.yaml").write_text(git_repository("boot", boot.url))
    (tmp_path / "manual.yaml").write_text(git_repository("manual", manual.url))
    env = {
        "GITOPS_TASKS_REDIS_URL": redis_server.url(),
        "GITOPS_TASKS_CATALOG_PATHS": str(tmp_path / "boot.yaml"),
    }
    assert cli("apply", "-f", str(tmp_path / "manual.yaml"), env=env).returncode == 0
    ctx = Context(Settings.from_env({**gt_env, **env}))
    worker = procs("worker", "-c", "2", env=env)
    beat = procs("beat", env=env)
    wait_for(lambda: last_run(ctx, "boot") and last_run(ctx, "manual"), what="a first run of each repository")
    listed = cli("get", "gitrepository", env=env)
    assert listed.returncode == 0 and "boot" in listed.stdout and "manual" in listed.stdout

    # When Redis restarts without its data
    redis_server.stop()
    redis_server.start()
    back = time.time()

    # Then beat logs the loss at ERROR and re-applies the start-up paths: the repository comes back
    # and is reconciled again
    wait_for(
        lambda: last_run(ctx, "boot") >= back + 1, timeout_s=60, what="the start-up repository to run again"
    )
    ctx.client.close()
    assert error_lines(beat.log(), "is gone"), beat.log()[-3000:]
    assert "re-applied 1 start-up object(s)" in beat.log()
    # And the worker logs it at ERROR too
    wait_for(
        lambda: error_lines(worker.log(), "is gone", "was lost and re-created"),
        timeout_s=30,
        what="the worker to log the lost catalog",
    )
    # And the CLI that listed both says the catalog was lost and re-created; the hand-applied one is gone
    listed = cli("get", "gitrepository", env=env)
    assert "was lost and re-created" in listed.stderr and "Redis lost its data" in listed.stderr
    assert "boot" in listed.stdout and "manual" not in listed.stdout


def test_the_cli_reports_a_vanished_catalog_and_a_fresh_redis_is_not_an_error(
    cli, remotes, own_redis, tmp_path: Path
) -> None:
    # Given a Redis never used: listing finds nothing, and that is no error
    redis_server = own_redis()
    env = {"GITOPS_TASKS_REDIS_URL": redis_server.url()}
    fresh = cli("get", "gitrepository", env=env)
    assert fresh.returncode == 0, fresh.stderr
    assert "no GitRepository objects found" in fresh.stdout and fresh.stderr == ""
    # And once an object is applied, it is listed
    repo = remotes.new_repo("app", {"deploy.yaml": "replicas: 1\n"})
    (tmp_path / "app.yaml").write_text(git_repository("app", repo.url))
    assert cli("apply", "-f", str(tmp_path / "app.yaml"), env=env).returncode == 0
    assert cli("get", "gitrepository", env=env).returncode == 0

    # When Redis restarts without its data
    redis_server.stop()
    redis_server.start()

    # Then listing fails, saying the catalog is gone and why
    gone = cli("get", "gitrepository", env=env)
    assert gone.returncode == 3
    assert f"the catalog in {redis_server.url()}" in gone.stderr and "is gone" in gone.stderr
    assert (
        "Redis lost its data (restart without persistence, flush, or failover to an empty replica)"
        in gone.stderr
    )
    # And so does asking for a reconcile of the object it had
    reconcile = cli("reconcile", "gitrepository", "app", env=env)
    assert reconcile.returncode == 3 and "is gone" in reconcile.stderr
    # And applying again re-creates it (with a warning), after which listing works again
    again = cli("apply", "-f", str(tmp_path / "app.yaml"), env=env)
    assert again.returncode == 0 and "is gone" in again.stderr
    listed = cli("get", "gitrepository", env=env)
    assert listed.returncode == 0 and "app" in listed.stdout, listed.stderr


def test_a_worker_busy_with_a_task_when_redis_restarts_reconnects_and_carries_on(
    gt_env, own_redis, cli, procs, remotes, slow_http, tmp_path: Path
) -> None:
    # Given a worker in the middle of a slow poll (its message not acknowledged yet), and a
    # repository polled every second, on a Redis that keeps its data
    redis_server = own_redis(PERSIST)
    env = {"GITOPS_TASKS_REDIS_URL": redis_server.url()}
    slow = slow_http.new_repo("slow", {"a.yaml": "a: 1\n"})
    fast = remotes.new_repo("fast", {"a.yaml": "a: 1\n"})
    (tmp_path / "slow.yaml").write_text(git_repository("slow", slow.url, interval="1h"))
    (tmp_path / "fast.yaml").write_text(git_repository("fast", fast.url))
    assert cli("apply", "-f", str(tmp_path / "fast.yaml"), env=env).returncode == 0
    ctx = Context(Settings.from_env({**gt_env, **env}))
    worker = procs("worker", "-c", "2", env=env)
    procs("beat", env=env)
    wait_for(lambda: last_run(ctx, "fast"), what="a first run of the fast repository")
    slow_http.delay_s = 8.0
    assert cli("apply", "-f", str(tmp_path / "slow.yaml"), env=env).returncode == 0
    wait_for(lambda: slow_http.requests > 0, what="the slow poll to reach its server")

    # When Redis restarts
    redis_server.stop()
    redis_server.start()
    back = time.time()
    slow_http.delay_s = 0.0

    # Then the worker reconnects instead of exiting, and the schedule carries on
    def ran_again() -> bool:
        assert worker.proc.poll() is None, f"the worker exited:\n{worker.log()[-3000:]}"
        return last_run(ctx, "fast") >= back + 1

    wait_for(ran_again, timeout_s=60, interval_s=0.3, what="the fast repository to run after the restart")
    ctx.client.close()


#: Seconds a paused Redis must keep beat's commands waiting before they fail (set short in the test).
PAUSE_SOCKET_TIMEOUT_S = "1"


def test_beat_notices_a_redis_that_stops_answering_and_resumes_after_it_answers_again(
    gt_env, own_redis, cli, procs, remotes, tmp_path: Path
) -> None:
    # Given a repository polled every 10 s by a worker and beat (so the pause comes between two
    # sends, and beat meets it on its own Redis client)
    redis_server = own_redis(PERSIST)
    env = {
        "GITOPS_TASKS_REDIS_URL": redis_server.url(),
        "GITOPS_TASKS_REDIS_SOCKET_TIMEOUT_S": PAUSE_SOCKET_TIMEOUT_S,
    }
    repo = remotes.new_repo("one", {"deploy.yaml": "replicas: 1\n"})
    (tmp_path / "one.yaml").write_text(git_repository("one", repo.url, interval="10s"))
    assert cli("apply", "-f", str(tmp_path / "one.yaml"), env=env).returncode == 0
    ctx = Context(Settings.from_env({**gt_env, **env}))
    procs("worker", "-c", "2", env=env)
    beat = procs("beat", env=env)
    wait_for(lambda: last_run(ctx, "one"), what="a first run of the repository")

    # When Redis stops answering without refusing connections (paused, as in a partition)
    assert redis_server.server is not None
    paused = redis_server.server.proc
    paused.send_signal(signal.SIGSTOP)
    try:
        # Then beat says so while it lasts, instead of waiting on a reply forever
        wait_for(lambda: "is unreachable" in beat.log(), timeout_s=30, what="beat to log the outage")
        time.sleep(2 * float(PAUSE_SOCKET_TIMEOUT_S))
    finally:
        paused.send_signal(signal.SIGCONT)
    back = time.time()

    # And once Redis answers again beat resumes the schedule
    def ran_again() -> bool:
        assert beat.proc.poll() is None, f"beat exited with {beat.proc.returncode}:\n{beat.log()[-3000:]}"
        return last_run(ctx, "one") >= back + 1

    wait_for(ran_again, timeout_s=60, interval_s=0.3, what="the repository to run after the pause")
    wait_for(lambda: "is reachable again" in beat.log(), what="beat to log the end of the outage")
    ctx.client.close()
