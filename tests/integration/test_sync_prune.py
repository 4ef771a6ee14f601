"""Pruning and hands-off rules against a Kubernetes API: what left Git goes, unless it is protected,
ignored, or not ours; plus the sync tag, remote kubeconfigs and impersonation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gitops_tasks.sync.cluster import Cluster
from gitops_tasks.sync.errors import KubeConfigError
from gitops_tasks.sync.pipeline import SyncConfig
from tests.gitservers import RemoteRepo, git
from tests.integration.test_sync_world import World, configmap, dump, namespace
from tests.kubeapi.fixtures import KubeTarget, kube_target

PRUNE = "kustomize.toolkit.fluxcd.io/prune"


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeTarget]:
    with kube_target(tmp_path_factory.mktemp("kube")) as target:
        yield target


@pytest.fixture
def world(tmp_path: Path, kube: KubeTarget, file_remote: RemoteRepo) -> Iterator[World]:
    w = World(tmp_path, kube, file_remote)
    yield w
    w.cleanup()


def test_prune_deletes_what_left_git_unless_protected(world: World) -> None:
    ns = world.ns
    keep = {
        "gt-disabled": {"annotations": {"gitops-tasks.io/prune": "disabled"}},
        "flux-disabled": {"annotations": {PRUNE: "disabled"}},
        "flux-disabled-label": {"labels": {PRUNE: "disabled"}},
        "sync-only": {"annotations": {"fluxcd.io/ignore": "sync_only"}},
    }
    world.commit(
        {
            "ns.yaml": dump(namespace(ns)),
            "gone.yaml": dump(
                configmap("plain", ns), *(configmap(name, ns, **meta) for name, meta in keep.items())
            ),
            "stays.yaml": dump(configmap("stays", ns)),
        }
    )
    world.repository()
    world.kustomization("app")
    assert world.sync("app").ready
    assert len(world.inventory("app")) == 7
    world.commit({"gone.yaml": None})
    outcome = world.sync("app")
    assert outcome.ready, outcome.message
    assert f"ConfigMap/{ns}/plain deleted" in outcome.message
    assert world.get("ConfigMap", "plain", ns) is None
    for name in keep:
        assert world.get("ConfigMap", name, ns) is not None, name
    assert world.inventory("app") == [f"_{ns}__Namespace", f"{ns}_stays__ConfigMap"]
    if world.kube.emulator is not None:
        deleted = [d for d in world.kube.emulator.deletions if d["namespace"] == ns]
        assert deleted == [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "namespace": ns,
                "name": "plain",
                "propagationPolicy": "Background",
            }
        ]


def test_objects_changed_on_the_cluster_are_protected_by_their_live_annotations(world: World) -> None:
    ns = world.ns
    world.commit(
        {"ns.yaml": dump(namespace(ns)), "a.yaml": dump(configmap("ignored", ns), configmap("protected", ns))}
    )
    world.repository()
    world.kustomization("app")
    assert world.sync("app").ready
    # Someone marks them on the cluster (another field manager, as kubectl annotate would).
    person = world.connect(None)
    person.field_manager = "kubectl-annotate"
    person.apply(configmap("ignored", ns, {"k": "hand-edited"}, annotations={"fluxcd.io/ignore": "true"}))
    person.apply(
        {
            **configmap("protected", ns),
            "metadata": {"name": "protected", "namespace": ns, "annotations": {PRUNE: "disabled"}},
        }
    )
    person.close()
    # An ignored live object is not updated from Git ...
    world.commit({"a.yaml": dump(configmap("ignored", ns, {"k": "git-v2"}), configmap("protected", ns))})
    outcome = world.sync("app")
    assert outcome.ready and f"ConfigMap/{ns}/ignored" not in outcome.message
    assert (world.get("ConfigMap", "ignored", ns) or {})["data"] == {"k": "hand-edited"}
    # ... nor pruned, and neither is one annotated prune: disabled.
    world.commit({"a.yaml": None})
    assert world.sync("app").ready
    assert world.get("ConfigMap", "ignored", ns) is not None
    assert world.get("ConfigMap", "protected", ns) is not None


def test_ignored_in_git_is_never_applied(world: World) -> None:
    ns = world.ns
    world.commit(
        {
            "ns.yaml": dump(namespace(ns)),
            "a.yaml": dump(configmap("skip", ns, annotations={"fluxcd.io/ignore": "true"})),
        }
    )
    world.repository()
    world.kustomization("app")
    assert world.sync("app").ready
    assert world.get("ConfigMap", "skip", ns) is None


def test_prune_off_leaves_objects_that_left_git(world: World) -> None:
    ns = world.ns
    world.commit({"ns.yaml": dump(namespace(ns)), "a.yaml": dump(configmap("a", ns))})
    world.repository()
    world.kustomization("app", prune=False)
    assert world.sync("app").ready
    world.commit({"a.yaml": None})
    assert world.sync("app").ready
    assert world.get("ConfigMap", "a", ns) is not None
    assert world.inventory("app") == [f"_{ns}__Namespace"]


def test_two_kustomizations_of_one_repository_never_prune_each_other(world: World) -> None:
    ns = world.ns
    world.commit(
        {
            "ns/ns.yaml": dump(namespace(ns)),
            "a/a.yaml": dump(configmap("a", ns), configmap("shared", ns, {"from": "a"})),
            "b/b.yaml": dump(configmap("b", ns), configmap("shared", ns, {"from": "b"})),
        }
    )
    world.repository()
    world.kustomization("ns", path="./ns", prune=False)
    world.kustomization("a", path="./a")
    world.kustomization("b", path="./b")
    assert world.sync("ns").ready and world.sync("a").ready and world.sync("b").ready
    shared = world.get("ConfigMap", "shared", ns) or {}
    assert shared["metadata"]["labels"]["gitops-tasks.io/name"] == "b"  # the last writer owns it
    # a drops both its objects: its own goes, the one b applied last stays.
    world.commit({"a/a.yaml": dump(configmap("a2", ns))})
    assert world.sync("b").ready
    assert world.get("ConfigMap", "a", ns) is not None
    outcome = world.sync("a")
    assert outcome.ready, outcome.message
    assert world.get("ConfigMap", "a", ns) is None
    assert (world.get("ConfigMap", "shared", ns) or {})["data"] == {"from": "b"}
    assert world.get("ConfigMap", "b", ns) is not None


def test_sync_tag_follows_the_applied_revision(world: World) -> None:
    ns = world.ns
    world.commit({"ns.yaml": dump(namespace(ns))})
    world.repository()
    world.kustomization("app")
    config = SyncConfig(secrets_dir=world.secrets_dir, cache_dir=world.cache_dir, sync_tag="flux-sync")
    outcome = world.sync("app", config)
    assert outcome.ready, outcome.message
    assert git("rev-parse", "refs/tags/flux-sync", cwd=world.remote.bare).strip() == world.remote.head
    assert world.status_of("app")["syncTag"] == {
        "name": "flux-sync",
        "revision": f"main@sha1:{world.remote.head}",
    }
    world.commit({"cm.yaml": dump(configmap("a", ns))})
    assert world.sync("app", config).ready
    assert git("rev-parse", "refs/tags/flux-sync", cwd=world.remote.bare).strip() == world.remote.head


def test_kubeconfig_secret_ref_targets_that_cluster(world: World) -> None:
    ns = world.ns
    world.commit({"ns.yaml": dump(namespace(ns))})
    world.repository()
    secret = world.secrets_dir / "default" / "remote-cluster"
    secret.mkdir(parents=True)
    (secret / "value.yaml").write_text(world.kube.kubeconfig.read_text())

    def no_default_cluster(_: str | None) -> Cluster:
        raise KubeConfigError("no default cluster in this test")

    world.connect = no_default_cluster  # type: ignore[method-assign]
    world.kustomization("app", kubeConfig={"secretRef": {"name": "missing"}})
    outcome = world.sync("app")
    assert (outcome.result, outcome.reason) == ("stalled", "ReconciliationFailed")
    assert "spec.kubeConfig.secretRef: Secret default/missing not found" in outcome.message
    world.kustomization("app", kubeConfig={"secretRef": {"name": "remote-cluster"}})
    outcome = world.sync("app")
    assert outcome.ready, outcome.message
    assert world.get("Namespace", ns) is not None


def test_service_account_name_is_impersonated(world: World) -> None:
    seen: list[str | None] = []
    connect = world.connect

    def spy(impersonate: str | None) -> Cluster:
        seen.append(impersonate)
        cluster = connect(impersonate)
        assert (
            cluster.api_client.default_headers.get("Impersonate-User") == impersonate or impersonate is None
        )
        return cluster

    world.connect = spy  # type: ignore[method-assign]
    world.commit({"ns.yaml": dump(namespace(world.ns))})
    world.repository()
    world.kustomization("app", serviceAccountName="deployer")
    outcome = world.sync("app")
    if world.kube.emulator is not None:
        assert outcome.ready, outcome.message
    assert "system:serviceaccount:default:deployer" in seen
