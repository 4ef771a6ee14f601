"""A suspended object never runs, whatever asks for it (as Flux): real Redis, worker, beat, git
remote and the Kubernetes API emulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gitops_tasks.objects.model import ObjectRef
from gitops_tasks.sync.cluster import Cluster
from gitops_tasks.tasks.context import Context
from tests.gitservers import FileRemotes
from tests.integration.test_sync_world import configmap, dump, namespace
from tests.kubeapi.fixtures import KubeTarget, kube_target, unique_name
from tests.procs import wait_for

SITE = ObjectRef("Kustomization", "default", "site")


def objects(url: str) -> str:
    return (
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n"
        "metadata: {name: app, namespace: default}\n"
        f"spec: {{interval: 1h, url: '{url}'}}\n"
        "---\n"
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n"
        "metadata: {name: site, namespace: default}\n"
        "spec: {interval: 1h, path: ./, prune: true, sourceRef: {kind: GitRepository, name: app}}\n"
    )


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[KubeTarget]:
    with kube_target(tmp_path / "kube") as target:
        yield target


def applied(ctx: Context) -> str:
    return str(ctx.status.get(SITE).get("lastAppliedRevision", ""))


def site_runs(worker: Any) -> list[str]:
    """What the worker logged for each of the Kustomization's tasks (a run's outcome or a skip)."""
    return [line for line in worker.log().splitlines() if f"{SITE}: " in line]


def test_a_suspended_kustomization_is_not_run_by_its_sources_new_revision(
    cli, ctx: Context, procs, kube: KubeTarget, tmp_path: Path
) -> None:
    # Given a Kustomization applied at its GitRepository's first revision, a worker and beat
    ns = unique_name("suspended")
    remote = FileRemotes(tmp_path / "remotes").start()
    repo = remote.new_repo(
        "app", {"site/ns.yaml": dump(namespace(ns)), "site/cm.yaml": dump(configmap("app", ns, {"v": "1"}))}
    )
    (tmp_path / "objects.yaml").write_text(objects(repo.url).replace("path: ./", "path: ./site"))
    assert cli("apply", "-f", str(tmp_path / "objects.yaml")).returncode == 0
    env = {"GITOPS_TASKS_KUBECONFIG": str(kube.kubeconfig)}
    worker = procs("worker", "-c", "2", env=env)
    procs("beat", env=env)
    cluster = Cluster.from_kubeconfig(kube.kubeconfig)

    def data() -> dict[str, Any] | None:
        live = cluster.get("v1", "ConfigMap", "app", ns)
        return live["data"] if live else None

    first = f"main@sha1:{repo.head}"
    wait_for(lambda: applied(ctx) == first, timeout_s=60, what="the first revision applied")
    assert data() == {"v": "1"}
    runs_before = len(site_runs(worker))

    # When it is suspended and its GitRepository finds a new revision (a dependency request)
    assert cli("suspend", "kustomization", "site").returncode == 0
    repo.commit({"site/cm.yaml": dump(configmap("app", ns, {"v": "2"}))})
    polled = cli("reconcile", "gitrepository", "app", "--wait", "--timeout", "30s")
    assert polled.returncode == 0 and repo.head in polled.stdout, polled.stdout + polled.stderr
    wait_for(lambda: len(site_runs(worker)) > runs_before, timeout_s=30, what="the dependency's request")

    # Then that request did not run it: the cluster and the status keep the previous revision
    assert f"{SITE}: suspended" in site_runs(worker)[-1], site_runs(worker)[-1]
    assert data() == {"v": "1"}
    assert applied(ctx) == first

    # and `reconcile` refuses it, naming the way out
    refused = cli("reconcile", "kustomization", "site")
    assert refused.returncode == 1
    assert "Kustomization default/site is suspended" in refused.stderr and "resume" in refused.stderr

    # When it is resumed, it runs at once (its interval is an hour) and applies the new revision
    assert cli("resume", "kustomization", "site").returncode == 0
    wait_for(lambda: applied(ctx) == f"main@sha1:{repo.head}", timeout_s=30, what="a run after resume")
    assert data() == {"v": "2"}
