"""The README's examples work when pasted from the repository root, run exactly as written: the demo
commit-and-push, and another system enqueueing work by task name."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from gitops_tasks.objects.model import ObjectRef
from tests.gitservers import FileRemotes
from tests.procs import REPO_ROOT, free_port, wait_for

README = (REPO_ROOT / "README.md").read_text()


def _declare(cli, tmp_path: Path, name: str) -> None:
    remotes = FileRemotes(tmp_path / "remotes").start()
    repo = remotes.new_repo(name, {"a.yaml": "a: 1\n"})
    objects = tmp_path / "objects"
    objects.mkdir()
    (objects / "repo.yaml").write_text(
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n"
        f"metadata:\n  name: {name}\n  namespace: default\nspec:\n  interval: 1h\n  url: {repo.url}\n"
    )
    assert cli("apply", "-f", str(objects)).returncode == 0


def _bash(script: str, env: dict[str, str], cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    """Run ``script`` as pasted, in a session of its own: whatever it left running (background jobs
    of a snippet that failed or timed out) is killed with it."""
    proc = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", script],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_readme_commands_use_the_virtualenv_made_by_make_install() -> None:
    assert (REPO_ROOT / ".venv" / "bin" / "python").exists(), "run `make install` first"
    assert "\npython - <<" not in README and "`celery -A" not in README


def test_readme_send_task_snippet_enqueues_a_reconcile(cli, ctx, procs, gt_env, tmp_path: Path) -> None:
    block = re.search(r"```bash\n(\.venv/bin/python - <<'EOF'\n.*?\nEOF)\n```", README, re.S)
    assert block, "README lost its send_task example"
    _declare(cli, tmp_path, "podinfo")
    worker = procs("worker", "-c", "2")

    result = _bash(block.group(1), gt_env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("queued ")
    wait_for(lambda: "GitRepository default/podinfo: success" in worker.log(), what="the reconcile to run")


def test_readme_celery_call_command_enqueues_a_reconcile(cli, ctx, procs, gt_env, tmp_path: Path) -> None:
    command = re.search(
        r"`(\.venv/bin/celery -A gitops_tasks\.app:app call gitops\.reconcile [^`]+)`", README
    )
    assert command, "README lost its celery call example"
    _declare(cli, tmp_path, "podinfo")
    worker = procs("worker", "-c", "2")

    result = _bash(command.group(1), gt_env)

    assert result.returncode == 0, result.stderr
    wait_for(lambda: "GitRepository default/podinfo: success" in worker.log(), what="the reconcile to run")


def test_readme_demo_commit_and_push_brings_a_new_revision(cli, procs, gt_env, tmp_path: Path) -> None:
    # Given the example repositories (in a private directory instead of /tmp/gitops-tasks-examples)
    # and the example GitRepositories pointing at them, with a worker and beat running
    examples = tmp_path / "examples"
    block = re.search(r"```bash\n(cd /tmp/gitops-tasks-examples/work/podinfo\n.*?)\n```", README, re.S)
    assert block, "README lost its commit-and-push demo"
    env = {**gt_env, "GITOPS_TASKS_EXAMPLES_DIR": str(examples), "HOME": str(tmp_path / "home")}
    prepared = subprocess.run(
        [sys.executable, "scripts/prepare_examples.py"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert prepared.returncode == 0, prepared.stderr
    sources = (REPO_ROOT / "examples" / "git" / "sources.yaml").read_text()
    (tmp_path / "sources.yaml").write_text(sources.replace("/tmp/gitops-tasks-examples", str(examples)))
    assert cli("apply", "-f", str(tmp_path / "sources.yaml")).returncode == 0
    procs("worker", "-c", "2")
    procs("beat")
    revision = lambda: _podinfo_revision(cli)  # noqa: E731
    first = wait_for(revision, what="podinfo's first revision")

    # When the README's demo steps run as written (no git identity of the user's own: HOME is empty)
    result = _bash(block.group(1).replace("/tmp/gitops-tasks-examples", str(examples)), env)

    # Then the push went through and the new commit becomes podinfo's revision
    assert result.returncode == 0, result.stderr
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=examples / "work" / "podinfo", capture_output=True, text=True
    ).stdout.strip()
    assert first != f"main@sha1:{head}"
    wait_for(lambda: revision() == f"main@sha1:{head}", what="the pushed commit as podinfo's revision")
    assert "podinfo" in result.stdout  # the `get` line at the end of the block


def _podinfo_revision(cli) -> str | None:
    result = cli("get", "gitrepository", "podinfo", "-o", "json")
    if result.returncode != 0:
        return None
    items = json.loads(result.stdout)
    item = items[0] if isinstance(items, list) else items
    return (item.get("status") or {}).get("artifact", {}).get("revision")


def test_readme_receiver_snippet_signs_a_push_that_reconciles_podinfo(cli, ctx, procs, gt_env) -> None:
    # Given the example GitRepositories and a receiver (on a free port instead of 9292)
    block = re.search(r"```bash\n(TOKEN=\$\(openssl rand -hex 20\)\n.*?-d \"\$BODY\")\n```", README, re.S)
    assert block, "README lost its Receiver example"
    assert cli("apply", "-f", "examples/git/sources.yaml").returncode == 0
    port = free_port()
    procs("receiver", "--port", str(port))
    wait_for(lambda: _answers(port), what="the receiver")

    # When the snippet runs as written
    result = _bash(block.group(1).replace("127.0.0.1:9292", f"127.0.0.1:{port}"), gt_env)

    # Then the signed push is accepted and podinfo (not podinfo-stable) is queued on priority
    assert result.returncode == 0, result.stderr
    expected = ["Receiver/default/github created", '{"message": "ok", "requested": 1}']
    assert result.stdout.splitlines() == expected
    queued = [
        json.loads(base64.b64decode(json.loads(raw)["body"]))[1]["name"]
        for raw in ctx.client.lrange(f"{ctx.keys.prefix}priority", 0, -1)
    ]
    assert queued == ["podinfo"]


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


FLUX_GOTK_SYNC = """\
# This manifest was generated by flux. DO NOT EDIT.
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 1m0s
  ref:
    branch: main
  secretRef:
    name: flux-system
  url: {url}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 10m0s
  path: ./clusters/my-cluster
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
"""

# What gotk-components.yaml holds, in brief: Flux's namespace, a CRD and a controller.
FLUX_COMPONENTS = """\
apiVersion: v1
kind: Namespace
metadata:
  name: flux-system
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gitrepositories.source.toolkit.fluxcd.io
spec:
  group: source.toolkit.fluxcd.io
  names: {kind: GitRepository, listKind: GitRepositoryList, plural: gitrepositories, singular: gitrepository}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: source-controller
  namespace: flux-system
spec:
  replicas: 1
  selector: {matchLabels: {app: source-controller}}
  template:
    metadata: {labels: {app: source-controller}}
    spec:
      containers: [{name: manager, image: ghcr.io/fluxcd/source-controller:v1.7.0}]
"""


def test_readme_migration_from_flux_runs_a_flux_bootstrapped_repository(
    cli, ctx, procs, gt_env, tmp_path: Path
) -> None:
    from gitops_tasks.sync.cluster import Cluster
    from tests.gitservers import git, make_bare
    from tests.kubeapi.fixtures import kube_target, unique_name

    block = re.search(r"```bash\n(git -C \"\$FLEET\" rm .*?--wait)\n```", README, re.S)
    assert block, "README lost its migration snippet"
    # Given a repository as `flux bootstrap` writes it, cloned at $FLEET
    bare = make_bare(tmp_path / "fleet.git")
    fleet = tmp_path / "fleet"
    git("clone", "-q", f"file://{bare}", str(fleet))
    git("config", "user.email", "dev@example.test", cwd=fleet)
    git("config", "user.name", "Dev", cwd=fleet)
    ns = unique_name("migrated")
    files = {
        "clusters/my-cluster/flux-system/gotk-components.yaml": FLUX_COMPONENTS,
        "clusters/my-cluster/flux-system/gotk-sync.yaml": FLUX_GOTK_SYNC.format(url=f"file://{bare}"),
        "clusters/my-cluster/flux-system/kustomization.yaml": (
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            "resources:\n- gotk-components.yaml\n- gotk-sync.yaml\n"
        ),
        "clusters/my-cluster/apps.yaml": (
            "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n"
            "metadata: {name: apps, namespace: flux-system}\n"
            "spec: {interval: 10m, path: ./apps, prune: true,\n"
            "       sourceRef: {kind: GitRepository, name: flux-system}}\n"
        ),
        "apps/app.yaml": (
            f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n---\n"
            f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: web, namespace: {ns}}}\ndata: {{k: v}}\n"
        ),
    }
    for rel, text in files.items():
        (fleet / rel).parent.mkdir(parents=True, exist_ok=True)
        (fleet / rel).write_text(text)
    git("add", "-A", cwd=fleet)
    git("commit", "-qm", "Add Flux sync manifests", cwd=fleet)
    git("push", "-q", "origin", "HEAD:main", cwd=fleet)
    # (Flux's deploy key, as step 2 says; a file:// remote reads no key from it)
    (Path(gt_env["GITOPS_TASKS_SECRETS_DIR"]) / "flux-system" / "flux-system").mkdir(parents=True)
    with kube_target(tmp_path / "kube") as kube:
        env = {**gt_env, "GITOPS_TASKS_KUBECONFIG": str(kube.kubeconfig), "FLEET": str(fleet)}
        procs("worker", "-c", "2", env=env)
        procs("beat", env=env)
        # When the README's steps run exactly as written
        result = _bash(block.group(1), env)
        # Then the fleet runs: Flux's components are gone from Git and never reach the cluster
        assert result.returncode == 0, result.stdout + result.stderr
        assert "✔ Kustomization flux-system/flux-system is Ready" in result.stdout, result.stdout
        assert "gotk-components.yaml" not in git("ls-tree", "-r", "--name-only", "main", cwd=bare)
        cluster = Cluster.from_kubeconfig(kube.kubeconfig)
        try:
            wait_for(
                lambda: cluster.get("v1", "ConfigMap", "web", ns) is not None,
                what="apps synced",
                timeout_s=60,
            )
            assert cluster.get("apps/v1", "Deployment", "source-controller", "flux-system") is None
            apps = ctx.catalog.get(ObjectRef("Kustomization", "flux-system", "apps"))
            assert apps is not None and apps.metadata["labels"]["gitops-tasks.io/name"] == "flux-system"
        finally:
            cluster.delete("v1", "Namespace", ns)
            cluster.close()
