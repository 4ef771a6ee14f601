"""A fleet without a cluster: image automation only. The Kustomization's build holds only the
engine's kinds, so it syncs them into the catalog with no kubeconfig anywhere; the scan, the policy
and the automation then run from what Git declared. A plain object in such a build is a clear error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from beat_schedule import entry_for
from gitops_tasks.objects import load_text
from gitops_tasks.objects.model import ObjectRef
from gitops_tasks.settings import Settings
from gitops_tasks.tasks import runner
from gitops_tasks.tasks.automation import reconcile_image_update_automation
from gitops_tasks.tasks.context import Context
from gitops_tasks.tasks.git import reconcile_git_repository
from gitops_tasks.tasks.registry import reconcile_image_repository
from gitops_tasks.tasks.sync import reconcile_kustomization
from tests.fleetfixtures import configmap, dump, git_repository, kustomization
from tests.gitservers import RemoteRepo, git
from tests.registryservers import DockerRegistry

RECONCILERS: dict[str, Any] = {
    "GitRepository": reconcile_git_repository,
    "Kustomization": reconcile_kustomization,
    "ImageRepository": reconcile_image_repository,
    "ImageUpdateAutomation": reconcile_image_update_automation,
}
IMAGES = ObjectRef("Kustomization", "flux-system", "images")


@pytest.fixture
def no_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, gt_env: dict[str, str]) -> Iterator[Context]:
    """A context with no cluster configured anywhere (no setting, $KUBECONFIG or ~/.kube/config)."""
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    env = {k: v for k, v in gt_env.items() if k != "GITOPS_TASKS_KUBECONFIG"}
    context = Context(Settings.from_env(env))
    yield context
    context.client.close()


def reconcile(ctx: Context, ref: ObjectRef) -> dict[str, Any]:
    return runner.run(
        ref, reason="manual", ctx=ctx, reconciler=RECONCILERS[ref.kind], enqueue_dependent=lambda _: False
    )


def image_objects(image: str) -> str:
    repository = {
        "apiVersion": "image.toolkit.fluxcd.io/v1",
        "kind": "ImageRepository",
        "metadata": {"name": "app", "namespace": "flux-system"},
        "spec": {"image": image, "interval": "1m", "insecure": True},
    }
    policy = {
        "apiVersion": "image.toolkit.fluxcd.io/v1",
        "kind": "ImagePolicy",
        "metadata": {"name": "app", "namespace": "flux-system"},
        "spec": {"imageRepositoryRef": {"name": "app"}, "policy": {"semver": {"range": ">=1.0.0"}}},
    }
    automation = {
        "apiVersion": "image.toolkit.fluxcd.io/v1",
        "kind": "ImageUpdateAutomation",
        "metadata": {"name": "app", "namespace": "flux-system"},
        "spec": {
            "interval": "5m",
            "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
            "git": {
                "checkout": {"ref": {"branch": "main"}},
                "commit": {"author": {"name": "Bot", "email": "bot@example.test"}},
                "push": {"branch": "main"},
            },
            "update": {"path": "./deploy", "strategy": "Setters"},
        },
    }
    return dump(repository, policy, automation)


def test_an_image_automation_fleet_runs_without_a_cluster(
    no_cluster: Context, file_remote: RemoteRepo, docker_registry: DockerRegistry, image_path: str
) -> None:
    ctx = no_cluster
    image = f"{docker_registry.host}/{image_path}"
    docker_registry.push(image_path, "1.0.0", "1.1.0")
    file_remote.commit(
        {
            "fleet/images.yaml": image_objects(image),
            "deploy/app.yaml": f'image: {image}:1.0.0 # {{"$imagepolicy": "flux-system:app"}}\n',
        }
    )
    declared = dump(git_repository("flux-system", file_remote.url), kustomization("images", "./fleet"))
    ctx.catalog.apply(load_text(declared, filename="boot.yaml"), entry_for=entry_for)

    # The sync stores the image objects from Git, with no cluster configured
    reconcile(ctx, ObjectRef("GitRepository", "flux-system", "flux-system"))
    synced = reconcile(ctx, IMAGES)
    assert synced["result"] == "success", synced
    for kind in ("ImageRepository", "ImagePolicy", "ImageUpdateAutomation"):
        obj = ctx.catalog.get(ObjectRef(kind, "flux-system", "app"))
        assert obj is not None and obj.metadata["labels"]["gitops-tasks.io/name"] == "images", kind
    # and they run: scan, policy, automation commit
    assert reconcile(ctx, ObjectRef("ImageRepository", "flux-system", "app"))["result"] == "success"
    policy = ctx.status.get(ObjectRef("ImagePolicy", "flux-system", "app"))
    assert policy["latestImage"] == f"{image}:1.1.0", policy
    pushed = reconcile(ctx, ObjectRef("ImageUpdateAutomation", "flux-system", "app"))
    assert pushed["result"] == "success", pushed
    shown = git("show", "main:deploy/app.yaml", cwd=file_remote.bare)
    assert f"{image}:1.1.0" in shown, shown


def test_a_plain_object_without_a_cluster_is_a_clear_error(
    no_cluster: Context, file_remote: RemoteRepo
) -> None:
    ctx = no_cluster
    file_remote.commit({"fleet/settings.yaml": dump(configmap("settings", "apps"))})
    declared = dump(git_repository("flux-system", file_remote.url), kustomization("images", "./fleet"))
    ctx.catalog.apply(load_text(declared, filename="boot.yaml"), entry_for=entry_for)
    reconcile(ctx, ObjectRef("GitRepository", "flux-system", "flux-system"))
    assert reconcile(ctx, IMAGES)["result"] == "stalled"
    ready = next(c for c in ctx.status.get(IMAGES)["conditions"] if c["type"] == "Ready")
    assert ready["message"].startswith("no cluster configured"), ready
    assert "first ConfigMap/settings (fleet/settings.yaml" in ready["message"], ready
