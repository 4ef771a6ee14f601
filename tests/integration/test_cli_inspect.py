"""``gitops-tasks stats``, ``tree`` and ``trace`` as subprocesses, against a real Redis, and a real
sync into the Kubernetes API emulator (or GITOPS_TASKS_TEST_KUBECONFIG's cluster)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gitops_tasks.objects.model import ObjectRef
from gitops_tasks.tasks.context import Context
from tests.gitservers import RemoteRepo
from tests.integration.test_sync_cli import APP, declare, reconcile
from tests.integration.test_sync_world import configmap, dump, namespace
from tests.kubeapi.fixtures import KubeTarget, kube_target, unique_name

Cli = Callable[..., subprocess.CompletedProcess[str]]

OBJECTS = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: ready}
spec: {url: "https://example.invalid/a.git", interval: 1h, ref: {branch: main}}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: broken}
spec: {url: "https://example.invalid/b.git", interval: 1h, ref: {branch: main}}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: paused, namespace: other}
spec: {url: "https://example.invalid/c.git", interval: 1h, ref: {branch: main}, suspend: true}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: app}
spec: {image: registry.invalid/app, interval: 1h}
"""

STATS = """\
KIND                   OBJECTS  READY  FAILING  SUSPENDED  STORAGE
GitRepository          3        1      1        1          1.2 KiB
ImageRepository        1        0      0        0          2.3 KiB
ImagePolicy            0        0      0        0          0 B
ImageUpdateAutomation  0        0      0        0          0 B
Kustomization          0        0      0        0          0 B
Provider               0        0      0        0          0 B
Alert                  0        0      0        0          0 B
Receiver               0        0      0        0          0 B
"""


def _condition(status: str, reason: str, message: str) -> dict[str, object]:
    return {
        "conditions": [
            {
                "type": "Ready",
                "status": status,
                "reason": reason,
                "message": message,
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
        ]
    }


def test_stats_counts_each_kind_and_the_bytes_it_stores(cli: Cli, ctx: Context, tmp_path: Path) -> None:
    (tmp_path / "objects.yaml").write_text(OBJECTS)
    assert cli("apply", "-f", str(tmp_path / "objects.yaml")).returncode == 0
    ctx.status.put(ObjectRef("GitRepository", "default", "ready"), _condition("True", "Succeeded", "ok"))
    ctx.status.put(ObjectRef("GitRepository", "default", "broken"), _condition("False", "GitError", "no"))
    ctx.client.set(ctx.keys.tags("ImageRepository/default/app"), "x" * 2048)
    git = sum(
        ctx.client.hstrlen(h, f"GitRepository/{ns}/{n}")
        for h in (ctx.keys.catalog, ctx.keys.status)
        for ns, n in (("default", "ready"), ("default", "broken"), ("other", "paused"))
    )
    image = ctx.client.hstrlen(ctx.keys.catalog, "ImageRepository/default/app") + 2048
    out = cli("stats", env={"COLUMNS": "100"})
    assert out.returncode == 0, out.stderr
    assert out.stdout == STATS
    # what the golden output rounds: the catalog and status values, and the tag list
    assert f"{git / 1024:.1f} KiB" == "1.2 KiB" and f"{image / 1024:.1f} KiB" == "2.3 KiB"
    # One namespace only
    other = cli("stats", "-n", "other", env={"COLUMNS": "100"}).stdout.splitlines()
    assert other[1].split()[:5] == ["GitRepository", "1", "0", "0", "1"]


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeTarget]:
    with kube_target(tmp_path_factory.mktemp("kube")) as target:
        yield target


@pytest.fixture
def gt_env(gt_env: dict[str, str], kube: KubeTarget) -> dict[str, str]:
    """The shared environment, pointed at this module's cluster (so ``ctx`` syncs there too)."""
    return {**gt_env, "GITOPS_TASKS_KUBECONFIG": str(kube.kubeconfig)}


@pytest.fixture
def synced(ctx: Context, kube: KubeTarget, file_remote: RemoteRepo) -> Iterator[str]:
    """A Kustomization ``app`` that applied a Namespace and a ConfigMap in it; yields the namespace."""
    ns = unique_name("inspect")
    file_remote.commit(
        {"deploy/ns.yaml": dump(namespace(ns)), "deploy/cm.yaml": dump(configmap("settings", ns, {}))}
    )
    declare(ctx, file_remote, path="./deploy")
    assert reconcile(ctx, ObjectRef("GitRepository", "default", "repo"))["result"] == "success"
    result = reconcile(ctx, APP)
    assert result["result"] == "success", result["message"]
    yield ns
    from gitops_tasks.sync.cluster import Cluster

    cluster = Cluster.from_kubeconfig(kube.kubeconfig)
    cluster.delete("v1", "Namespace", ns)
    cluster.delete("v1", "ConfigMap", "unmanaged", "default")
    cluster.close()


def test_tree_prints_what_the_kustomization_applied(cli: Cli, synced: str) -> None:
    out = cli("tree", "kustomization", "app")
    assert out.returncode == 0, out.stderr
    # in the inventory's order (sorted by id: the cluster-scoped Namespace's id starts with "_")
    assert (
        out.stdout == f"Kustomization/default/app\n├── Namespace/{synced}\n└── ConfigMap/{synced}/settings\n"
    )
    data = json.loads(cli("tree", "ks", "app", "-o", "json").stdout)
    assert data["resource"] == "Kustomization/default/app"
    assert sorted(r["resource"] for r in data["resources"]) == [
        f"ConfigMap/{synced}/settings",
        f"Namespace/{synced}",
    ]
    missing = cli("tree", "kustomization", "nope")
    assert missing.returncode == 1 and "Kustomization default/nope not found" in missing.stderr


def test_tree_nests_a_kustomization_of_the_catalog_found_in_the_inventory(cli: Cli, ctx: Context) -> None:
    # Given a parent whose inventory holds a catalog Kustomization (which a future sync of engine
    # kinds records), and that child's own inventory
    from beat_schedule import entry_for
    from gitops_tasks.objects import load_text

    text = "".join(
        "---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n"
        f"metadata: {{name: {name}}}\n"
        "spec: {interval: 1h, prune: true, sourceRef: {kind: GitRepository, name: repo}}\n"
        for name in ("parent", "child")
    )
    ctx.catalog.apply(load_text(text, filename="t.yaml"), entry_for=entry_for)
    entries = {
        "parent": ["default_child_kustomize.toolkit.fluxcd.io_Kustomization", "_apps__Namespace"],
        "child": ["apps_web_apps_Deployment", "default_parent_kustomize.toolkit.fluxcd.io_Kustomization"],
    }
    for name, ids in entries.items():
        ctx.status.put(
            ObjectRef("Kustomization", "default", name),
            {"inventory": {"entries": [{"id": i, "v": "v1"} for i in ids]}},
        )
    out = cli("tree", "kustomization", "parent")
    assert out.stdout == (
        "Kustomization/default/parent\n"
        "├── Kustomization/default/child\n"
        "│   ├── Deployment/apps/web\n"
        "│   └── Kustomization/default/parent\n"  # a loop stops there
        "└── Namespace/apps\n"
    )


def test_trace_names_the_kustomization_source_and_revision(
    cli: Cli, ctx: Context, synced: str, file_remote: RemoteRepo, kube: KubeTarget
) -> None:
    head = ctx.status.get(ObjectRef("GitRepository", "default", "repo"))["artifact"]["revision"]
    out = cli("trace", "ConfigMap/settings", "-n", synced)
    assert out.returncode == 0, out.stderr
    fields = [line.split(":", 1) for line in out.stdout.splitlines() if ":" in line]
    values = [(k, v.strip()) for k, v in fields]
    assert ("Object", f"ConfigMap/{synced}/settings") in values
    assert ("Status", "managed by gitops-tasks") in values
    assert ("Kustomization", "app") in values and ("Path", "./deploy") in values
    assert ("GitRepository", "repo") in values and ("URL", file_remote.url) in values
    assert values.count(("Revision", head)) == 2  # the Kustomization applied what the source fetched
    # The same with --kind and --api-version; a cluster-scoped object without -n
    same = cli("trace", "settings", "--kind", "ConfigMap", "--api-version", "v1", "-n", synced)
    assert same.stdout == out.stdout
    assert f"Object:        Namespace/{synced}" in cli("trace", f"Namespace/{synced}").stdout
    # An object nobody applied, and one that does not exist
    from gitops_tasks.sync.cluster import Cluster

    cluster = Cluster.from_kubeconfig(kube.kubeconfig)
    cluster.apply(configmap("unmanaged", "default", {}))
    cluster.close()
    unmanaged = cli("trace", "ConfigMap/unmanaged")
    assert unmanaged.returncode == 1 and "not managed by gitops-tasks" in unmanaged.stderr
    absent = cli("trace", "ConfigMap/absent", "-n", synced)
    assert absent.returncode == 1 and f"ConfigMap/{synced}/absent not found in the cluster" in absent.stderr


def test_trace_without_a_cluster_says_it_needs_one(cli: Cli) -> None:
    out = cli("trace", "ConfigMap/x", env={"GITOPS_TASKS_KUBECONFIG": "/nonexistent/kubeconfig"})
    assert out.returncode == 1 and "trace needs the cluster" in out.stderr


def test_trace_masks_the_source_url_and_says_when_the_inventory_lacks_the_object(
    cli: Cli, ctx: Context, kube: KubeTarget, tmp_path: Path
) -> None:
    # Given a source whose URL carries a token, and an object labelled by its Kustomization (by
    # hand: that Kustomization never applied it)
    (tmp_path / "o.yaml").write_text(
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {name: private}\n"
        'spec: {url: "https://bot:t0ken@git.invalid/r.git", interval: 1h, ref: {tag: v1}}\n---\n'
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: owner}\n"
        "spec: {interval: 1h, prune: true, sourceRef: {kind: GitRepository, name: private}}\n"
    )
    assert cli("apply", "-f", str(tmp_path / "o.yaml")).returncode == 0
    from gitops_tasks.sync.cluster import Cluster
    from gitops_tasks.sync.plan import OWNER_NAME_LABEL, OWNER_NAMESPACE_LABEL

    name = unique_name("labelled")
    obj = configmap(name, "default", {})
    obj["metadata"]["labels"] = {OWNER_NAME_LABEL: "owner", OWNER_NAMESPACE_LABEL: "default"}
    cluster = Cluster.from_kubeconfig(kube.kubeconfig)
    cluster.apply(obj)
    try:
        out = cli("trace", f"configmap/{name}")
    finally:
        cluster.delete("v1", "ConfigMap", name, "default")
        cluster.close()
    assert out.returncode == 0, out.stderr
    assert "labelled, but not in the Kustomization's inventory" in out.stdout
    assert "URL:           https://bot:***@git.invalid/r.git" in out.stdout and "t0ken" not in out.stdout
    assert "Tag:           v1" in out.stdout
