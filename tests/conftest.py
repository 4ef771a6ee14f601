"""Shared fixtures: a real Redis per session (a database per test), real gitops-tasks processes."""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gitops_tasks.settings import Settings
from gitops_tasks.tasks.context import Context
from tests.procs import Proc, RedisServer, cli_argv

pytest_plugins = ["tests.gitfixtures", "tests.registryfixtures", "tests.notifyfixtures"]

_databases = itertools.count(1)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def gt_env(redis_server: RedisServer, tmp_path: Path) -> dict[str, str]:
    """Environment for gitops-tasks processes: its own Redis database, data, secrets and cache dirs."""
    return env_with_own_database(redis_server, tmp_path)


def env_with_own_database(redis_server: RedisServer, tmp_path: Path) -> dict[str, str]:
    """What ``gt_env`` gives, for fixtures of a wider scope: a fresh Redis database of its own."""
    db = next(_databases) % 256
    import redis

    redis.Redis.from_url(redis_server.url(db)).flushdb()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITOPS_TASKS_", "FLOWER_"))}
    env.update(
        {
            "GITOPS_TASKS_REDIS_URL": redis_server.url(db),
            "GITOPS_TASKS_DATA_DIR": str(tmp_path / "data"),
            "GITOPS_TASKS_SECRETS_DIR": str(tmp_path / "secrets"),
            "GITOPS_TASKS_CACHE_DIR": str(tmp_path / "cache"),
            "GITOPS_TASKS_BACKOFF_BASE_S": "0.5",
            "GITOPS_TASKS_WAIT_RETRY_S": "0.5",
            "GITOPS_TASKS_BEAT_TICK_S": "0.1",
            "GITOPS_TASKS_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@pytest.fixture
def gt_settings(gt_env: dict[str, str]) -> Settings:
    return Settings.from_env(gt_env)


@pytest.fixture
def ctx(gt_settings: Settings) -> Iterator[Context]:
    context = Context(gt_settings)
    yield context
    context.client.close()


@pytest.fixture
def cli(gt_env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``gitops-tasks ARGS`` as a real subprocess with the test's environment."""

    def run(
        *args: str, timeout_s: float = 60, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            cli_argv(*args),
            env={**gt_env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    return run


@pytest.fixture
def procs(
    gt_env: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Proc]]:
    """Start gitops-tasks processes (``procs("worker", "-c", "2")``); all stopped at teardown.

    Their logs are printed when the test fails, so a failure explains itself.
    """
    started: list[Proc] = []
    log_dir = tmp_path / "logs"
    log_dir.mkdir()

    def start(*args: str, env: dict[str, str] | None = None, name: str | None = None) -> Proc:
        label = name or f"{args[0]}-{len(started)}"
        proc = Proc(label, cli_argv(*args), {**gt_env, **(env or {})}, log_dir)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for proc in started:
            print(f"----- {proc.name} log -----\n{proc.log()[-6000:]}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
