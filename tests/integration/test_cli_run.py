"""``reconcile --with-source``, ``suspend|resume --all`` and the ``--wait`` progress, as real
processes against a real Redis, a worker, a git remote and the Kubernetes API emulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gitops_tasks.objects.model import ObjectRef
from gitops_tasks.tasks.context import Context
from tests.gitservers import FileRemotes
from tests.integration.test_sync_world import configmap, dump, namespace
from tests.kubeapi.fixtures import KubeTarget, kube_target, unique_name

SITE = ObjectRef("Kustomization", "default", "site")


def objects(url: str) -> str:
    return (
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n"
        "metadata: {name: app, namespace: default}\n"
        f"spec: {{interval: 1h, url: '{url}'}}\n"
        "---\n"
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n"
        "metadata: {name: site, namespace: default}\n"
        "spec: {interval: 1h, path: ./site, prune: true, sourceRef: {kind: GitRepository, name: app}}\n"
    )


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[KubeTarget]:
    with kube_target(tmp_path / "kube") as target:
        yield target


@pytest.fixture
def site(cli, procs, kube: KubeTarget, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A Kustomization applied at its GitRepository's first revision (both polled hourly), a
    worker and no beat: nothing runs unless asked. Returns the git repository."""
    ns = unique_name("withsource")
    remote = FileRemotes(tmp_path / "remotes").start()
    repo = remote.new_repo(
        "app", {"site/ns.yaml": dump(namespace(ns)), "site/cm.yaml": dump(configmap("app", ns, {"v": "1"}))}
    )
    (tmp_path / "objects.yaml").write_text(objects(repo.url))
    assert cli("apply", "-f", str(tmp_path / "objects.yaml")).returncode == 0
    procs("worker", "-c", "2", env={"GITOPS_TASKS_KUBECONFIG": str(kube.kubeconfig)})
    first = cli("reconcile", "kustomization", "site", "--with-source", "--wait", "--timeout", "60s")
    assert first.returncode == 0, first.stdout + first.stderr
    return repo, ns


def applied(ctx: Context) -> str:
    return str(ctx.status.get(SITE).get("lastAppliedRevision", ""))


def test_reconcile_with_source_fetches_the_new_commit_first(cli, ctx: Context, site, tmp_path: Path) -> None:
    # Given the source has a new commit it has not polled yet (its interval is an hour)
    repo, ns = site
    first = applied(ctx)
    assert first == f"main@sha1:{repo.head}"
    repo.commit({"site/cm.yaml": dump(configmap("app", ns, {"v": "2"}))})
    new = f"main@sha1:{repo.head}"

    # When the Kustomization alone is reconciled, it applies the revision its source already has
    alone = cli("reconcile", "kustomization", "site", "--wait", "--timeout", "60s")
    assert alone.returncode == 0, alone.stdout + alone.stderr
    assert applied(ctx) == first
    assert f"✔ applied revision {first}" in alone.stdout.splitlines()

    # When it is reconciled --with-source, the GitRepository is fetched first, then it applies the new one
    both = cli("reconcile", "kustomization", "site", "--with-source", "--wait", "--timeout", "60s")
    assert both.returncode == 0, both.stdout + both.stderr
    assert applied(ctx) == new
    lines = both.stdout.splitlines()
    assert lines[0].startswith("► requested reconcile of GitRepository default/app (")
    assert f"✔ fetched revision {new}" in lines
    assert lines[-1] == f"✔ applied revision {new}"
    assert lines.index(f"✔ fetched revision {new}") < lines.index(f"✔ applied revision {new}")
