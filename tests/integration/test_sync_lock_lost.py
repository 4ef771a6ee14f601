"""A run whose lock is lost mid-run stops before its side effects: another worker may own the
object by then, so applying (or pruning, or pushing) would run one object on two workers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from beat_schedule import entry_for
from gitops_tasks.objects.model import Object
from gitops_tasks.objects.outcome import Outcome
from gitops_tasks.sync.reconcile import reconcile
from gitops_tasks.tasks import runner
from gitops_tasks.tasks.context import Context
from tests.gitservers import RemoteRepo
from tests.integration.test_sync_world import World, configmap, dump, namespace
from tests.kubeapi.fixtures import KubeTarget, kube_target


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeTarget]:
    with kube_target(tmp_path_factory.mktemp("kube")) as target:
        yield target


@pytest.fixture
def world(tmp_path: Path, kube: KubeTarget, file_remote: RemoteRepo) -> Iterator[World]:
    w = World(tmp_path, kube, file_remote)
    yield w
    w.cleanup()


def test_a_sync_whose_run_lock_was_taken_over_applies_nothing(
    world: World, ctx: Context, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a Kustomization with something to apply
    ns = world.ns
    world.commit({"deploy/ns.yaml": dump(namespace(ns)), "deploy/cm.yaml": dump(configmap("web", ns))})
    world.repository()
    kustomization = world.kustomization("app", path="./deploy")
    ctx.catalog.apply([kustomization], entry_for=entry_for)
    lock_key = ctx.keys.run_lock(kustomization.ref.key)
    other = "other-worker:0123456789abcdef"

    def sync_after_a_takeover(obj: Object, previous: dict[str, Any], run_ctx: Context) -> Outcome:
        # Mid-run, this worker's lock expires (a Redis pause) and another worker takes it.
        ctx.client.set(lock_key, other, px=10_000)
        return reconcile(
            obj,
            previous,
            lookup=world,
            connect=world.connect,
            config=world.config,
            ensure_held=run_ctx.ensure_held,
        )

    # When the run goes on
    result = runner.run(
        kustomization.ref,
        reason="manual",
        ctx=ctx,
        reconciler=sync_after_a_takeover,
        enqueue_dependent=lambda _: False,
    )

    # Then it stops before applying anything, says why, and leaves the new holder alone
    assert (result["result"], result["reason"]) == ("discarded", "RunLockLost"), result
    assert world.get("Namespace", ns) is None
    assert world.get("ConfigMap", "web", ns) is None
    assert ctx.client.get(lock_key) == other
    assert ctx.status.get(kustomization.ref) == {}
    assert any(
        r.levelname == "WARNING" and "stopped before its next side effect" in r.getMessage()
        for r in caplog.records
    )
