"""``gitops-tasks build`` / ``diff`` as real subprocesses, and the sync task's reconciler run through the
runner with the catalog and status in Redis (the emulator, or GITOPS_TASKS_TEST_KUBECONFIG's cluster)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from beat_schedule import entry_for
from gitops_tasks.objects import load_text
from gitops_tasks.objects.model import ObjectRef
from gitops_tasks.tasks import runner
from gitops_tasks.tasks.context import Context
from gitops_tasks.tasks.git import reconcile_git_repository
from gitops_tasks.tasks.sync import reconcile_kustomization
from tests.gitservers import RemoteRepo
from tests.integration.test_sync_world import configmap, dump, namespace
from tests.kubeapi.fixtures import KubeTarget, kube_target, unique_name

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(gt_env: dict[str, str]) -> Cli:
    """``gitops-tasks ARGS`` as a subprocess."""

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "gitops_tasks.cli", *args]
        return subprocess.run(
            argv, env={**gt_env, **(env or {})}, capture_output=True, text=True, timeout=60, check=False
        )

    return run


APP = ObjectRef("Kustomization", "default", "app")


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeTarget]:
    with kube_target(tmp_path_factory.mktemp("kube")) as target:
        yield target


def declare(ctx: Context, remote: RemoteRepo, **spec: Any) -> None:
    repository = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "repo"},
        "spec": {"url": remote.url, "interval": "1m", "ref": {"branch": "main"}},
    }
    source = {"kind": "GitRepository", "name": "repo"}
    kustomization = {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "app"},
        "spec": {"interval": "1m", "prune": True, "sourceRef": source, **spec},
    }
    ctx.catalog.apply(load_text(dump(repository, kustomization), filename="test.yaml"), entry_for=entry_for)


def reconcile(ctx: Context, ref: ObjectRef) -> dict[str, Any]:
    reconciler = reconcile_git_repository if ref.kind == "GitRepository" else reconcile_kustomization
    return runner.run(ref, reason="manual", ctx=ctx, reconciler=reconciler, enqueue_dependent=lambda _: False)


@pytest.fixture
def gt_env(gt_env: dict[str, str], kube: KubeTarget) -> dict[str, str]:
    """The shared environment, pointed at this module's cluster (so ``ctx`` syncs there too)."""
    return {**gt_env, "GITOPS_TASKS_KUBECONFIG": str(kube.kubeconfig)}


@pytest.fixture
def setup(ctx: Context, kube: KubeTarget, file_remote: RemoteRepo) -> Iterator[tuple[str, dict[str, str]]]:
    ns = unique_name("sync-cli")
    file_remote.commit(
        {
            "deploy/ns.yaml": dump(namespace(ns)),
            "deploy/cm.yaml": dump(configmap("settings", ns, {"env": "${env}"})),
            "deploy/secret.yaml": dump(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": "creds", "namespace": ns},
                    "stringData": {"password": "hunter2"},
                }
            ),
        }
    )
    declare(ctx, file_remote, path="./deploy", postBuild={"substitute": {"env": "prod"}})
    assert reconcile(ctx, ObjectRef("GitRepository", "default", "repo"))["result"] == "success"
    yield ns, {"GITOPS_TASKS_KUBECONFIG": str(kube.kubeconfig)}
    from gitops_tasks.sync.cluster import Cluster

    cluster = Cluster.from_kubeconfig(kube.kubeconfig)
    cluster.delete("v1", "Namespace", ns)
    cluster.close()


def test_build_kustomization_prints_what_a_sync_would_apply(
    cli: Cli, setup: tuple[str, dict[str, str]]
) -> None:
    ns, env = setup
    out = cli("build", "kustomization", "app", env=env)
    assert out.returncode == 0, out.stderr
    objects = list(yaml.safe_load_all(out.stdout))
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [  # apply order
        ("Namespace", ns),
        ("Secret", "creds"),
        ("ConfigMap", "settings"),
    ]
    assert objects[2]["data"] == {"env": "prod"}
    assert objects[1]["stringData"] == {"password": "***"}
    shown = cli("build", "kustomization", "app", "--show-secrets", env=env)
    assert list(yaml.safe_load_all(shown.stdout))[1]["stringData"] == {"password": "hunter2"}
    missing = cli("build", "kustomization", "nope", env=env)
    assert missing.returncode == 1 and "Kustomization default/nope not found" in missing.stderr


def _applied_by_sync(kube: KubeTarget, ns: str) -> dict[tuple[str, str], dict[str, Any]]:
    from gitops_tasks.sync.cluster import Cluster

    cluster = Cluster.from_kubeconfig(kube.kubeconfig)
    try:
        live = {}
        for kind, name, namespace_ in (("Namespace", ns, None), ("ConfigMap", "settings", ns)):
            obj = cluster.get("v1", kind, name, namespace_)
            assert obj is not None, (kind, name)
            live[(kind, name)] = obj
        return live
    finally:
        cluster.close()


def test_build_shows_target_namespace_and_substitution_exactly_as_the_sync_applies(
    cli: Cli, ctx: Context, kube: KubeTarget, file_remote: RemoteRepo
) -> None:
    # Given objects without a namespace or in another one, a targetNamespace, and a multi-line value
    ns = unique_name("target")
    file_remote.commit(
        {
            "tn/ns.yaml": dump(namespace(ns)),
            "tn/cm.yaml": dump(
                configmap("settings", "elsewhere", {"cert": "${cert}", "region": "${region:=eu}"})
            ),
            "tn/role.yaml": dump(
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRole",
                    "metadata": {"name": f"{ns}-reader", "namespace": "dropped"},
                    "rules": [],
                }
            ),
        }
    )
    declare(
        ctx,
        file_remote,
        path="./tn",
        targetNamespace=ns,
        postBuild={"substitute": {"cert": "-----BEGIN-----\nMIIB\n-----END-----\n"}},
    )
    assert reconcile(ctx, ObjectRef("GitRepository", "default", "repo"))["result"] == "success"
    # When building, with the cluster and then without one
    online = cli("build", "kustomization", "app")
    offline = cli("build", "kustomization", "app", env={"GITOPS_TASKS_KUBECONFIG": "/nonexistent/kubeconfig"})
    # Then both show what the sync applies: namespaced objects in targetNamespace, cluster-scoped
    # ones without a namespace, our labels, the value without its newlines
    assert online.returncode == 0, online.stderr
    assert offline.returncode == 0, offline.stderr
    assert "note: no cluster" in offline.stderr and "note:" not in online.stderr
    assert online.stdout == offline.stdout
    built = {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(online.stdout)}
    assert list(built) == [("Namespace", ns), ("ClusterRole", f"{ns}-reader"), ("ConfigMap", "settings")]
    cm = built[("ConfigMap", "settings")]
    assert cm["metadata"]["namespace"] == ns
    assert cm["metadata"]["labels"] == {"gitops-tasks.io/name": "app", "gitops-tasks.io/namespace": "default"}
    assert cm["data"] == {"cert": "-----BEGIN-----MIIB-----END-----", "region": "eu"}
    assert "namespace" not in built[("ClusterRole", f"{ns}-reader")]["metadata"]
    # ... and the sync applies exactly that
    try:
        result = reconcile(ctx, APP)
        assert result["result"] == "success", result["message"]
        live = _applied_by_sync(kube, ns)
        assert live[("ConfigMap", "settings")]["data"] == cm["data"]
        assert live[("ConfigMap", "settings")]["metadata"]["labels"] == cm["metadata"]["labels"]
    finally:
        from gitops_tasks.sync.cluster import Cluster

        cluster = Cluster.from_kubeconfig(kube.kubeconfig)
        cluster.delete("rbac.authorization.k8s.io/v1", "ClusterRole", f"{ns}-reader")
        cluster.delete("v1", "Namespace", ns)
        cluster.close()


def test_build_path_builds_a_local_directory(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "a.yaml").write_text(dump(configmap("a", "x")))
    out = cli("build", str(tmp_path / "apps"))
    assert out.returncode == 0, out.stderr
    assert yaml.safe_load(out.stdout)["metadata"]["name"] == "a"
    (tmp_path / "apps" / "bad.yaml").write_text("kind: ConfigMap\n")
    out = cli("build", str(tmp_path / "apps"))
    assert (
        out.returncode == 1
        and "bad.yaml: document 1 (line 1): ConfigMap is missing apiVersion, metadata.name" in out.stderr
    )


def test_diff_exit_codes_follow_what_a_sync_would_change(
    cli: Cli, ctx: Context, kube: KubeTarget, file_remote: RemoteRepo, setup: tuple[str, dict[str, str]]
) -> None:
    ns, env = setup
    # Nothing applied yet: everything would be created.
    out = cli("diff", "kustomization", "app", env=env)
    assert out.returncode == 1, out.stderr
    assert f"+++ merged/ConfigMap/{ns}/settings" in out.stdout and "+  env: prod" in out.stdout
    assert "hunter2" not in out.stdout and "aHVudGVyMg" not in out.stdout
    # After a sync through the runner, nothing would change.
    result = reconcile(ctx, APP)
    assert (result["result"], result["reason"]) == ("success", "ReconciliationSucceeded"), result["message"]
    assert ctx.status.get(APP)["inventory"]["entries"][0] == {"id": f"_{ns}__Namespace", "v": "v1"}
    out = cli("diff", "kustomization", "app", env=env)
    assert (out.returncode, out.stdout) == (0, ""), out.stderr
    assert "no changes" in out.stderr
    # Drift on the cluster, and a file removed from Git, show up.
    from gitops_tasks.sync.cluster import Cluster

    person = Cluster.from_kubeconfig(kube.kubeconfig)
    person.field_manager = "kubectl-edit"
    person.apply(configmap("settings", ns, {"env": "hand-edited"}))
    person.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds", "namespace": ns},
            "stringData": {"password": "changed"},
        }
    )
    person.close()
    file_remote.commit({"deploy/gone.yaml": None, "deploy/extra.yaml": None})
    out = cli("diff", "kustomization", "app", env=env)
    assert out.returncode == 1
    assert "-  env: hand-edited\n+  env: prod" in out.stdout
    assert "-  password: '*** (before)'\n+  password: '*** (after)'" in out.stdout
    assert "hunter2" not in out.stdout and "changed" not in out.stdout.replace("ConfigMap", "")
    # An error is exit status 2.
    out = cli("diff", "kustomization", "nope", env=env)
    assert out.returncode == 2 and "not found" in out.stderr


def test_diff_shows_what_a_prune_would_delete(
    cli: Cli, ctx: Context, file_remote: RemoteRepo, setup: tuple[str, dict[str, str]]
) -> None:
    ns, env = setup
    assert reconcile(ctx, APP)["result"] == "success"
    file_remote.commit({"deploy/cm.yaml": None})
    assert reconcile(ctx, ObjectRef("GitRepository", "default", "repo"))["result"] == "success"
    out = cli("diff", "kustomization", "app", env=env)
    assert out.returncode == 1
    assert f"--- live/ConfigMap/{ns}/settings" in out.stdout and "+++ merged" in out.stdout
    assert f"ConfigMap/{ns}/settings prune" in out.stderr
