"""Fleet repositories as Flux writes them: the engine's own objects come from Git.

``bootstrap git`` stores the flux-system objects; their sync puts the Kustomizations it finds into
the catalog (owned, labelled, in its inventory), those apply plain objects to the cluster (the API
emulator, or GITOPS_TASKS_TEST_KUBECONFIG's cluster), and what leaves Git leaves the catalog and the
cluster. Each reconcile goes through the runner with the catalog and status in Redis.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gitops_tasks.objects.model import ObjectRef
from gitops_tasks.sync.cluster import Cluster
from gitops_tasks.tasks import runner
from gitops_tasks.tasks.context import Context
from gitops_tasks.tasks.git import reconcile_git_repository
from gitops_tasks.tasks.sync import reconcile_kustomization
from tests.fleetfixtures import configmap, dump, fleet_files, gotk_sync, kustomization, namespace
from tests.gitservers import RemoteRepo
from tests.kubeapi.fixtures import KubeTarget, kube_target, unique_name

Cli = Callable[..., subprocess.CompletedProcess[str]]

REPO = ObjectRef("GitRepository", "flux-system", "flux-system")
ROOT = ObjectRef("Kustomization", "flux-system", "flux-system")
INFRA = ObjectRef("Kustomization", "flux-system", "infrastructure")
APPS = ObjectRef("Kustomization", "flux-system", "apps")
OWNER_LABELS = {"gitops-tasks.io/name": "flux-system", "gitops-tasks.io/namespace": "flux-system"}


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeTarget]:
    with kube_target(tmp_path_factory.mktemp("kube")) as target:
        yield target


@pytest.fixture
def gt_env(gt_env: dict[str, str], kube: KubeTarget) -> dict[str, str]:
    return {**gt_env, "GITOPS_TASKS_KUBECONFIG": str(kube.kubeconfig)}


@pytest.fixture
def cli(gt_env: dict[str, str]) -> Cli:
    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "gitops_tasks.cli", *args]
        return subprocess.run(
            argv, env=gt_env, input=stdin, capture_output=True, text=True, timeout=60, check=False
        )

    return run


@pytest.fixture
def cluster(kube: KubeTarget) -> Iterator[Cluster]:
    client = Cluster.from_kubeconfig(kube.kubeconfig)
    yield client
    client.close()


def reconcile(ctx: Context, ref: ObjectRef) -> dict[str, Any]:
    reconciler = reconcile_git_repository if ref.kind == "GitRepository" else reconcile_kustomization
    return runner.run(ref, reason="manual", ctx=ctx, reconciler=reconciler, enqueue_dependent=lambda _: False)


def ready(ctx: Context, ref: ObjectRef) -> dict[str, Any]:
    return next(c for c in ctx.status.get(ref)["conditions"] if c["type"] == "Ready")


@pytest.fixture
def fleet(ctx: Context, cli: Cli, file_remote: RemoteRepo, cluster: Cluster) -> Iterator[str]:
    """The fleet committed and bootstrapped, every level synced once; yields its namespace."""
    ns = unique_name("fleet")
    file_remote.commit(fleet_files(file_remote.url, ns))
    boot = cli("bootstrap", "git", "--url", file_remote.url, "--branch", "main", "--path", "clusters/staging")
    assert boot.returncode == 0, boot.stderr
    assert "GitRepository/flux-system/flux-system created" in boot.stdout
    for ref in (REPO, ROOT, INFRA, APPS):
        assert reconcile(ctx, ref)["result"] == "success", ctx.status.get(ref)
    yield ns
    cluster.delete("v1", "Namespace", ns)


def test_a_bootstrapped_fleet_manages_itself_and_three_levels(
    ctx: Context, cli: Cli, fleet: str, cluster: Cluster, file_remote: RemoteRepo
) -> None:
    # The sync put the Kustomizations of clusters/staging into the catalog as its own...
    for ref in (ROOT, INFRA, APPS):
        obj = ctx.catalog.get(ref)
        assert obj is not None and obj.metadata["labels"] == OWNER_LABELS, obj
    entries = {e["id"] for e in ctx.status.get(ROOT)["inventory"]["entries"]}
    assert entries == {
        "flux-system_flux-system_source.toolkit.fluxcd.io_GitRepository",
        "flux-system_flux-system_kustomize.toolkit.fluxcd.io_Kustomization",
        "flux-system_infrastructure_kustomize.toolkit.fluxcd.io_Kustomization",
        "flux-system_apps_kustomize.toolkit.fluxcd.io_Kustomization",
    }
    # ...never into the cluster, and those applied the plain objects
    assert cluster.get("v1", "Namespace", fleet, None) is not None
    assert cluster.get("v1", "ConfigMap", "web", fleet) is not None
    assert all(ready(ctx, ref)["status"] == "True" for ref in (ROOT, INFRA, APPS))
    assert ctx.client.zscore(ctx.keys.schedule, APPS.key) is not None
    # `get -o wide` says who owns what
    wide = cli("get", "ks", "-A", "-o", "wide")
    row = next(line for line in wide.stdout.splitlines() if line.startswith("flux-system  apps "))
    assert "Kustomization/flux-system/flux-system" in row, wide.stdout
    # Bootstrap again: the copy in Git wins, nothing changes
    before = ctx.catalog.get(ROOT)
    again = cli(
        "bootstrap", "git", "--url", file_remote.url, "--path", "clusters/staging", "--interval", "5m"
    )
    assert again.returncode == 0, again.stderr
    assert "managed from Git by Kustomization flux-system/flux-system; left as it is" in again.stdout
    assert ctx.catalog.get(ROOT) == before
    assert ctx.catalog.get(REPO).spec["interval"] == "1m"


def test_dependson_between_kustomizations_from_git(
    ctx: Context, file_remote: RemoteRepo, cluster: Cluster
) -> None:
    ns = unique_name("fleet")
    file_remote.commit(fleet_files(file_remote.url, ns))
    bootstrap_in_process(ctx, file_remote.url)
    for ref in (REPO, ROOT):
        reconcile(ctx, ref)
    try:
        # apps waits for infrastructure, which has not run yet
        assert reconcile(ctx, APPS)["result"] == "waiting"
        assert ready(ctx, APPS)["reason"] == "DependencyNotReady"
        assert cluster.get("v1", "ConfigMap", "web", ns) is None
        reconcile(ctx, INFRA)
        assert reconcile(ctx, APPS)["result"] == "success"
    finally:
        cluster.delete("v1", "Namespace", ns)


def bootstrap_in_process(ctx: Context, url: str) -> None:
    from beat_schedule import entry_for
    from gitops_tasks.objects import load_text

    ctx.catalog.apply(load_text(gotk_sync(url), filename="gotk-sync.yaml"), entry_for=entry_for)


def test_a_kustomization_removed_from_git_takes_its_objects_with_it(
    ctx: Context, cli: Cli, fleet: str, cluster: Cluster, file_remote: RemoteRepo
) -> None:
    # When apps.yaml leaves Git
    file_remote.commit({"clusters/staging/apps.yaml": None})
    reconcile(ctx, REPO)
    summary = reconcile(ctx, ROOT)
    # Then flux-system marks the apps Kustomization for deletion (its finalizer runs first)
    assert "Kustomization/flux-system/apps deleting" in summary["message"], summary
    assert ctx.catalog.get(APPS).metadata.get("deletionTimestamp")
    assert "Terminating" in cli("get", "ks", "apps", "-n", "flux-system").stdout
    # And its own run garbage-collects its ConfigMap, then it leaves the catalog and the schedule
    done = reconcile(ctx, APPS)
    assert done["reason"] == "Deleted" and f"ConfigMap/{fleet}/web deleted" in done["message"], done
    assert cluster.get("v1", "ConfigMap", "web", fleet) is None
    assert ctx.catalog.get(APPS) is None
    assert ctx.client.zscore(ctx.keys.schedule, APPS.key) is None
    assert ctx.status.get(APPS) == {}
    assert cluster.get("v1", "Namespace", fleet, None) is not None  # infrastructure's stays


def test_deleting_a_kustomization_by_hand_collects_nested_ownership(
    ctx: Context, cli: Cli, fleet: str, cluster: Cluster
) -> None:
    # flux-system is not being pruned by anyone: delete it by hand
    deleted = cli("delete", "kustomization", "flux-system", "-n", "flux-system", "--silent")
    assert deleted.returncode == 0, deleted.stderr
    assert "marked for deletion" in deleted.stdout
    done = reconcile(ctx, ROOT)
    assert done["reason"] == "Deleted", done
    # its GitRepository went at once; its Kustomizations collect their own objects in turn
    assert ctx.catalog.get(REPO) is None and ctx.catalog.get(ROOT) is None
    for ref in (INFRA, APPS):
        assert ctx.catalog.get(ref).metadata.get("deletionTimestamp"), ref
        assert reconcile(ctx, ref)["reason"] == "Deleted"
    assert cluster.get("v1", "ConfigMap", "web", fleet) is None
    live = cluster.get("v1", "Namespace", fleet, None)
    assert live is None or live["metadata"].get("deletionTimestamp"), live
    assert ctx.catalog.all() == []


def test_an_object_another_kustomization_manages_is_a_conflict(
    ctx: Context, cli: Cli, fleet: str, tmp_path: Path
) -> None:
    # Given a second Kustomization declaring the same directory
    copy = tmp_path / "copy.yaml"
    copy.write_text(dump(kustomization("copy", "./clusters/staging")))
    assert cli("apply", "-f", str(copy)).returncode == 0
    apps_before = ctx.catalog.get(APPS)
    copy_ref = ObjectRef("Kustomization", "flux-system", "copy")
    # Then its sync fails naming the owner, and writes nothing
    assert reconcile(ctx, copy_ref)["result"] == "stalled"
    condition = ready(ctx, copy_ref)
    assert condition["reason"] == "ReconciliationFailed"
    assert (
        "Kustomization flux-system/apps is already managed by Kustomization flux-system/flux-system"
        in (condition["message"])
    )
    assert ctx.catalog.get(APPS) == apps_before
    # and the owner's next sync is unaffected
    assert reconcile(ctx, ROOT)["result"] == "success"


def test_an_unknown_toolkit_kind_fails_the_sync_with_nothing_applied(
    ctx: Context, fleet: str, cluster: Cluster, file_remote: RemoteRepo
) -> None:
    release = {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "FancyRelease",
        "metadata": {"name": "web", "namespace": fleet},
        "spec": {"interval": "5m"},
    }
    inventory = ctx.status.get(APPS)["inventory"]
    file_remote.commit({"apps/release.yaml": dump(release), "apps/more.yaml": dump(configmap("more", fleet))})
    for ref in (REPO, INFRA):
        reconcile(ctx, ref)
    assert reconcile(ctx, APPS)["result"] == "stalled"
    condition = ready(ctx, APPS)
    assert condition["reason"] == "BuildFailed"
    assert "apps/release.yaml" in condition["message"] and "FancyRelease" in condition["message"]
    assert "supported kinds: GitRepository" in condition["message"]
    assert cluster.get("v1", "ConfigMap", "more", fleet) is None
    assert ctx.status.get(APPS)["inventory"] == inventory
    assert ctx.catalog.get(ObjectRef("FancyRelease", fleet, "web")) is None


def test_an_invalid_object_in_git_names_file_and_field(
    ctx: Context, fleet: str, file_remote: RemoteRepo
) -> None:
    broken = kustomization("apps", "./apps", depends_on=("infrastructure",), interval="soon")
    file_remote.commit({"clusters/staging/apps.yaml": dump(broken)})
    reconcile(ctx, REPO)
    assert reconcile(ctx, ROOT)["result"] == "stalled"
    message = ready(ctx, ROOT)["message"]
    assert "clusters/staging/apps.yaml" in message and "spec.interval" in message, message
    assert ctx.catalog.get(APPS).spec["interval"] == "10m"


def test_a_hand_apply_of_an_owned_object_is_overwritten_at_the_next_sync(
    ctx: Context, cli: Cli, fleet: str, tmp_path: Path
) -> None:
    edited = tmp_path / "apps.yaml"
    edited.write_text(dump(kustomization("apps", "./apps", depends_on=("infrastructure",), interval="5m")))
    applied = cli("apply", "-f", str(edited))
    assert applied.returncode == 0, applied.stderr
    assert "managed by Kustomization flux-system/flux-system" in applied.stdout
    obj = ctx.catalog.get(APPS)
    assert obj.spec["interval"] == "5m" and obj.metadata["labels"] == OWNER_LABELS
    reconcile(ctx, ROOT)
    assert ctx.catalog.get(APPS).spec["interval"] == "10m"


def test_wait_covers_the_catalog_objects_a_kustomization_owns(
    ctx: Context, file_remote: RemoteRepo, cluster: Cluster
) -> None:
    # Given flux-system with wait: true over Kustomizations that have not run yet
    ns = unique_name("fleet")
    files = fleet_files(file_remote.url, ns)
    files["clusters/staging/flux-system/gotk-sync.yaml"] = gotk_sync(
        file_remote.url, wait=True, timeout="30s"
    )
    file_remote.commit(files)
    bootstrap_in_process(ctx, file_remote.url)
    reconcile(ctx, REPO)
    # The first run stores the Git copy of itself (wait: true) and, its spec changed, runs again at once
    assert reconcile(ctx, ROOT)["next_run_in_s"] == 0
    outcome: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: outcome.update(reconcile(ctx, ROOT)))
    try:
        worker.start()
        # While it waits, its Kustomizations become Ready one after the other
        threading.Event().wait(1.0)
        assert worker.is_alive(), outcome
        reconcile(ctx, INFRA)
        reconcile(ctx, APPS)
        worker.join(30)
        assert outcome.get("result") == "success", outcome
    finally:
        worker.join(30)
        cluster.delete("v1", "Namespace", ns)


def test_apply_f_on_a_fleet_tree_stores_the_engine_kinds_and_skips_cluster_objects(
    ctx: Context, cli: Cli, tmp_path: Path
) -> None:
    # Given a Flux fleet checked out locally: flux-system/ is a kustomize overlay, plus a Namespace
    tree = tmp_path / "fleet"
    files = {
        **fleet_files("https://git.example.test/fleet", "team-a"),
        "clusters/staging/ns.yaml": dump(namespace("team-a")),
    }
    for rel, text in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(text)
    # When the cluster's directory is applied
    applied = cli("apply", "-f", str(tree / "clusters/staging"))
    # Then the engine's objects are stored, the Namespace is skipped with the reason
    assert applied.returncode == 0, applied.stderr
    assert sorted(applied.stdout.split("\n")[:-1]) == [
        "GitRepository/flux-system/flux-system created",
        "Kustomization/flux-system/apps created",
        "Kustomization/flux-system/flux-system created",
        "Kustomization/flux-system/infrastructure created",
    ]
    assert "skipped 1 cluster object (Namespace/team-a (" in applied.stderr, applied.stderr
    assert "a Kustomization's sync applies them" in applied.stderr
    # and the whole repository: every plain manifest is skipped, nothing else changes
    again = cli("apply", "-f", str(tree), "--dry-run")
    assert again.returncode == 0, again.stderr
    assert "skipped 3 cluster objects" in again.stderr
    assert all(line.endswith("unchanged (dry run)") for line in again.stdout.split("\n")[:-1]), again.stdout
    # An invalid engine object anywhere in the tree: nothing is applied, file and field named
    (tree / "apps/bad.yaml").write_text(dump(kustomization("bad", "./x", interval="soon")))
    refused = cli("apply", "-f", str(tree))
    assert refused.returncode == 1
    assert "apps/bad.yaml:" in refused.stderr and "spec.interval" in refused.stderr, refused.stderr
    assert ctx.catalog.get(ObjectRef("Kustomization", "flux-system", "bad")) is None


def test_the_engine_never_writes_its_kinds_to_the_cluster_even_with_their_crds(
    ctx: Context, cli: Cli, file_remote: RemoteRepo, cluster: Cluster
) -> None:
    from tests.integration.test_sync_apply import crd

    # Given a cluster that still serves Flux's Kustomization and GitRepository CRDs
    crds = [
        crd("kustomize.toolkit.fluxcd.io", "Kustomization"),
        crd("source.toolkit.fluxcd.io", "GitRepository"),
    ]
    for definition in crds:
        cluster.apply(definition)
    ns = unique_name("fleet")
    file_remote.commit(fleet_files(file_remote.url, ns))
    bootstrap_in_process(ctx, file_remote.url)
    try:
        for ref in (REPO, ROOT):
            assert reconcile(ctx, ref)["result"] == "success"
        # Then the sync stored them in the catalog and created no custom resource
        cluster.refresh()
        assert ctx.catalog.get(APPS) is not None
        assert cluster.get("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "apps", "flux-system") is None
        assert (
            cluster.get("source.toolkit.fluxcd.io/v1", "GitRepository", "flux-system", "flux-system") is None
        )
    finally:
        for definition in crds:
            cluster.delete(
                "apiextensions.k8s.io/v1", "CustomResourceDefinition", definition["metadata"]["name"]
            )


def test_a_failed_cluster_apply_keeps_the_previous_inventory_and_prunes_nothing(
    ctx: Context, fleet: str, file_remote: RemoteRepo
) -> None:
    inventory = ctx.status.get(ROOT)["inventory"]
    widget = {
        "apiVersion": "example.test/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": fleet},
    }
    file_remote.commit({"clusters/staging/apps.yaml": None, "clusters/staging/widget.yaml": dump(widget)})
    reconcile(ctx, REPO)
    assert reconcile(ctx, ROOT)["result"] == "transient"
    assert "Widget example.test/v1 is not served by the cluster" in ready(ctx, ROOT)["message"]
    assert ctx.status.get(ROOT)["inventory"] == inventory
    apps = ctx.catalog.get(APPS)
    assert apps is not None and not apps.metadata.get("deletionTimestamp")


def test_bootstrap_export_prints_what_apply_and_bootstrap_take_back(ctx: Context, cli: Cli) -> None:
    from gitops_tasks.objects import load_text

    args = ("--url", "ssh://git@example.test/org/fleet", "--path", "clusters/prod", "--secret", "flux-system")
    exported = cli("bootstrap", "git", *args, "--export")
    assert exported.returncode == 0, exported.stderr
    objects = load_text(exported.stdout, filename="gotk-sync.yaml")
    assert [o.ref for o in objects] == [REPO, ROOT]
    assert objects[0].spec == {
        "interval": "1m",
        "ref": {"branch": "main"},
        "secretRef": {"name": "flux-system"},
        "url": "ssh://git@example.test/org/fleet",
    }
    assert objects[1].spec["path"] == "./clusters/prod" and objects[1].spec["prune"] is True
    assert ctx.catalog.all() == []  # --export stores nothing
    first = cli("bootstrap", "git", *args)
    again = cli("bootstrap", "git", *args)
    assert "GitRepository/flux-system/flux-system created" in first.stdout, first.stdout + first.stderr
    assert "GitRepository/flux-system/flux-system unchanged" in again.stdout, again.stdout
    assert [o.to_dict() for o in (ctx.catalog.get(REPO), ctx.catalog.get(ROOT))] == [
        {**o.to_dict(), "metadata": {**o.to_dict()["metadata"], "generation": 1}} for o in objects
    ]


def test_build_and_diff_show_the_catalog_objects_a_sync_would_store(
    ctx: Context, cli: Cli, fleet: str, file_remote: RemoteRepo
) -> None:
    built = cli("build", "kustomization", "flux-system", "-n", "flux-system")
    assert built.returncode == 0, built.stderr
    assert "kind: Kustomization\nmetadata:\n  labels:\n    gitops-tasks.io/name: flux-system" in built.stdout
    assert "name: apps" in built.stdout and "kind: Namespace" not in built.stdout
    same = cli("diff", "kustomization", "flux-system", "-n", "flux-system")
    assert same.returncode == 0, same.stdout + same.stderr
    assert "no changes" in same.stderr
    file_remote.commit({"clusters/staging/apps.yaml": dump(kustomization("apps", "./apps", interval="5m"))})
    reconcile(ctx, REPO)
    changed = cli("diff", "kustomization", "flux-system", "-n", "flux-system")
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert "► Kustomization/flux-system/apps configured (catalog)" in changed.stdout
    assert ctx.catalog.get(APPS).spec["interval"] == "10m"  # diff wrote nothing


def test_prune_policy_annotations_keep_catalog_objects_too(
    ctx: Context, fleet: str, file_remote: RemoteRepo
) -> None:
    # apps is annotated prune: disabled in Git, then removed from Git: it stays, still owned
    kept = kustomization("apps", "./apps", depends_on=("infrastructure",))
    kept["metadata"]["annotations"] = {"kustomize.toolkit.fluxcd.io/prune": "disabled"}
    file_remote.commit({"clusters/staging/apps.yaml": dump(kept)})
    for ref in (REPO, ROOT):
        reconcile(ctx, ref)
    file_remote.commit({"clusters/staging/apps.yaml": None})
    reconcile(ctx, REPO)
    summary = reconcile(ctx, ROOT)
    assert summary["result"] == "success", summary
    apps = ctx.catalog.get(APPS)
    assert apps is not None and not apps.metadata.get("deletionTimestamp")


def test_suspending_a_terminating_kustomization_deletes_it_without_collecting(
    ctx: Context, cli: Cli, fleet: str, cluster: Cluster
) -> None:
    # A Kustomization whose finalizer cannot finish (here: not run yet) is suspended by its user
    assert cli("delete", "kustomization", "apps", "-n", "flux-system", "-s").returncode == 0
    assert cli("suspend", "kustomization", "apps", "-n", "flux-system").returncode == 0
    # It stays scheduled, and its run deletes it, leaving its objects (as Flux's finalizer does)
    assert ctx.client.zscore(ctx.keys.schedule, APPS.key) is not None
    assert reconcile(ctx, APPS)["reason"] == "Deleted"
    assert ctx.catalog.get(APPS) is None
    assert cluster.get("v1", "ConfigMap", "web", fleet) is not None
