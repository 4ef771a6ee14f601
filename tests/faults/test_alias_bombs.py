"""An alias bomb in a synced repository: refused by the sync, and the worker survives it.

A real worker and beat reconcile two Kustomizations from one Git repository. When a commit adds
a 10-line YAML file that expands to 9**9 nodes to one Kustomization's path, that Kustomization
becomes Stalled naming the file, keeps its previous inventory and objects, and the same worker
process goes on applying the other Kustomization's commits. The worker's peak memory is read from
``/proc`` (``VmHWM``) and printed; the bound asserted is generous, far above a worker's normal
size and far below what expanding the bomb takes (a worker was killed past 2 GB).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from gitops_tasks import tasknames
from tests.e2e.test_sync_loop import configmap_data, start_worker_and_beat
from tests.e2e.test_sync_loop import kube as kube  # the fixture
from tests.gitservers import RemoteRepo
from tests.integration.test_sync_world import configmap, dump, namespace
from tests.kubeapi.fixtures import KubeTarget, unique_name
from tests.procs import wait_for
from tests.unit.test_bounded_yaml import REFUSED, configmap_bomb

pytestmark = pytest.mark.skipif(
    "Kustomization" not in tasknames.TASK_BY_KIND, reason="the sync task is not wired into tasknames yet"
)

#: Peak resident memory the worker must stay under (it runs at about a fifth of this).
WORKER_PEAK_BOUND_MB = 500


def status(ctx: Any, name: str) -> dict[str, Any]:
    raw = ctx.client.hget(ctx.keys.status, f"Kustomization/default/{name}")
    return json.loads(raw) if raw else {}


def condition(ctx: Any, name: str, ctype: str) -> dict[str, Any]:
    return next((c for c in status(ctx, name).get("conditions", []) if c["type"] == ctype), {})


def peak_rss_mb(pid: int) -> float:
    """The largest ``VmHWM`` among the processes of ``pid``'s process group (worker and pool)."""
    peak_kb = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.getpgid(int(entry)) != pid:
                continue
            text = Path(f"/proc/{entry}/status").read_text()
        except (OSError, ProcessLookupError):
            continue
        for line in text.splitlines():
            if line.startswith("VmHWM:"):
                peak_kb = max(peak_kb, int(line.split()[1]))
    return peak_kb / 1024


def test_a_bomb_in_git_stalls_its_kustomization_and_the_worker_keeps_reconciling_others(
    cli, ctx, procs, kube: KubeTarget, file_remote: RemoteRepo, tmp_path: Path
) -> None:
    # Given two Kustomizations of one repository, both applied
    ns = unique_name("bomb")
    file_remote.commit(
        {
            "bombed/ns.yaml": dump(namespace(ns)),
            "bombed/before.yaml": dump(configmap("before", ns)),
            "healthy/cm.yaml": dump(configmap("healthy", ns, {"v": "1"})),
        }
    )
    objects = tmp_path / "objects.yaml"
    kustomization = (
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {{name: {name}}}\n"
        "spec: {{interval: 1h, prune: true, path: ./{name},\n"
        "  sourceRef: {{kind: GitRepository, name: repo}}}}\n"
    )
    objects.write_text(
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {name: repo}\n"
        f"spec: {{url: '{file_remote.url}', interval: 1s, ref: {{branch: main}}}}\n---\n"
        + kustomization.format(name="bombed")
        + "---\n"
        + kustomization.format(name="healthy")
    )
    assert cli("apply", "-f", str(objects)).returncode == 0
    worker, cluster = start_worker_and_beat(procs, kube)
    try:

        def data(name: str) -> dict[str, Any] | None:
            return configmap_data(cluster, name, ns)

        wait_for(lambda: data("healthy") == {"v": "1"} and data("before") is not None, what="first sync")
        wait_for(lambda: condition(ctx, "bombed", "Ready").get("status") == "True", what="bombed Ready")
        inventory = status(ctx, "bombed")["inventory"]

        # When a commit adds a bomb to one path and changes the other
        file_remote.commit(
            {
                "bombed/bomb.yaml": configmap_bomb(9),
                "healthy/cm.yaml": dump(configmap("healthy", ns, {"v": "2"})),
            }
        )

        # Then the bombed Kustomization is Stalled, naming the file and what was refused
        wait_for(lambda: condition(ctx, "bombed", "Stalled").get("status") == "True", what="bombed Stalled")
        ready = condition(ctx, "bombed", "Ready")
        assert ready["status"] == "False" and ready["reason"] == "BuildFailed", ready
        assert f"bomb.yaml: document 1 (line 1): {REFUSED}" in ready["message"], ready
        # And its previous inventory and objects are intact
        assert status(ctx, "bombed")["inventory"] == inventory
        assert data("before") is not None
        # And the same worker process applies the other Kustomization's commits, now and after
        wait_for(lambda: data("healthy") == {"v": "2"}, what="healthy v2 applied")
        file_remote.commit({"healthy/cm.yaml": dump(configmap("healthy", ns, {"v": "3"}))})
        wait_for(lambda: data("healthy") == {"v": "3"}, what="healthy v3 applied")
        assert worker.proc.poll() is None, worker.log()[-3000:]
        peak = peak_rss_mb(worker.pid)
        print(f"worker peak RSS (VmHWM): {peak:.0f} MB")
        assert 0 < peak < WORKER_PEAK_BOUND_MB, worker.log()[-3000:]
        events = cli("events", "--for", "Kustomization/bombed").stdout
        assert REFUSED in events, events
    finally:
        cluster.delete("v1", "Namespace", ns)
        cluster.close()


def test_apply_refuses_a_bomb_and_stores_nothing(cli, ctx, tmp_path: Path) -> None:
    # Given a file with a valid GitRepository and, after it, a bomb
    objects = tmp_path / "objects.yaml"
    objects.write_text(
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {name: fine}\n"
        "spec: {url: 'https://example.com/x.git', interval: 1m, ref: {branch: main}}\n---\n"
        + configmap_bomb(9)
    )
    # When it is applied, the process refuses it (the file, line and bound named) and exits 1
    result = cli("apply", "-f", str(objects))
    assert result.returncode == 1, result
    assert f"{objects}:6: {REFUSED}" in result.stderr + result.stdout, result
    # And nothing of that apply is stored
    assert ctx.client.hlen(ctx.keys.catalog) == 0
