"""`gitops-tasks up` as a newcomer runs it: embedded Redis, worker, beat, Flower, Ctrl-C stops all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.procs import REPO_ROOT, cli_argv, free_port, wait_for


def _children_of(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            out.append(int(entry.name))
    return out


def test_up_runs_the_examples_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    # Given a fresh data dir, no Redis configured, and the offline example repositories
    subprocess.run(
        [sys.executable, "scripts/prepare_examples.py"], cwd=REPO_ROOT, check=True, capture_output=True
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITOPS_TASKS_", "FLOWER_"))}
    flower_port, receiver_port = free_port(), free_port()
    env.update(
        GITOPS_TASKS_DATA_DIR=str(tmp_path / "state"),
        GITOPS_TASKS_FLOWER_PORT=str(flower_port),
        PYTHONUNBUFFERED="1",
    )
    log = (tmp_path / "up.log").open("wb")
    up = subprocess.Popen(
        cli_argv("up", "-f", "examples/git", "--receiver-port", str(receiver_port)),
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    started = time.monotonic()
    try:
        # Then within 30 s every example repository has a recorded revision
        def ready() -> list[dict] | None:
            result = subprocess.run(
                cli_argv("get", "gitrepository", "-A", "-o", "json"),
                env=env,
                capture_output=True,
                text=True,
                cwd=REPO_ROOT,
                check=False,
            )
            if result.returncode != 0 or not result.stdout.strip():
                return None
            items = json.loads(result.stdout)["items"]
            return items if len(items) == 4 and all(i["ready"] == "True" for i in items) else None

        items = wait_for(
            ready, timeout_s=30, interval_s=0.5, what="the four example repositories to be Ready"
        )
        assert all("@sha1:" in item["revision"] or item["revision"].startswith("sha1:") for item in items)
        assert time.monotonic() - started < 30

        # And Flower shows the tasks
        def flower_lists_polls() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{flower_port}/api/tasks", timeout=2) as resp:
                    return any(t.get("name") == "gitops.git.poll" for t in json.loads(resp.read()).values())
            except OSError:
                return False

        wait_for(flower_lists_polls, timeout_s=30, what="Flower to list gitops.git.poll tasks")
        state_file = tmp_path / "state" / "embedded-redis.url"
        assert state_file.read_text().startswith("redis://127.0.0.1:")

        # And the webhook receiver answers its probes
        def receiver_ready() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{receiver_port}/readyz", timeout=2) as resp:
                    return resp.status == 200
            except OSError:
                return False

        wait_for(receiver_ready, timeout_s=30, what="the receiver's /readyz")
        children = _children_of(up.pid)
        assert len(children) == 5, "embedded Redis, worker, beat, Flower and the receiver"
    finally:
        # When Ctrl-C arrives
        up.send_signal(signal.SIGINT)
        code = up.wait(60)
        log.close()
    # Then everything stopped and the state file is gone
    output = (tmp_path / "up.log").read_text(errors="replace")
    assert code == 0, output[-3000:]
    assert "up: stopped" in output
    for pid in children:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    assert not state_file.exists()
