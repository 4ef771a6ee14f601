"""A Flux fleet repository run by real processes: ``bootstrap git --wait`` against a ``git daemon``
repository brings flux-system → infrastructure + apps → plain objects to Ready through beat and a
worker, and a Kustomization removed from Git leaves with its objects."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gitops_tasks.sync.cluster import Cluster
from tests.fleetfixtures import fleet_files
from tests.gitservers import GitDaemon
from tests.kubeapi.fixtures import KubeTarget, kube_target, unique_name
from tests.procs import wait_for


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[KubeTarget]:
    with kube_target(tmp_path / "kube") as target:
        yield target


def ready(ctx: Any, key: str) -> bool:
    raw = ctx.client.hget(ctx.keys.status, key)
    conditions = json.loads(raw).get("conditions", []) if raw else []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def test_bootstrap_wait_brings_a_three_level_fleet_to_ready(
    cli, ctx, procs, kube: KubeTarget, git_daemon: GitDaemon
) -> None:
    ns = unique_name("fleet")
    name = unique_name("fleet-repo")
    url = git_daemon.url(name)
    repo = git_daemon.new_repo(name, fleet_files(url, ns))
    env = {"GITOPS_TASKS_KUBECONFIG": str(kube.kubeconfig)}
    procs("worker", "-c", "2", env=env)
    procs("beat", env=env)
    cluster = Cluster.from_kubeconfig(kube.kubeconfig)
    try:
        # When bootstrap runs with --wait
        boot = cli(
            "bootstrap", "git", "--url", url, "--branch", "main", "--path", "clusters/staging", "--wait",
            timeout_s=120, env=env,
        )  # fmt: skip
        # Then it reports the fetched and applied revisions, and the fleet's levels follow
        assert boot.returncode == 0, boot.stdout + boot.stderr
        assert f"✔ fetched revision main@sha1:{repo.head}" in boot.stdout, boot.stdout
        assert "✔ Kustomization flux-system/flux-system is Ready" in boot.stdout
        for key in ("Kustomization/flux-system/infrastructure", "Kustomization/flux-system/apps"):
            wait_for(lambda key=key: ready(ctx, key), what=f"{key} Ready", timeout_s=60)
        assert cluster.get("v1", "ConfigMap", "web", ns) is not None
        # When apps.yaml leaves Git, the Kustomization and its ConfigMap go
        repo.commit({"clusters/staging/apps.yaml": None})
        assert cli("reconcile", "gitrepository", "flux-system", "-n", "flux-system", env=env).returncode == 0
        wait_for(lambda: cluster.get("v1", "ConfigMap", "web", ns) is None, what="web pruned", timeout_s=60)
        wait_for(
            lambda: ctx.client.hget(ctx.keys.catalog, "Kustomization/flux-system/apps") is None,
            what="apps gone from the catalog",
        )
        assert cluster.get("v1", "Namespace", ns, None) is not None
    finally:
        cluster.delete("v1", "Namespace", ns)
        cluster.close()
