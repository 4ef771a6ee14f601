"""export, delete's confirmation, get's groupings, tables, colour and --watch, run as real processes
against a real Redis."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.procs import cli_argv

OBJECTS = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: podinfo
  namespace: flux-system
  labels:
    team: web
  annotations:
    note: "kept as written"
spec:
  interval: 1m
  url: https://github.com/stefanprodan/podinfo
  ref:
    branch: master
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
spec:
  interval: 10m
  path: ./kustomize
  prune: true
  sourceRef:
    kind: GitRepository
    name: podinfo
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: other
  namespace: team-a
spec:
  interval: 5m
  url: https://git.example.test/org/other.git
"""


def _apply(cli, tmp_path: Path, text: str = OBJECTS) -> None:
    path = tmp_path / "objects.yaml"
    path.write_text(text)
    applied = cli("apply", "-f", str(path))
    assert applied.returncode == 0, applied.stderr


def test_export_round_trips_through_apply_unchanged(cli, ctx, tmp_path: Path) -> None:
    # Given objects applied, then applied again (generation 1, and one re-apply changes nothing)
    _apply(cli, tmp_path)
    before = ctx.client.hgetall(ctx.keys.catalog)

    # When every object of every namespace is exported
    exported = cli("export", "all", "-A")
    assert exported.returncode == 0, exported.stderr

    # Then the stream is the objects as written: one `---` document each, no status nor generation
    assert exported.stdout.count("---\n") == 3
    assert "status" not in exported.stdout and "generation" not in exported.stdout
    assert "team: web" in exported.stdout and "note: kept as written" in exported.stdout

    # And applying it back changes nothing, and exporting again gives the same bytes
    path = tmp_path / "exported.yaml"
    path.write_text(exported.stdout)
    again = cli("apply", "-f", str(path))
    assert again.returncode == 0, again.stderr
    assert [line.rsplit(" ", 1)[1] for line in again.stdout.splitlines()] == ["unchanged"] * 3
    assert cli("export", "all", "-A").stdout == exported.stdout
    # And the catalog holds the same objects, generation 1 still (only where they came from moved)
    after = ctx.client.hgetall(ctx.keys.catalog)
    assert _declared(after) == _declared(before)
    assert {json.loads(raw)["metadata"]["generation"] for raw in after.values()} == {1}


def _declared(catalog: dict[str, str]) -> dict[str, dict]:
    return {key: {k: v for k, v in json.loads(raw).items() if k != "source"} for key, raw in catalog.items()}


def test_export_of_one_kind_one_name_or_a_missing_one(cli, tmp_path: Path) -> None:
    _apply(cli, tmp_path)

    one = cli("export", "gitrepository", "podinfo", "-n", "flux-system")
    assert one.returncode == 0, one.stderr
    assert one.stdout.startswith("---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n")
    assert one.stdout.count("---\n") == 1

    kind = cli("export", "gitrepositories", "-A")
    assert kind.stdout.count("kind: GitRepository") == 2 and "Kustomization" not in kind.stdout

    missing = cli("export", "gitrepository", "nope", "-n", "flux-system")
    assert missing.returncode == 1 and "not found" in missing.stderr and missing.stdout == ""


def _delete(gt_env, *args: str, stdin: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_argv("delete", "gitrepository", "podinfo", "-n", "flux-system", *args),
        env=gt_env,
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _exists(cli) -> bool:
    return cli("get", "gitrepository", "podinfo", "-n", "flux-system").returncode == 0


def test_delete_asks_and_only_yes_deletes(cli, gt_env, tmp_path: Path) -> None:
    _apply(cli, tmp_path)

    # "n" keeps the object
    kept = _delete(gt_env, stdin="n\n")
    assert kept.returncode == 1 and "Are you sure you want to delete" in kept.stderr
    assert "nothing deleted" in kept.stderr and _exists(cli)

    # stdin at its end (no terminal, nothing piped) keeps it too, and says how to delete anyway
    closed = _delete(gt_env, stdin=None)
    assert closed.returncode == 1 and "--silent" in closed.stderr and _exists(cli)

    # "y" deletes
    deleted = _delete(gt_env, stdin="y\n")
    assert deleted.returncode == 0, deleted.stderr
    assert "GitRepository/flux-system/podinfo deleted" in deleted.stdout and not _exists(cli)


def test_delete_silent_asks_nothing(cli, gt_env, tmp_path: Path) -> None:
    _apply(cli, tmp_path)
    deleted = _delete(gt_env, "--silent", stdin=None)
    assert deleted.returncode == 0, deleted.stderr
    assert "Are you sure" not in deleted.stderr and not _exists(cli)

    # A missing object is an error before any question
    missing = _delete(gt_env, stdin=None)
    assert missing.returncode == 1 and "not found" in missing.stderr and "Are you sure" not in missing.stderr
