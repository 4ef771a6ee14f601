"""Task events reach Flower in batches (gitops_tasks.consumer), and none is lost when a worker stops."""

from __future__ import annotations

import json
import signal
import urllib.request
from pathlib import Path
from typing import Any

from tests.gitservers import FileRemotes
from tests.procs import flower_answers, free_port, wait_for


def git_repository(name: str, url: str) -> str:
    return (
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n"
        f"metadata:\n  name: {name}\n  namespace: default\n"
        f"spec:\n  interval: 1h\n  url: {url}\n"
    )


def flower_tasks(port: int) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/tasks?limit=1000", timeout=5) as resp:
            return json.loads(resp.read())
    except OSError:
        return {}


def test_flower_sees_every_task_succeed_including_the_last_before_the_worker_stops(
    cli, ctx, procs, tmp_path: Path
) -> None:
    # Given 30 repositories, a worker and Flower
    remotes = FileRemotes(tmp_path / "remotes").start()
    repo = remotes.new_repo("shared", {"a.yaml": "a: 1\n"})
    (tmp_path / "many.yaml").write_text("---\n".join(git_repository(f"r{i}", repo.url) for i in range(30)))
    assert cli("apply", "-f", str(tmp_path / "many.yaml")).returncode == 0
    port = free_port()
    procs("flower", "--port", str(port), env={"FLOWER_UNAUTHENTICATED_API": "true"})
    wait_for(lambda: flower_answers(port), what="Flower to answer")
    worker = procs("worker", "-c", "4")

    # When every repository is reconciled at once
    for i in range(30):
        assert cli("reconcile", "gitrepository", f"r{i}").returncode == 0

    # Then Flower shows 30 successful reconcile tasks (received, started and succeeded events)
    def succeeded() -> list[dict[str, Any]]:
        # (reconciles only: the worker's notification dispatches show in Flower too)
        return [
            t
            for t in flower_tasks(port).values()
            if t.get("state") == "SUCCESS" and t.get("name") == "gitops.reconcile"
        ]

    done = wait_for(lambda: len(succeeded()) >= 30 and succeeded(), timeout_s=60, what="30 tasks in Flower")
    assert all(t["received"] and t["started"] and t["succeeded"] and t["worker"] for t in done)

    # When one more runs and the worker is stopped right after it finished
    assert cli("reconcile", "gitrepository", "r0", "--wait", "--timeout", "30s").returncode == 0
    worker.kill(signal.SIGTERM)
    worker.stop()

    # Then its events were flushed on the way out: Flower counts 31 successes
    wait_for(lambda: len(succeeded()) == 31, timeout_s=15, what="the last task's events after the stop")
