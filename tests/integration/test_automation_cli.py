"""The automation commands run as real processes: images update, release, automate, lock.

They run through ``python -m gitops_tasks.cli`` (commands of ``gitops_tasks.cli.images``), against
plain git URLs (no Redis) and, for ``--source``, a catalog in a real Redis.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from beat_schedule import entry_for
from gitops_tasks.objects.model import Object
from gitops_tasks.tasks.context import Context
from tests.gitservers import RemoteRepo, git

M = '# {"$imagepolicy": "apps:web"}'
DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: apps
spec:
  template:
    spec:
      containers:
      - name: web
        image: ghcr.io/org/web:1.0.0  # pinned
"""


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gitops_tasks.cli", *args],
        env=env or os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_TASKS_")}
    env["GITOPS_TASKS_DATA_DIR"] = str(tmp_path / "data")
    return env


def test_images_update_rewrites_marked_values_and_exits_0(tmp_path: Path) -> None:
    (tmp_path / "apps").mkdir()
    web = tmp_path / "apps" / "web.yaml"
    web.write_text(f'image: ghcr.io/org/web:1.0.0 {M}\ntag: 1.0.0 # {{"$imagepolicy": "apps:web:tag"}}\n')
    (tmp_path / "apps" / "bad.yaml").write_text(f"x: [ {M}\n")
    done = run_cli("images", "update", str(tmp_path), "--set", "apps:web=ghcr.io/org/web:1.2.0")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "apps/web.yaml:1: ghcr.io/org/web:1.0.0 -> ghcr.io/org/web:1.2.0\napps/web.yaml:2: 1.0.0 -> 1.2.0\n"
    )
    assert done.stderr.startswith("warning: skipped apps/bad.yaml: not valid YAML")
    assert (
        web.read_text()
        == f'image: ghcr.io/org/web:1.2.0 {M}\ntag: 1.2.0 # {{"$imagepolicy": "apps:web:tag"}}\n'
    )
    again = run_cli("images", "update", str(tmp_path), "--set", "apps:web=ghcr.io/org/web:1.2.0")
    assert (again.returncode, again.stdout) == (0, "no changes\n")


def test_images_update_dry_run_and_usage_errors(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(f"image: x:1 {M}\n")
    done = run_cli("images", "update", str(tmp_path), "--set", "apps:web=x:2", "--dry-run")
    assert (done.returncode, done.stdout) == (0, "a.yaml:1: x:1 -> x:2\n")
    assert (tmp_path / "a.yaml").read_text() == f"image: x:1 {M}\n"
    assert run_cli("images", "update", str(tmp_path), "--set", "web=x:2").returncode == 2
    assert run_cli("images", "update", str(tmp_path), "--set", "apps:web=x").returncode == 2
    assert run_cli("images", "update", str(tmp_path / "nope"), "--set", "apps:web=x:2").returncode == 1


def test_release_commits_and_pushes_the_new_image(file_remote: RemoteRepo, cli_env: dict[str, str]) -> None:
    file_remote.commit({"deploy/web.yaml": DEPLOY})
    before = git("rev-parse", "main", cwd=file_remote.bare)
    args = ["--workload", "Deployment/apps/web", "--repo", file_remote.url, "--branch", "main"]
    # A dry run shows the change and commits nothing
    dry = run_cli("release", *args, "--update-image", "ghcr.io/org/web:1.3.0", "--dry-run", env=cli_env)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("Deployment/apps/web: web: ghcr.io/org/web:1.0.0 -> ghcr.io/org/web:1.3.0\n")
    assert git("rev-parse", "main", cwd=file_remote.bare) == before
    # The real release pushes one commit touching only that line
    done = run_cli(
        "release",
        *args,
        "--update-image",
        "ghcr.io/org/web:1.3.0",
        "--author",
        "Rel Ease <rel@x.test>",
        env=cli_env,
    )
    assert done.returncode == 0, done.stderr
    assert "pushed commit" in done.stdout
    assert git("show", "main:deploy/web.yaml", cwd=file_remote.bare) + "\n" == DEPLOY.replace(
        "1.0.0", "1.3.0"
    )
    assert git("log", "-1", "--format=%an <%ae>|%s", "main", cwd=file_remote.bare) == (
        "Rel Ease <rel@x.test>|Release ghcr.io/org/web:1.3.0 to Deployment/apps/web"
    )
    # Locking holds releases back until --force
    assert run_cli("lock", *args, "-m", "incident 42", "--user", "ops", env=cli_env).returncode == 0
    refused = run_cli("release", *args, "--update-image", "ghcr.io/org/web:1.4.0", env=cli_env)
    assert refused.returncode == 1
    assert "locked (incident 42); use --force" in refused.stderr
    forced = run_cli("release", *args, "--update-image", "ghcr.io/org/web:1.4.0", "--force", env=cli_env)
    assert forced.returncode == 0, forced.stderr


def test_automate_and_unlock_round_trip_leaves_the_file_as_it_was(
    file_remote: RemoteRepo, cli_env: dict[str, str]
) -> None:
    file_remote.commit({"deploy/web.yaml": DEPLOY})
    args = ["--workload", "apps:deployment/web", "--repo", file_remote.url, "--path", "deploy"]
    for action in ("automate", "lock", "unlock", "deautomate"):
        done = run_cli(action, *args, env=cli_env)
        assert done.returncode == 0, (action, done.stderr)
    assert git("show", "main:deploy/web.yaml", cwd=file_remote.bare) + "\n" == DEPLOY
    assert git("rev-list", "--count", "main", cwd=file_remote.bare) == "6"
    nothing = run_cli("unlock", *args, env=cli_env)
    assert (nothing.returncode, nothing.stdout) == (0, "Deployment/apps/web: nothing to change\n")


def test_unknown_workload_and_unreachable_repo_exit_1(
    tmp_path: Path, file_remote: RemoteRepo, cli_env: dict[str, str]
) -> None:
    missing = run_cli(
        "automate", "--workload", "Deployment/apps/nope", "--repo", file_remote.url, env=cli_env
    )
    assert missing.returncode == 1 and "not declared" in missing.stderr
    gone = run_cli(
        "automate", "--workload", "Deployment/apps/web", "--repo", (tmp_path / "x.git").as_uri(), env=cli_env
    )
    assert gone.returncode == 1 and gone.stderr.startswith("error: ")


def test_release_on_a_catalog_source(ctx: Context, gt_env: dict[str, str], file_remote: RemoteRepo) -> None:
    file_remote.commit({"deploy/web.yaml": DEPLOY})
    source = Object(
        "source.toolkit.fluxcd.io/v1",
        "GitRepository",
        "deploy",
        "apps",
        {"url": file_remote.url, "interval": "1m", "ref": {"branch": "main"}},
    )
    ctx.catalog.apply([source], entry_for=entry_for)
    done = run_cli(
        "release",
        "--workload",
        "Deployment/apps/web",
        "--source",
        "deploy",
        "-n",
        "apps",
        "--update-image",
        "ghcr.io/org/web:2.0.0",
        env=gt_env,
    )
    assert done.returncode == 0, done.stderr
    assert "web:2.0.0" in git("show", "main:deploy/web.yaml", cwd=file_remote.bare)
    missing = run_cli(
        "release", "-w", "Deployment/apps/web", "--source", "nope", "--update-image", "a:1", env=gt_env
    )
    assert missing.returncode == 1 and "GitRepository default/nope is not in the catalog" in missing.stderr
