"""``reconcile --with-source``, ``suspend|resume --all`` and the ``--wait`` progress, as real
processes against a real Redis, a worker, a git remote and the Kubernetes API emulator."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitops_tasks.tasks.context import Context
from tests.gitservers import FileRemotes
from tests.integration.test_suspended import applied, objects
from tests.integration.test_sync_world import configmap, dump, namespace
from tests.kubeapi.fixtures import KubeTarget, kube_target, unique_name
from tests.procs import cli_argv


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[KubeTarget]:
    with kube_target(tmp_path / "kube") as target:
        yield target


@pytest.fixture
def remotes(tmp_path: Path) -> FileRemotes:
    return FileRemotes(tmp_path / "remotes").start()


@pytest.fixture
def site(cli, procs, kube: KubeTarget, remotes: FileRemotes, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A Kustomization applied at its GitRepository's first revision (both polled hourly), a
    worker and no beat: nothing runs unless asked. Returns the git repository."""
    ns = unique_name("withsource")
    repo = remotes.new_repo(
        "app", {"site/ns.yaml": dump(namespace(ns)), "site/cm.yaml": dump(configmap("app", ns, {"v": "1"}))}
    )
    (tmp_path / "objects.yaml").write_text(objects(repo.url).replace("path: ./", "path: ./site"))
    assert cli("apply", "-f", str(tmp_path / "objects.yaml")).returncode == 0
    procs("worker", "-c", "2", env={"GITOPS_TASKS_KUBECONFIG": str(kube.kubeconfig)})
    first = cli("reconcile", "kustomization", "site", "--with-source", "--wait", "--timeout", "60s")
    assert first.returncode == 0, first.stdout + first.stderr
    return repo, ns


def test_reconcile_with_source_fetches_the_new_commit_first(cli, ctx: Context, site, tmp_path: Path) -> None:
    # Given the source has a new commit it has not polled yet (its interval is an hour)
    repo, ns = site
    first = applied(ctx)
    assert first == f"main@sha1:{repo.head}"
    repo.commit({"site/cm.yaml": dump(configmap("app", ns, {"v": "2"}))})
    new = f"main@sha1:{repo.head}"

    # When the Kustomization alone is reconciled, it applies the revision its source already has
    alone = cli("reconcile", "kustomization", "site", "--wait", "--timeout", "60s")
    assert alone.returncode == 0, alone.stdout + alone.stderr
    assert applied(ctx) == first
    assert f"✔ applied revision {first}" in alone.stdout.splitlines()

    # When it is reconciled --with-source, the GitRepository is fetched first, then it applies the new one
    both = cli("reconcile", "kustomization", "site", "--with-source", "--wait", "--timeout", "60s")
    assert both.returncode == 0, both.stdout + both.stderr
    assert applied(ctx) == new
    lines = both.stdout.splitlines()
    assert lines[0].startswith("► requested reconcile of GitRepository default/app (")
    assert f"✔ fetched revision {new}" in lines
    assert lines[-1] == f"✔ applied revision {new}"
    assert lines.index(f"✔ fetched revision {new}") < lines.index(f"✔ applied revision {new}")


def repositories(path: Path, names: list[tuple[str, str]]) -> Path:
    path.write_text(
        "---\n".join(
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n"
            f"metadata: {{name: {name}, namespace: {ns}}}\n"
            "spec: {interval: 1h, url: 'https://git.example.test/org/app.git'}\n"
            for ns, name in names
        )
    )
    return path


def test_suspend_and_resume_all_of_a_kind(cli, ctx: Context, tmp_path: Path) -> None:
    # Given three GitRepositories in team-a, one in default and a Kustomization in team-a
    team = [("team-a", "one"), ("team-a", "two"), ("team-a", "three")]
    (tmp_path / "ks.yaml").write_text(
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n"
        "metadata: {name: site, namespace: team-a}\n"
        "spec: {interval: 1h, path: ./, prune: true, sourceRef: {kind: GitRepository, name: one}}\n"
    )
    repos = repositories(tmp_path / "repos.yaml", [*team, ("default", "other")])
    assert cli("apply", "-f", str(repos), "-f", str(tmp_path / "ks.yaml")).returncode == 0

    def suspended() -> set[str]:
        return {obj.ref.key for obj in ctx.catalog.all() if obj.suspended}

    def scheduled(key: str) -> float | None:
        return ctx.client.zscore(ctx.keys.schedule, key)

    # When every GitRepository of team-a is suspended
    done = cli("suspend", "gitrepository", "--all", "-n", "team-a")
    assert done.returncode == 0, done.stderr
    keys = {f"GitRepository/{ns}/{name}" for ns, name in team}
    # Then those three are, and only those, each named in the output, none on the schedule
    assert suspended() == keys
    assert sorted(done.stdout.splitlines()) == sorted(
        f"✔ {k.replace('/team-a/', ' team-a/')} suspended" for k in keys
    )
    assert all(scheduled(k) is None for k in keys)
    assert scheduled("GitRepository/default/other") is not None

    # When they are resumed with --all, they are back on the schedule and due now (not in an hour)
    assert cli("resume", "gitrepository", "--all", "-n", "team-a").returncode == 0
    assert suspended() == set()
    now = time.time()
    assert all((scheduled(k) or now + 1) <= now for k in keys)

    # When -A is given, every namespace's objects of the kind are suspended, other kinds are not
    assert cli("suspend", "gitrepository", "--all", "-A").returncode == 0
    assert suspended() == keys | {"GitRepository/default/other"}

    # A NAME with --all, neither of them, or -A alone are refused
    for args in (["one", "--all"], [], ["one", "-A"]):
        refused = cli("resume", "gitrepository", *args)
        assert refused.returncode != 0 and "error:" in refused.stderr, args
    nothing = cli("suspend", "kustomization", "--all", "-n", "nowhere")
    assert nothing.returncode == 1 and "no Kustomization in namespace nowhere" in nothing.stderr


def read_until(fd: int, text: str, seen: bytearray) -> None:
    """Read ``fd`` (a pty's master) into ``seen`` until ``text`` appears (pytest-timeout bounds it)."""
    while text.encode() not in seen:
        select.select([fd], [], [], 1.0)
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the other side closed: the process ended
            return
        if not chunk:
            return
        seen.extend(chunk)


def app_repository(cli, remotes: FileRemotes, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A GitRepository ``default/app`` in the catalog, polled hourly: its remote repository."""
    repo = remotes.new_repo("app", {"a.yaml": "a: 1\n"})
    path = repositories(tmp_path / "repo.yaml", [("default", "app")])
    path.write_text(path.read_text().replace("https://git.example.test/org/app.git", repo.url))
    assert cli("apply", "-f", str(path)).returncode == 0
    return repo


def wait_argv() -> list[str]:
    return cli_argv("reconcile", "gitrepository", "app", "--wait", "--timeout", "90s")


def test_wait_shows_plain_progress_lines_when_piped(
    cli, ctx: Context, procs, remotes, gt_env, tmp_path
) -> None:
    # Given a GitRepository and no worker yet: the wait has to wait
    repo = app_repository(cli, remotes, tmp_path)
    waiting = subprocess.Popen(
        wait_argv(),
        env=gt_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with waiting:
        assert waiting.stdout is not None
        first, second = waiting.stdout.readline(), waiting.stdout.readline()
        # When a worker comes
        procs("worker", "-c", "1")
        rest, errors = waiting.communicate(timeout=90)
    # Then the output is plain lines (no control characters), the last one what the run fetched
    out = first + second + rest
    assert waiting.returncode == 0, out + errors
    assert first.startswith("► requested reconcile of GitRepository default/app (")
    assert second == "◎ waiting for GitRepository default/app to be reconciled\n"
    assert not any(c in out for c in "\r\x1b"), repr(out)
    lines = out.splitlines()
    assert lines[-2].startswith("✔ GitRepository default/app reconciled: ")
    assert lines[-1] == f"✔ fetched revision main@sha1:{repo.head}"


def test_wait_draws_a_progress_line_on_a_terminal(
    cli, ctx: Context, procs, remotes, gt_env, tmp_path
) -> None:
    # Given a GitRepository, no worker yet, and `reconcile --wait` writing to a terminal
    repo = app_repository(cli, remotes, tmp_path)
    master, slave = pty.openpty()
    waiting = subprocess.Popen(
        wait_argv(),
        env={**gt_env, "TERM": "xterm"},
        stdout=slave,
        stderr=subprocess.PIPE,
    )
    os.close(slave)
    seen = bytearray()
    try:
        # Then it draws a progress line in place while it waits
        read_until(master, "waiting for GitRepository default/app to be reconciled (", seen)
        procs("worker", "-c", "1")
        read_until(master, f"✔ fetched revision main@sha1:{repo.head}", seen)
        assert waiting.wait(timeout=90) == 0
    finally:
        os.close(master)
        if waiting.poll() is None:
            waiting.kill()
        waiting.wait()
        assert waiting.stderr is not None
        waiting.stderr.close()
    text = seen.decode()
    assert "\r\x1b[K" in text
    # and clears it before the outcome, which stays on screen
    final = text.rsplit("\r\x1b[K", 1)[1].replace("\r\n", "\n")
    assert final.startswith("✔ GitRepository default/app reconciled: ")
    assert final.endswith(f"✔ fetched revision main@sha1:{repo.head}\n")
