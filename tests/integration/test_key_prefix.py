"""GITOPS_TASKS_KEY_PREFIX isolates installations sharing one Redis database: catalog, broker queues,
bindings, unacknowledged messages, events, `celery inspect` and results all live under the prefix."""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path
from typing import Any

import redis

from gitops_tasks.app import make_app
from gitops_tasks.settings import Settings
from tests.gitservers import FileRemotes
from tests.procs import free_port, wait_for

PREFIXES = ("alpha:", "beta:")
SENT_TO_ALPHA = 5


def _queue_lengths(port: int) -> dict[str, int]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/queues/length", timeout=5) as resp:
            return {q["name"]: q["messages"] for q in json.loads(resp.read())["active_queues"]}
    except OSError:
        return {}


def test_two_installations_on_one_redis_database_never_see_each_others_tasks(
    cli, procs, gt_env: dict[str, str], tmp_path: Path
) -> None:
    # Given two installations with different prefixes on one Redis database, each with podinfo
    envs = {p: {**gt_env, "GITOPS_TASKS_KEY_PREFIX": p} for p in PREFIXES}
    remotes = FileRemotes(tmp_path / "remotes").start()
    for prefix, env in envs.items():
        repo = remotes.new_repo(prefix.rstrip(":"), {"a.yaml": "a: 1\n"})
        (tmp_path / f"{prefix}.yaml").write_text(
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n"
            f"metadata:\n  name: podinfo\n  namespace: default\nspec:\n  interval: 1h\n  url: {repo.url}\n"
        )
        assert cli("apply", "-f", str(tmp_path / f"{prefix}.yaml"), env=env).returncode == 0
    apps = {p: make_app(Settings.from_env(env), set_as_current=False) for p, env in envs.items()}
    client = redis.Redis.from_url(gt_env["GITOPS_TASKS_REDIS_URL"])
    kwargs = {"kind": "GitRepository", "namespace": "default", "name": "podinfo"}

    # When tasks are sent to alpha while only beta has a worker, then one to beta
    beta = procs("worker", "-c", "2", env=envs["beta:"], name="worker-beta")
    for _ in range(SENT_TO_ALPHA):
        apps["alpha:"].send_task("gitops.reconcile", queue="priority", kwargs=kwargs)
    beta_result = apps["beta:"].send_task("gitops.reconcile", queue="priority", kwargs=kwargs)

    # Then beta runs its own task and leaves alpha's queued, which alpha's Flower shows
    assert beta_result.get(timeout=60)["result"] == "success"
    assert client.llen("alpha:priority") == SENT_TO_ALPHA
    port = free_port()
    procs("flower", "--port", str(port), env={**envs["alpha:"], "FLOWER_UNAUTHENTICATED_API": "true"})
    assert wait_for(lambda: _queue_lengths(port).get("priority") == SENT_TO_ALPHA, what="alpha's Flower")

    # When alpha's worker starts, it drains alpha's queue, and `celery inspect` sees one worker each
    alpha = procs("worker", "-c", "2", env=envs["alpha:"], name="worker-alpha")
    wait_for(lambda: "GitRepository default/podinfo: success" in alpha.log(), what="alpha's worker")
    wait_for(lambda: client.llen("alpha:priority") == 0, what="alpha's queue to drain")
    for prefix, app in apps.items():
        replies: dict[str, Any] = wait_for(
            lambda app=app: app.control.inspect(timeout=2).ping(), what=f"{prefix} ping"
        )
        worker = alpha if prefix == "alpha:" else beta
        assert list(replies) == [f"gitops-{worker.pid}@{socket.gethostname()}"], replies

    # And every key in the database carries one of the prefixes (queues, bindings, results...)
    keys = sorted(k.decode() for k in client.scan_iter(count=1000))
    assert any(k.startswith("alpha:_kombu.binding.") for k in keys), keys
    assert any(k.startswith("beta:celery-task-meta-") for k in keys), keys
    assert [k for k in keys if not k.startswith(PREFIXES)] == []
    assert beta.log().count("GitRepository default/podinfo: success") == 1
    for app in apps.values():
        app.close()
