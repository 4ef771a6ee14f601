"""Flux v1 annotations: workloads, tag filters, tag choice, byte-exact image and annotation edits."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops_tasks.automation.release import ReleaseError, discover, release, set_policy
from gitops_tasks.automation.v1 import (
    TagPattern,
    automated_updates,
    canonical_repository,
    images_to_scan,
    parse_workload_id,
    split_image,
    workloads_in_text,
)
from gitops_tasks.automation.v1edit import EditError, set_annotation, set_images

DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
  namespace: demo
  annotations:
    fluxcd.io/automated: "true"   # on
    fluxcd.io/tag.podinfod: semver:~1.3
    flux.weave.works/tag.init: regexp:^3.10
spec:
  template:
    spec:
      initContainers:
      - name: init
        image: alpine:3.10.1
      containers:
      - name: podinfod
        image: "stefanprodan/podinfo:1.3.0"  # keep me
      - name: sidecar
        image: ghcr.io/org/sidecar:build-9
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: report
  annotations:
    fluxcd.io/automated: "true"
    fluxcd.io/locked: "true"
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - name: report
            image: ghcr.io/org/report:1.0.0
---
apiVersion: v1
kind: Service
metadata:
  name: podinfo
"""


def test_workloads_and_their_policies() -> None:
    deploy, cron = workloads_in_text(DEPLOY, "w.yaml")
    assert (deploy.id, cron.id) == ("Deployment/demo/podinfo", "CronJob/default/report")
    assert [(c.name, c.image, c.init) for c in deploy.containers] == [
        ("init", "alpine:3.10.1", True),
        ("podinfod", "stefanprodan/podinfo:1.3.0", False),
        ("sidecar", "ghcr.io/org/sidecar:build-9", False),
    ]
    assert (deploy.automated, deploy.locked, cron.automated, cron.locked) == (True, False, True, True)
    assert str(deploy.tag_pattern("podinfod")) == "semver:~1.3"
    assert str(deploy.tag_pattern("init")) == "regex:^3.10"
    assert str(deploy.tag_pattern("sidecar")) == "glob:*"
    assert images_to_scan([deploy, cron]) == ["alpine", "ghcr.io/org/sidecar", "stefanprodan/podinfo"]


@pytest.mark.parametrize(
    ("pattern", "tags", "expected"),
    [
        ("semver:~1.3", ["1.3.0", "1.3.10", "1.3.9", "1.4.0", "latest"], "1.3.10"),
        ("semver:^2", ["v2.0.1", "2.1", "3.0.0"], "2.1"),
        ("glob:1.*", ["1.9", "1.10", "2.0", "latest"], "1.10"),
        ("glob:*", ["build-9", "build-20", "latest"], "build-20"),
        ("*", ["a", "b"], "b"),
        ("glob:latest", ["latest", "1.0"], "latest"),
        ("glob:v[1]?", ["v[1]?", "v11"], "v[1]?"),
        ("regex:^3.10", ["3.10.1", "3.10.12", "3.9.9", "v3.10.99"], "3.10.12"),
        ("regexp:rc", ["1.0-rc1", "1.0"], "1.0-rc1"),
        ("semver:~9", ["1.0.0"], None),
    ],
)
def test_tag_choice(pattern: str, tags: list[str], expected: str | None) -> None:
    assert TagPattern.parse(pattern).choose(tags) == expected


@pytest.mark.parametrize("pattern", ["semver:not a range", "regex:(unclosed"])
def test_invalid_tag_filters_are_errors(pattern: str) -> None:
    with pytest.raises(ValueError, match="tag filter"):
        TagPattern.parse(pattern)


def test_automated_updates_skip_locked_and_unscanned() -> None:
    workloads = workloads_in_text(DEPLOY)
    tags = {
        "stefanprodan/podinfo": ["1.3.0", "1.3.2", "1.4.0"],
        "alpine": ["3.10.1", "3.10.3", "3.11.0"],
        "ghcr.io/org/report": ["1.0.0", "2.0.0"],
    }
    updates = [(w.name, c.name, image) for w, c, image in automated_updates(workloads, tags)]
    assert updates == [
        ("podinfo", "init", "alpine:3.10.3"),
        ("podinfo", "podinfod", "stefanprodan/podinfo:1.3.2"),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Deployment/demo/podinfo", ("Deployment", "demo", "podinfo")),
        ("deployment/podinfo", ("Deployment", "default", "podinfo")),
        ("demo:deployment/podinfo", ("Deployment", "demo", "podinfo")),
        ("cronjob/x/y", ("CronJob", "x", "y")),
    ],
)
def test_workload_ids(text: str, expected: tuple[str, str, str]) -> None:
    assert parse_workload_id(text) == expected


@pytest.mark.parametrize("text", ["Service/x/y", "a/b/c/d", "podinfo", "ns:deployment/x/y"])
def test_bad_workload_ids(text: str) -> None:
    with pytest.raises(ValueError, match="workload"):
        parse_workload_id(text)


def test_image_names() -> None:
    assert split_image("localhost:5000/a/b:1.0@sha256:ab") == ("localhost:5000/a/b", "1.0", "sha256:ab")
    assert split_image("localhost:5000/a/b") == ("localhost:5000/a/b", None, None)
    assert (
        canonical_repository("nginx")
        == canonical_repository("docker.io/library/nginx")
        == "docker.io/library/nginx"
    )
    assert canonical_repository("index.docker.io/org/x") == "docker.io/org/x"


def test_set_images_keeps_every_other_byte() -> None:
    deploy = workloads_in_text(DEPLOY)[0]
    init, podinfod, _ = deploy.containers
    new = set_images(DEPLOY, [(podinfod, "stefanprodan/podinfo:1.3.2"), (init, "alpine:3.10.3")])
    assert new == DEPLOY.replace('"stefanprodan/podinfo:1.3.0"', '"stefanprodan/podinfo:1.3.2"').replace(
        "alpine:3.10.1", "alpine:3.10.3"
    )


@pytest.mark.parametrize(
    ("before", "key", "value", "after"),
    [
        pytest.param(
            "kind: Pod\nmetadata:\n  name: p\n  annotations:\n    a: b  # note\nspec: {}\n",
            "fluxcd.io/automated",
            "true",
            "kind: Pod\nmetadata:\n  name: p\n  annotations:\n    a: b  # note\n"
            '    fluxcd.io/automated: "true"\nspec: {}\n',
            id="append-to-block",
        ),
        pytest.param(
            "kind: Pod\r\nmetadata:\r\n    name: p\r\n    labels:\r\n        x: y\r\n# end\r\nspec: {}",
            "fluxcd.io/locked",
            "true",
            "kind: Pod\r\nmetadata:\r\n    name: p\r\n    labels:\r\n        x: y\r\n    annotations:\r\n"
            '        fluxcd.io/locked: "true"\r\n# end\r\nspec: {}',
            id="new-block-crlf",
        ),
        pytest.param(
            "kind: Pod\nmetadata: {name: p}\n",
            "fluxcd.io/automated",
            "true",
            'kind: Pod\nmetadata: {name: p, annotations: {fluxcd.io/automated: "true"}}\n',
            id="flow-metadata",
        ),
        pytest.param(
            "kind: Pod\nmetadata:\n  name: p\n  annotations:\n    fluxcd.io/automated: 'false'\n",
            "fluxcd.io/automated",
            "true",
            "kind: Pod\nmetadata:\n  name: p\n  annotations:\n    fluxcd.io/automated: 'true'\n",
            id="replace-keeps-quotes",
        ),
        pytest.param(
            "kind: Pod\nmetadata:\n  name: p\n  annotations:\n    a: b\n"
            '    fluxcd.io/locked: "true"\n    c: d\n',
            "fluxcd.io/locked",
            None,
            "kind: Pod\nmetadata:\n  name: p\n  annotations:\n    a: b\n    c: d\n",
            id="remove-one",
        ),
        pytest.param(
            'kind: Pod\nmetadata:\n  annotations:\n    fluxcd.io/locked: "true" # x\n  name: p\n',
            "fluxcd.io/locked",
            None,
            "kind: Pod\nmetadata:\n  name: p\n",
            id="remove-the-only-one",
        ),
    ],
)
def test_annotation_edits(before: str, key: str, value: str | None, after: str) -> None:
    workload = workloads_in_text(before)[0]
    assert set_annotation(before, workload, key, value) == after


def test_annotation_edit_that_would_not_read_back_is_refused() -> None:
    text = "kind: Pod\nmetadata:\n  name: p\n  annotations: [not, a, map]\n"
    with pytest.raises(EditError):
        set_annotation(text, workloads_in_text(text)[0], "fluxcd.io/automated", "true")


def test_release_and_policies_on_a_tree(tmp_path: Path) -> None:
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "w.yaml").write_text(DEPLOY)
    (tmp_path / "apps" / "broken.yaml").write_text("kind: [\n")
    found, skipped = discover(tmp_path)
    assert [(w.file, w.id) for _, _, w in found] == [
        ("apps/w.yaml", "Deployment/demo/podinfo"),
        ("apps/w.yaml", "CronJob/default/report"),
    ]
    assert [path for path, _ in skipped] == ["apps/broken.yaml"]
    edit = release(tmp_path, "Deployment/demo/podinfo", "docker.io/stefanprodan/podinfo:1.3.5", path="apps")
    assert edit.changed and edit.details == [
        "podinfod: stefanprodan/podinfo:1.3.0 -> stefanprodan/podinfo:1.3.5"
    ]
    assert (tmp_path / "apps/w.yaml").read_text() == DEPLOY.replace("podinfo:1.3.0", "podinfo:1.3.5")
    with pytest.raises(ReleaseError, match="locked"):
        release(tmp_path, "CronJob/default/report", "ghcr.io/org/report:2.0.0")
    assert release(tmp_path, "CronJob/default/report", "ghcr.io/org/report:2.0.0", force=True).changed
    with pytest.raises(ReleaseError, match="no container"):
        release(tmp_path, "Deployment/demo/podinfo", "nginx:1")
    with pytest.raises(ReleaseError, match="not declared"):
        release(tmp_path, "Deployment/demo/nope", "nginx:1")

    assert set_policy(tmp_path, "demo:deployment/podinfo", "lock", message="hold", user="me").changed
    locked = workloads_in_text((tmp_path / "apps/w.yaml").read_text())[0]
    assert (locked.locked, locked.policy("locked_msg"), locked.policy("locked_user")) == (True, "hold", "me")
    assert not set_policy(tmp_path, "Deployment/demo/podinfo", "lock", message="hold", user="me").changed
    set_policy(tmp_path, "Deployment/demo/podinfo", "unlock")
    set_policy(tmp_path, "Deployment/demo/podinfo", "deautomate")
    after = (tmp_path / "apps/w.yaml").read_text()
    assert after == DEPLOY.replace("podinfo:1.3.0", "podinfo:1.3.5").replace(
        '    fluxcd.io/automated: "true"   # on\n', ""
    ).replace("report:1.0.0", "report:2.0.0")
    set_policy(tmp_path, "Deployment/demo/podinfo", "automate")
    assert workloads_in_text((tmp_path / "apps/w.yaml").read_text())[0].automated
