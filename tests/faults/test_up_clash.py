"""Two ``gitops-tasks up`` on one machine: the second is refused, the first keeps running unharmed.

Also the embedded Redis of ``up`` keeping its data across a restart (its default).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from pathlib import Path

import redis

from gitops_tasks.embedded import start_redis
from gitops_tasks.settings import Settings
from tests.procs import REPO_ROOT, cli_argv, flower_answers, free_port, wait_for

#: Seconds a refused ``up`` may take to exit (it starts nothing); one that starts is stopped then.
REFUSAL_TIMEOUT_S = 30


def up_env(data_dir: Path, flower_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITOPS_TASKS_", "FLOWER_"))}
    env.update(
        GITOPS_TASKS_DATA_DIR=str(data_dir), GITOPS_TASKS_FLOWER_PORT=str(flower_port), PYTHONUNBUFFERED="1"
    )
    return env


def stop_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGINT, timeout_s: float = 60) -> int:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        return proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait(10)


def refused_up(env: dict[str, str], log_path: Path) -> tuple[int, str]:
    """Run a second ``up``; its exit status and output. One that does not exit is stopped (and fails)."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cli_argv("up"),
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code = proc.wait(REFUSAL_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            stop_group(proc)
            raise AssertionError(
                f"the second up kept running:\n{log_path.read_text(errors='replace')[-3000:]}"
            ) from None
    return code, log_path.read_text(errors="replace")


def get_lists(env: dict[str, str], name: str) -> bool:
    listed = subprocess.run(
        cli_argv("get", "gitrepository"), cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False
    )
    return listed.returncode == 0 and name in listed.stdout


def test_a_second_up_is_refused_naming_the_first_which_keeps_its_redis(tmp_path: Path) -> None:
    # Given a running `up` with one object, Flower on its port
    flower_port = free_port()
    env = up_env(tmp_path / "state", flower_port)
    (tmp_path / "app.yaml").write_text(
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n"
        "metadata:\n  name: app\nspec:\n  interval: 1h\n"
        f"  url: {(tmp_path / 'missing.git').as_uri()}\n"
    )
    log = (tmp_path / "first.log").open("wb")
    first = subprocess.Popen(
        cli_argv("up", "-f", str(tmp_path / "app.yaml")),
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    state_file = tmp_path / "state" / "embedded-redis.url"
    try:
        wait_for(
            lambda: flower_answers(flower_port), timeout_s=60, interval_s=0.3, what="the first up's Flower"
        )
        redis_url = state_file.read_text().strip()

        # When a second `up` starts with the same data dir
        code, output = refused_up(env, tmp_path / "second.log")
        # Then it refuses, naming the running stack's pid, Redis and Flower
        assert code == 1, output
        assert "gitops-tasks up is already running" in output
        assert f"pid {first.pid}" in output and redis_url in output
        assert f"http://127.0.0.1:{flower_port}" in output

        # When another starts with its own data dir but the same Flower port
        code, output = refused_up(up_env(tmp_path / "other", flower_port), tmp_path / "third.log")
        # Then it refuses too, naming the port
        assert code == 1, output
        assert f"Flower cannot listen on 127.0.0.1:{flower_port}: the port is in use" in output

        # And the first stack is unharmed: its Redis is still the one recorded, and the CLI finds its object
        assert state_file.read_text().strip() == redis_url
        assert get_lists(env, "app")
        assert flower_answers(flower_port)

        # When its embedded Redis is killed
        found = re.search(r"up: embedded Redis at \S+ \(pid (\d+)", (tmp_path / "first.log").read_text())
        assert found is not None
        os.kill(int(found.group(1)), signal.SIGKILL)
        # Then `up` restarts it on its port with its data, and the object is listed again
        wait_for(
            lambda: (
                "up: embedded Redis exited" in (tmp_path / "first.log").read_text() and get_lists(env, "app")
            ),
            timeout_s=60,
            interval_s=0.5,
            what="the embedded Redis to be back with its data",
        )
        assert state_file.read_text().strip() == redis_url
    finally:
        code = stop_group(first)
        log.close()
    # And stopping the first removes the files it wrote
    assert code == 0, (tmp_path / "first.log").read_text(errors="replace")[-3000:]
    assert not state_file.exists()
    assert (tmp_path / "state" / "up.lock").read_text() == ""


def stop_redis(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(10)
    if proc.stderr is not None:
        proc.stderr.close()


def test_the_embedded_redis_keeps_its_data_across_a_restart_by_default(tmp_path: Path) -> None:
    # Given the embedded Redis started as `up` starts it, with the default settings
    persist = Settings.from_env({"GITOPS_TASKS_DATA_DIR": str(tmp_path)}).redis_persist
    proc, url = start_redis(tmp_path / "redis", persist=persist)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    try:
        client = redis.Redis.from_url(url)
        client.set("kept", "yes")
        client.close()
    finally:
        # When it stops and starts again
        stop_redis(proc)
    proc, url = start_redis(tmp_path / "redis", port=port, persist=persist)
    try:
        # Then the data is still there
        client = redis.Redis.from_url(url)
        assert client.get("kept") == b"yes"
        client.close()
    finally:
        stop_redis(proc)
