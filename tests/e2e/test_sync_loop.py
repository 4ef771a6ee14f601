"""The whole loop with real processes: a commit to Git reaches the cluster through poll → sync, and a
file removed from Git is pruned. Runs once Kustomization has a task in ``tasknames.TASK_BY_KIND``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gitops_tasks import tasknames
from gitops_tasks.sync.cluster import Cluster
from tests.gitservers import RemoteRepo
from tests.integration.test_sync_world import configmap, dump, namespace
from tests.kubeapi.fixtures import KubeTarget, kube_target, unique_name
from tests.procs import Proc, wait_for

pytestmark = pytest.mark.skipif(
    "Kustomization" not in tasknames.TASK_BY_KIND, reason="the sync task is not wired into tasknames yet"
)


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[KubeTarget]:
    with kube_target(tmp_path / "kube") as target:
        yield target


def status(ctx: Any, kind: str, name: str) -> dict[str, Any]:
    raw = ctx.client.hget(ctx.keys.status, f"{kind}/default/{name}")
    return json.loads(raw) if raw else {}


def start_worker_and_beat(procs: Any, kube: KubeTarget) -> tuple[Proc, Cluster]:
    """A worker (2 threads) and beat syncing to ``kube``'s cluster, and a client of that cluster."""
    env = {"GITOPS_TASKS_KUBECONFIG": str(kube.kubeconfig)}
    worker = procs("worker", "-c", "2", env=env)
    procs("beat", env=env)
    return worker, Cluster.from_kubeconfig(kube.kubeconfig)


def configmap_data(cluster: Cluster, name: str, namespace: str) -> dict[str, Any] | None:
    live = cluster.get("v1", "ConfigMap", name, namespace)
    return live["data"] if live else None


def test_a_commit_reaches_the_cluster_through_poll_and_sync(
    cli, ctx, procs, kube: KubeTarget, file_remote: RemoteRepo, tmp_path: Path
) -> None:
    # Given a repository polled every second and a Kustomization with a long interval
    ns = unique_name("e2e-sync")
    file_remote.commit(
        {"deploy/ns.yaml": dump(namespace(ns)), "deploy/cm.yaml": dump(configmap("app", ns, {"v": "1"}))}
    )
    objects = tmp_path / "objects.yaml"
    objects.write_text(
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {name: repo}\n"
        f"spec: {{url: '{file_remote.url}', interval: 1s, ref: {{branch: main}}}}\n---\n"
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: app}\n"
        "spec: {interval: 1h, prune: true, path: ./deploy, sourceRef: {kind: GitRepository, name: repo}}\n"
    )
    assert cli("apply", "-f", str(objects)).returncode == 0
    _worker, cluster = start_worker_and_beat(procs, kube)
    try:

        def data(name: str) -> dict[str, Any] | None:
            return configmap_data(cluster, name, ns)

        # Then the first revision is applied
        wait_for(lambda: data("app") == {"v": "1"}, what="first revision applied")
        # When a commit lands, the poll finds it and queues the sync (long before its 1h interval)
        head = file_remote.commit(
            {
                "deploy/cm.yaml": dump(configmap("app", ns, {"v": "2"})),
                "deploy/extra.yaml": dump(configmap("extra", ns)),
            }
        )
        wait_for(lambda: data("app") == {"v": "2"} and data("extra"), what="second revision applied")
        wait_for(
            lambda: status(ctx, "Kustomization", "app").get("lastAppliedRevision") == f"main@sha1:{head}",
            what="status",
        )
        # And a file removed from Git is pruned
        file_remote.commit({"deploy/extra.yaml": None})
        wait_for(lambda: data("extra") is None, what="extra pruned")
        events = cli("events", "--for", "Kustomization/app").stdout
        assert "ReconciliationSucceeded" in events and f"ConfigMap/{ns}/extra deleted" in events, events
    finally:
        cluster.delete("v1", "Namespace", ns)
        cluster.close()
