"""The catalog through the real CLI against a real Redis: apply, validate, get, delete, suspend."""

from __future__ import annotations

import json
from pathlib import Path

GOOD = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: podinfo
  namespace: flux-system
spec:
  interval: 1m
  url: https://github.com/stefanprodan/podinfo
  ref:
    branch: master
---
apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImagePolicy
metadata:
  name: podinfo
  namespace: flux-system
spec:
  imageRepositoryRef:
    name: podinfo
  policy:
    semver:
      range: 5.0.x
"""

BAD_FIELD = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: broken
spec:
  interval: 1m
  url: https://example.test/repo.git
  ref:
    brnch: main
"""


def test_apply_stores_objects_and_get_lists_them(cli, tmp_path: Path) -> None:
    path = tmp_path / "objects.yaml"
    path.write_text(GOOD)

    applied = cli("apply", "-f", str(path))
    assert applied.returncode == 0, applied.stderr
    assert "GitRepository/flux-system/podinfo created" in applied.stdout
    assert "ImagePolicy/flux-system/podinfo created" in applied.stdout

    again = cli("apply", "-f", str(path))
    assert "GitRepository/flux-system/podinfo unchanged" in again.stdout

    table = cli("get", "gitrepositories", "-A")
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()[:2]
    assert header.split()[:3] == ["NAMESPACE", "NAME", "READY"]
    assert row.split()[:2] == ["flux-system", "podinfo"]
    as_json = json.loads(cli("get", "gitrepository", "podinfo", "-n", "flux-system", "-o", "json").stdout)
    assert as_json["spec"]["url"] == "https://github.com/stefanprodan/podinfo"
    assert as_json["suspended"] is False


def test_bad_document_names_file_line_object_and_field_and_stores_nothing(cli, tmp_path: Path) -> None:
    (tmp_path / "a-good.yaml").write_text(GOOD)
    (tmp_path / "b-bad.yaml").write_text(BAD_FIELD)

    result = cli("apply", "-f", str(tmp_path))

    assert result.returncode == 1
    assert f"{tmp_path / 'b-bad.yaml'}:9:" in result.stderr
    assert "GitRepository default/broken" in result.stderr
    assert "spec.ref.brnch" in result.stderr
    assert "nothing applied" in result.stderr
    listing = cli("get", "gitrepository", "-A")
    assert "podinfo" not in listing.stdout, "a failed apply must store nothing"


def test_dry_run_validates_but_stores_nothing(cli, tmp_path: Path) -> None:
    path = tmp_path / "objects.yaml"
    path.write_text(GOOD)
    result = cli("apply", "-f", str(path), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "created (dry run)" in result.stdout
    assert "no GitRepository objects found" in cli("get", "gitrepository", "-A").stdout


def test_delete_suspend_and_resume(cli, tmp_path: Path, ctx) -> None:
    path = tmp_path / "objects.yaml"
    path.write_text(GOOD)
    cli("apply", "-f", str(path))

    suspended = cli("suspend", "gitrepository", "podinfo", "-n", "flux-system")
    assert suspended.returncode == 0, suspended.stderr
    row = cli("get", "gitrepository", "-n", "flux-system").stdout.splitlines()[1]
    assert "Suspended" in row
    assert ctx.client.zscore(ctx.keys.schedule, "GitRepository/flux-system/podinfo") is None

    assert cli("resume", "gitrepository", "podinfo", "-n", "flux-system").returncode == 0
    assert ctx.client.zscore(ctx.keys.schedule, "GitRepository/flux-system/podinfo") is not None

    deleted = cli("delete", "gitrepository", "podinfo", "-n", "flux-system", "--silent")
    assert deleted.returncode == 0
    missing = cli("delete", "gitrepository", "podinfo", "-n", "flux-system", "--silent")
    assert missing.returncode == 1 and "not found" in missing.stderr
    events = cli("events", "--for", "GitRepository/podinfo", "-n", "flux-system").stdout
    assert "Suspended" in events and "Resumed" in events and "Deleted" in events


def test_unreachable_redis_is_a_clear_error(cli, tmp_path: Path) -> None:
    path = tmp_path / "objects.yaml"
    path.write_text(GOOD)
    result = cli("apply", "-f", str(path), env={"GITOPS_TASKS_REDIS_URL": "redis://:hunter2@127.0.0.1:1/0"})
    assert result.returncode != 0
    assert "cannot reach Redis" in result.stderr
    assert "hunter2" not in result.stderr
