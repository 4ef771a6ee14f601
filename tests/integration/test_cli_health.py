"""``gitops-tasks version`` and ``check`` as subprocesses, against a real Redis, real workers and
beat, and the Kubernetes API emulator."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from gitops_tasks import __version__
from tests.kubeapi.fixtures import KubeTarget, kube_target
from tests.procs import free_port, wait_for

Cli = Callable[..., subprocess.CompletedProcess[str]]

REPOSITORY = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: repo}
spec: {url: "https://example.invalid/repo.git", interval: 1h, ref: {branch: main}}
"""


@pytest.fixture
def no_cluster(tmp_path: Path) -> dict[str, str]:
    """No kubeconfig anywhere (an empty HOME, no $KUBECONFIG, not in a pod)."""
    return {"HOME": str(tmp_path / "home"), "KUBECONFIG": "", "KUBERNETES_SERVICE_HOST": ""}


def _lines(out: str) -> dict[str, str]:
    """``check``'s lines by their subject (``queue git``, ``beat leader``…) → the mark."""
    marks = {}
    for line in out.splitlines():
        if line[:2] in ("✔ ", "✗ ", "- "):
            subject = re.split(r" not reachable| reachable|:", line[2:])[0]
            marks[subject] = line[0]
    return marks


def test_version_prints_the_client_and_says_when_no_worker_answered(cli: Cli) -> None:
    out = cli("version")
    assert out.returncode == 0, out.stderr
    assert f"gitops-tasks: {__version__}" in out.stdout.splitlines()
    for name in ("python", "celery", "kombu", "redis-py"):
        assert any(line.startswith(f"{name}: ") for line in out.stdout.splitlines()), name
    assert "workers: none answered within 1s" in out.stdout
    client_only = cli("version", "--client")
    assert "workers" not in client_only.stdout and client_only.stdout.startswith("gitops-tasks: ")


def test_version_lists_each_worker_that_answers(cli: Cli, procs: Callable[..., object]) -> None:
    procs("worker", "-c", "1")
    wait_for(lambda: "worker " in cli("version").stdout, timeout_s=60, what="a worker to answer")
    data = json.loads(cli("version", "-o", "json").stdout)
    assert data["client"]["gitops-tasks"] == __version__
    assert len(data["workers"]) == 1
    assert data["workers"][0]["versions"] == data["client"]
    assert yaml.safe_load(cli("version", "-o", "yaml").stdout)["workers"] == data["workers"]


def test_version_with_the_broker_down_says_so(cli: Cli) -> None:
    down = f"redis://user:s3cret@127.0.0.1:{free_port()}/0"
    out = cli("version", env={"GITOPS_TASKS_REDIS_URL": down})
    assert out.returncode == 0, out.stderr
    assert "workers: none asked (broker" in out.stdout and "not reachable" in out.stdout
    assert "s3cret" not in out.stdout + out.stderr


def test_check_without_workers_or_beat_fails_and_says_what_is_missing(
    cli: Cli, tmp_path: Path, no_cluster: dict[str, str]
) -> None:
    (tmp_path / "repo.yaml").write_text(REPOSITORY)
    assert cli("apply", "-f", str(tmp_path / "repo.yaml")).returncode == 0
    out = cli("check", env=no_cluster)
    assert out.returncode == 1, out.stdout + out.stderr
    marks = _lines(out.stdout)
    assert marks["Redis"] == "✔" and marks["broker"] == "✔"
    # A GitRepository needs the git queue, manual reconciles the priority queue; no object uses registry
    assert marks["queue git"] == "✗" and marks["queue priority"] == "✗" and marks["queue registry"] == "-"
    assert marks["beat leader"] == "✗"
    assert "cluster: not configured" in out.stdout and marks["cluster"] == "-"
    assert "2 required check(s) failed" not in out.stdout  # three: git, priority, beat
    assert "3 required check(s) failed" in out.stdout


def test_check_with_a_worker_and_beat_passes(
    cli: Cli, procs: Callable[..., object], no_cluster: dict[str, str]
) -> None:
    procs("worker", "-c", "1")
    procs("beat")

    def passes() -> bool:
        return cli("check", env=no_cluster).returncode == 0

    wait_for(passes, timeout_s=90, interval_s=0.5, what="check to pass")
    out = cli("check", env=no_cluster)
    marks = _lines(out.stdout)
    assert all(marks[f"queue {q}"] == "✔" for q in ("git", "registry", "automation", "sync", "priority"))
    assert marks["beat leader"] == "✔" and "lease" in out.stdout
    assert marks["versions"] == "✔" and "all checks passed" in out.stdout


def test_check_with_redis_down_fails_with_the_masked_url(cli: Cli, no_cluster: dict[str, str]) -> None:
    down = f"redis://user:s3cret@127.0.0.1:{free_port()}/0"
    out = cli("check", env={**no_cluster, "GITOPS_TASKS_REDIS_URL": down}, timeout_s=30)
    assert out.returncode == 1
    assert out.stdout.startswith("✗ Redis not reachable at redis://user:***@127.0.0.1")
    assert "s3cret" not in out.stdout + out.stderr
    assert "Traceback" not in out.stderr


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeTarget]:
    with kube_target(tmp_path_factory.mktemp("kube")) as target:
        yield target


def test_check_reports_a_configured_cluster_reachable_or_not(
    cli: Cli, kube: KubeTarget, tmp_path: Path, no_cluster: dict[str, str]
) -> None:
    out = cli("check", env={**no_cluster, "GITOPS_TASKS_KUBECONFIG": str(kube.kubeconfig)})
    assert _lines(out.stdout)["cluster"] == "✔", out.stdout
    assert "Kubernetes v" in out.stdout
    # A kubeconfig pointing at a port nobody listens on: a failure with the cause
    dead = tmp_path / "dead-kubeconfig"
    config = yaml.safe_load(kube.kubeconfig.read_text())
    server = config["clusters"][0]["cluster"]["server"]
    config["clusters"][0]["cluster"]["server"] = f"{server.rsplit(':', 1)[0]}:{free_port()}"
    dead.write_text(yaml.safe_dump(config))
    down = cli("check", env={**no_cluster, "GITOPS_TASKS_KUBECONFIG": str(dead)})
    assert down.returncode == 1
    assert _lines(down.stdout)["cluster"] == "✗" and "cluster not reachable at" in down.stdout
