"""Flux v1 automation with real processes: a workload annotated ``fluxcd.io/automated`` in Git, no
ImageRepository declared for its image, and a tag pushed to docker-registry ends as a commit.

automation run → generated ImageRepository → its scan (registry queue) → the scan's new tags queue
the automation → commit and push. Worker and beat are real processes; the test only pushes images,
asks for one scan, and reads the bare repository and the statuses.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gitops_tasks.automation.v1repos import generated_name
from tests.gitservers import RemoteRepo, git
from tests.procs import wait_for
from tests.registryservers import DockerRegistry


def workload(image: str) -> str:
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
  annotations:
    fluxcd.io/automated: "true"
    fluxcd.io/tag.web: semver:~1.0   # patch releases only
spec:
  template:
    spec:
      containers:
      - name: web
        image: {image}   # moved by v1 automation
"""


def objects(url: str, base_image: str) -> str:
    return f"""\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {{name: fleet, namespace: default}}
spec: {{url: '{url}', interval: 1h, ref: {{branch: main}}}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {{name: base, namespace: default}}
spec: {{image: '{base_image}', interval: 1h, insecure: true}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata: {{name: fleet, namespace: default}}
spec:
  interval: 1h
  sourceRef: {{kind: GitRepository, name: fleet}}
  git:
    checkout: {{ref: {{branch: main}}}}
    commit: {{author: {{name: Bot, email: bot@example.test}}}}
  update: {{path: ./apps, strategy: Setters}}
"""


def status(ctx: Any, kind: str, name: str) -> dict[str, Any]:
    raw = ctx.client.hget(ctx.keys.status, f"{kind}/default/{name}")
    return json.loads(raw) if raw else {}


def test_a_pushed_tag_reaches_an_automated_workload_without_a_declared_repository(
    cli, ctx, procs, docker_registry: DockerRegistry, file_remote: RemoteRepo, image_path: str, tmp_path: Path
) -> None:
    # Given an automated workload at 1.0.0 whose image has a newer patch and a newer minor release
    image = f"{docker_registry.host}/{image_path}"
    docker_registry.push(image_path, "1.0.0", "1.0.1", "1.1.0")
    docker_registry.push(f"{image_path}-base", "1")
    file_remote.commit({"apps/web.yaml": workload(f"{image}:1.0.0")}, "web")
    initial = git("rev-parse", "main", cwd=file_remote.bare)
    # And one automation, with only a declared repository of that (plain HTTP) registry host
    (tmp_path / "objects.yaml").write_text(objects(file_remote.url, f"{image}-base"))
    applied = cli("apply", "-f", str(tmp_path / "objects.yaml"))
    assert applied.returncode == 0, applied.stderr
    procs("worker", "-c", "2")
    procs("beat")

    # Then the automation generates a repository for the image, its scan runs, and the scan's
    # new tags bring the automation back to commit the allowed patch release
    def web() -> str:
        return git("show", "main:apps/web.yaml", cwd=file_remote.bare) + "\n"

    wait_for(lambda: f"{image}:1.0.1" in web(), timeout_s=60, what="commit of 1.0.1")
    assert web() == workload(f"{image}:1.0.1")
    assert git("rev-list", "--count", f"{initial}..main", cwd=file_remote.bare) == "1"
    generated = generated_name(image)
    assert status(ctx, "ImageRepository", generated)["lastScanResult"]["tagCount"] == 3
    v1 = wait_for(lambda: status(ctx, "ImageUpdateAutomation", "fleet").get("v1"), what="v1 status")
    assert v1["workloads"] == 1 and v1["generatedRepositories"] == [generated]

    # When a newer patch is pushed and the generated repository is scanned
    docker_registry.push(image_path, "1.0.2")
    scanned = cli("reconcile", "imagerepository", generated, "--wait", "--timeout", "30s")
    assert scanned.returncode == 0, scanned.stdout + scanned.stderr
    # Then the automation (interval 1h) runs at once and commits it
    wait_for(lambda: f"{image}:1.0.2" in web(), timeout_s=60, what="commit of 1.0.2")
    assert git("rev-list", "--count", f"{initial}..main", cwd=file_remote.bare) == "2"
