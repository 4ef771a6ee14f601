"""The fleet benchmark's repository has the shape BENCHMARKS.md describes, as a sync builds it."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from benchmarks import bench_fleet, run
from gitops_tasks.objects import load_text
from gitops_tasks.sync.build import build

needs_kubectl = pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl (with kustomize) not installed"
)
URL = "file:///srv/git/fleet.git"


def written(root: Path, kustomizations: int = bench_fleet.DEFAULT_KUSTOMIZATIONS, under: str = "") -> Path:
    """The fleet tree in ``root`` (only the files ``under`` a directory, when given)."""
    for rel, text in bench_fleet.fleet_tree(URL, kustomizations).items():
        if not rel.startswith(under):
            continue
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_fleet_benchmark_is_one_of_the_sections_run_writes() -> None:
    assert "fleet" in run.ORDER
    assert callable(bench_fleet.measure) and callable(bench_fleet.render)


def test_gotk_sync_holds_the_two_objects_bootstrap_stores() -> None:
    objects = load_text(bench_fleet.gotk_sync(URL), default_namespace="flux-system")
    assert [o.ref.key for o in objects] == [
        "GitRepository/flux-system/flux-system",
        "Kustomization/flux-system/flux-system",
    ]
    assert objects[0].spec["url"] == URL
    assert objects[1].spec["path"] == "./clusters/bench"


@needs_kubectl
def test_flux_system_builds_itself_and_100_kustomizations_each_over_its_own_path(tmp_path: Path) -> None:
    tree = bench_fleet.fleet_tree(URL)
    assert sum(1 for rel in tree if rel.startswith("apps/")) == 100 * bench_fleet.OBJECTS_EACH
    root = written(tmp_path, under="clusters/")
    manifests = build(root, "./clusters/bench")
    kinds = Counter(m.obj["kind"] for m in manifests)
    assert kinds == {"GitRepository": 1, "Kustomization": 101}
    paths = sorted(m.obj["spec"]["path"] for m in manifests if m.obj["metadata"]["name"] != "flux-system")
    assert paths == [f"./apps/{n:03d}" for n in range(100)]


def test_each_app_path_is_a_namespace_and_nine_configmaps_in_it(tmp_path: Path) -> None:
    root = written(tmp_path, kustomizations=3)
    for number in range(3):
        manifests = build(root, f"./apps/{number:03d}")
        assert len(manifests) == bench_fleet.OBJECTS_EACH
        kinds = Counter(m.obj["kind"] for m in manifests)
        assert kinds == {"Namespace": 1, "ConfigMap": 9}
        name = f"app-{number:03d}"
        assert {m.obj["metadata"].get("namespace") for m in manifests if m.obj["kind"] == "ConfigMap"} == {
            name
        }
        assert [m.obj["metadata"]["name"] for m in manifests if m.obj["kind"] == "Namespace"] == [name]
