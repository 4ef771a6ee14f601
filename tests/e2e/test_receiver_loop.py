"""The webhook loop with real processes and no beat: a GitHub push hook alone makes the engine fetch
the pushed commit and apply it to the cluster (GitRepository and Kustomization at 10m intervals)."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gitservers import RemoteRepo
from tests.integration.test_sync_world import configmap, dump, namespace
from tests.kubeapi.fixtures import KubeTarget, kube_target, unique_name
from tests.procs import free_port, wait_for


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[KubeTarget]:
    with kube_target(tmp_path / "kube") as target:
        yield target


def push_hook(port: int, path: str, token: str, *, url: str, ref: str, delivery: str) -> int:
    body = json.dumps({"ref": ref, "repository": {"clone_url": url, "default_branch": "main"}}).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": "sha256=" + hmac.new(token.encode(), body, hashlib.sha256).hexdigest(),
    }
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 - http://127.0.0.1
        return int(resp.status)


def test_a_github_push_hook_gets_the_commit_applied_without_polling(
    cli, ctx, procs, kube: KubeTarget, file_remote: RemoteRepo, tmp_path: Path
) -> None:
    # Given a repository and a Kustomization at 10m intervals, a GitHub Receiver, no beat
    ns = unique_name("e2e-hook")
    file_remote.commit(
        {"deploy/ns.yaml": dump(namespace(ns)), "deploy/cm.yaml": dump(configmap("app", ns, {"v": "1"}))}
    )
    from gitops_tasks.sync.cluster import Cluster

    cluster = Cluster.from_kubeconfig(kube.kubeconfig)
    token = secrets.token_hex(16)
    secret = {"metadata": {"name": "github-token", "namespace": "default"}, "stringData": {"token": token}}
    cluster.apply({"apiVersion": "v1", "kind": "Secret", **secret})
    objects = tmp_path / "objects.yaml"
    objects.write_text(
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {name: repo}\n"
        f"spec: {{url: '{file_remote.url}', interval: 10m, ref: {{branch: main}}}}\n---\n"
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: app}\n"
        "spec: {interval: 10m, prune: true, path: ./deploy, sourceRef: {kind: GitRepository, name: repo}}\n"
        "---\napiVersion: notification.toolkit.fluxcd.io/v1\nkind: Receiver\nmetadata: {name: github}\n"
        "spec:\n  type: github\n  events: [ping, push]\n  secretRef: {name: github-token}\n"
        "  resources:\n    - {kind: GitRepository, name: repo}\n"
    )
    assert cli("apply", "-f", str(objects)).returncode == 0
    env = {"GITOPS_TASKS_KUBECONFIG": str(kube.kubeconfig)}
    procs("worker", "-c", "2", "-Q", "priority,git,sync", env=env)
    port = free_port()
    procs("receiver", "--port", str(port), "--window", "1", env=env)
    path = wait_for(lambda: _status(ctx, "Receiver", "github").get("webhookPath"), what="Receiver ready")

    def data() -> Any:
        live = cluster.get("v1", "ConfigMap", "app", ns)
        return live["data"] if live else None

    try:
        # When GitHub says main moved, the commit is fetched and applied
        assert push_hook(port, path, token, url=file_remote.url, ref="refs/heads/main", delivery="d1") == 200
        wait_for(lambda: data() == {"v": "1"}, what="first revision applied")
        # And a second push, hooked, is applied too, long before any interval
        head = file_remote.commit({"deploy/cm.yaml": dump(configmap("app", ns, {"v": "2"}))})
        assert push_hook(port, path, token, url=file_remote.url, ref="refs/heads/main", delivery="d2") == 200
        wait_for(lambda: data() == {"v": "2"}, what="second revision applied")
        # (the status is stored once the apply is done)
        wait_for(
            lambda: _status(ctx, "Kustomization", "app").get("lastAppliedRevision") == f"main@sha1:{head}",
            what="the Kustomization's status",
        )
    finally:
        cluster.delete("v1", "Namespace", ns)
        cluster.close()


def _status(ctx: Any, kind: str, name: str) -> dict[str, Any]:
    raw = ctx.client.hget(ctx.keys.status, f"{kind}/default/{name}")
    return json.loads(raw) if raw else {}
