"""Beat + workers as real processes on a real Redis: dynamic schedule, dedupe, redelivery."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.gitservers import FileRemotes
from tests.procs import wait_for


def git_repository(name: str, url: str, *, interval: str = "1m", extra: str = "") -> str:
    return (
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n"
        f"metadata:\n  name: {name}\n  namespace: default\n"
        f"spec:\n  interval: {interval}\n  url: {url}\n{extra}"
    )


def status(ctx, name: str) -> dict:
    raw = ctx.client.hget(ctx.keys.status, f"GitRepository/default/{name}")
    return json.loads(raw) if raw else {}


def revision(ctx, name: str) -> str:
    return status(ctx, name).get("artifact", {}).get("revision", "")


def runs_in_log(proc, name: str) -> int:
    """Runs of ``name`` a worker logged: all of them at DEBUG (see ``DEBUG``), changes at INFO."""
    return proc.log().count(f"GitRepository default/{name}: success")


#: Workers whose every run is logged (at INFO an unchanged run is not), for ``runs_in_log``.
DEBUG = {"GITOPS_TASKS_LOG_LEVEL": "DEBUG"}


@pytest.fixture
def remotes(tmp_path: Path) -> FileRemotes:
    return FileRemotes(tmp_path / "remotes").start()


def test_polled_revision_is_recorded_and_new_commits_are_seen(
    cli, ctx, procs, remotes, tmp_path: Path
) -> None:
    # Given a repository declared with a 1 s interval, a worker and beat
    repo = remotes.new_repo("app", {"deploy.yaml": "replicas: 1\n"})
    (tmp_path / "repo.yaml").write_text(git_repository("app", repo.url, interval="1s"))
    assert cli("apply", "-f", str(tmp_path / "repo.yaml")).returncode == 0
    procs("worker", "-c", "2")
    procs("beat")

    # Then the revision is recorded with an event
    wait_for(lambda: revision(ctx, "app") == f"main@sha1:{repo.head}", what="first revision")
    # When a commit lands, the next poll records it
    new_head = repo.commit({"deploy.yaml": "replicas: 2\n"})
    wait_for(lambda: revision(ctx, "app") == f"main@sha1:{new_head}", what="new revision")
    events = cli("events", "--for", "GitRepository/app").stdout
    assert events.count("NewArtifact") == 2, events
    table = cli("get", "gitrepository", "app").stdout
    assert "Ready" in table and new_head[:12] in table


def test_schedule_changes_take_effect_without_restart(cli, ctx, procs, remotes, tmp_path: Path) -> None:
    repo = remotes.new_repo("fast", {"a.yaml": "a: 1\n"})
    objects = tmp_path / "objects.yaml"
    objects.write_text(git_repository("fast", repo.url, interval="1s"))
    cli("apply", "-f", str(objects))
    worker = procs("worker", "-c", "2", env=DEBUG)
    procs("beat")
    wait_for(lambda: runs_in_log(worker, "fast") >= 3, what="three polls at a 1s interval")

    # Changing the interval to 1h stops the frequent polls (after the one the change triggers)
    objects.write_text(git_repository("fast", repo.url, interval="1h"))
    assert "configured" in cli("apply", "-f", str(objects)).stdout
    time.sleep(2)
    settled = runs_in_log(worker, "fast")
    time.sleep(3)
    assert runs_in_log(worker, "fast") == settled

    # A new object is picked up by the running beat
    other = remotes.new_repo("added", {"b.yaml": "b: 1\n"})
    (tmp_path / "added.yaml").write_text(git_repository("added", other.url, interval="1s"))
    cli("apply", "-f", str(tmp_path / "added.yaml"))
    wait_for(lambda: revision(ctx, "added") == f"main@sha1:{other.head}", what="added object polled")

    # Suspend stops polling; resume starts it again
    cli("suspend", "gitrepository", "added")
    time.sleep(1.5)
    suspended_runs = runs_in_log(worker, "added")
    time.sleep(3)
    assert runs_in_log(worker, "added") == suspended_runs
    cli("resume", "gitrepository", "added")
    wait_for(lambda: runs_in_log(worker, "added") > suspended_runs, what="poll after resume")

    # Delete removes it from the schedule and from status
    cli("delete", "gitrepository", "added", "--silent")
    time.sleep(1.5)
    deleted_runs = runs_in_log(worker, "added")
    time.sleep(3)
    assert runs_in_log(worker, "added") == deleted_runs
    assert status(ctx, "added") == {}


def test_worker_logs_changes_and_failures_but_not_unchanged_runs(
    cli, ctx, procs, remotes, tmp_path: Path
) -> None:
    # Given a repository polled every second by a worker at the default log level (INFO)
    repo = remotes.new_repo("quiet", {"a.yaml": "a: 1\n"})
    (tmp_path / "repo.yaml").write_text(git_repository("quiet", repo.url, interval="1s"))
    cli("apply", "-f", str(tmp_path / "repo.yaml"))
    worker = procs("worker", "-c", "2")
    procs("beat")
    wait_for(lambda: revision(ctx, "quiet") == f"main@sha1:{repo.head}", what="first poll")
    time.sleep(3)  # a few more polls that find nothing new

    # Then the first revision is logged once; unchanged polls and Celery's per-task lines are not
    log = worker.log()
    assert runs_in_log(worker, "quiet") == 1, log
    assert "succeeded in" not in log and "Task gitops.git.poll" not in log, log

    # When a commit lands, the new revision is logged
    new_head = repo.commit({"a.yaml": "a: 2\n"})
    wait_for(lambda: revision(ctx, "quiet") == f"main@sha1:{new_head}", what="new revision")
    wait_for(lambda: runs_in_log(worker, "quiet") == 2, what="second INFO line")
    assert new_head[:12] in worker.log()


def test_backlog_never_queues_more_than_one_task_per_object(cli, ctx, procs, remotes, tmp_path: Path) -> None:
    # Given 50 objects due every second and beat running with no worker for several intervals
    repo = remotes.new_repo("shared", {"a.yaml": "a: 1\n"})
    docs = [git_repository(f"r{i}", repo.url, interval="1s") for i in range(50)]
    (tmp_path / "many.yaml").write_text("---\n".join(docs))
    cli("apply", "-f", str(tmp_path / "many.yaml"))
    procs("beat")
    queue = f"{ctx.keys.prefix}git"  # the broker's keys carry GITOPS_TASKS_KEY_PREFIX too
    wait_for(lambda: ctx.client.llen(queue) >= 50, what="50 queued polls")
    time.sleep(4)

    # Then exactly one task per object is queued
    assert ctx.client.llen(queue) == 50
    # When a worker catches up, every object is polled
    procs("worker", "-c", "4")
    wait_for(lambda: all(revision(ctx, f"r{i}") for i in range(50)), timeout_s=60, what="all polled")


def test_manual_reconcile_waits_for_the_result(cli, ctx, procs, remotes, tmp_path: Path) -> None:
    repo = remotes.new_repo("manual", {"a.yaml": "a: 1\n"})
    objects = tmp_path / "objects"
    objects.mkdir()
    (objects / "ok.yaml").write_text(git_repository("manual", repo.url, interval="1h"))
    (objects / "bad.yaml").write_text(
        git_repository("missing", remotes.url("does-not-exist"), interval="1h", extra="  timeout: 5s\n")
    )
    assert cli("apply", "-f", str(objects)).returncode == 0
    procs("worker", "-c", "2")

    ok = cli("reconcile", "gitrepository", "manual", "--wait", "--timeout", "30s")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "reconciled" in ok.stdout and repo.head in ok.stdout

    failed = cli("reconcile", "gitrepository", "missing", "--wait", "--timeout", "30s")
    assert failed.returncode == 1
    assert "RepositoryNotFound" in failed.stderr or "not found" in failed.stderr.lower()


def test_worker_killed_mid_poll_is_redelivered_and_completes(
    cli, ctx, procs, tmp_path: Path, slow_http
) -> None:
    # Given a repository whose server answers slowly, and a worker that takes the poll
    repo = slow_http.new_repo("slow", {"a.yaml": "a: 1\n"})
    (tmp_path / "slow.yaml").write_text(
        git_repository("slow", repo.url, interval="1h", extra="  timeout: 60s\n")
    )
    cli("apply", "-f", str(tmp_path / "slow.yaml"))
    fast_redelivery = {"GITOPS_TASKS_VISIBILITY_TIMEOUT_S": "3", "GITOPS_TASKS_RUN_LOCK_TTL_S": "3"}
    first = procs("worker", "-c", "1", env=fast_redelivery)
    slow_http.delay_s = 4.0
    requested = cli("reconcile", "gitrepository", "slow")
    assert requested.returncode == 0
    wait_for(lambda: slow_http.requests > 0, what="the poll to reach the server")

    # When the worker is killed mid-poll
    first.kill()
    assert status(ctx, "slow").get("artifact") is None
    slow_http.delay_s = 0.0

    # Then another worker gets the same task back and completes it
    procs("worker", "-c", "1", env=fast_redelivery)
    wait_for(lambda: revision(ctx, "slow") == f"main@sha1:{repo.head}", timeout_s=60, what="redelivered poll")
    token = ctx.client.hget(ctx.keys.requests, "GitRepository/default/slow")
    assert status(ctx, "slow")["lastHandledReconcileAt"] == token


def test_one_object_is_never_reconciled_by_two_workers_at_once(
    cli, ctx, procs, tmp_path: Path, slow_http
) -> None:
    # Given a slow repository and two workers with four threads each
    repo = slow_http.new_repo("contended", {"a.yaml": "a: 1\n"})
    (tmp_path / "repo.yaml").write_text(git_repository("contended", repo.url, interval="1h"))
    cli("apply", "-f", str(tmp_path / "repo.yaml"))
    procs("worker", "-c", "4")
    procs("worker", "-c", "4")
    assert cli("reconcile", "gitrepository", "contended", "--wait").returncode == 0
    slow_http.delay_s = 0.5
    slow_http.max_in_flight = 0

    # When six reconciles are requested at once (each bypasses the enqueue guard, as a person may)
    for _ in range(6):
        assert cli("reconcile", "gitrepository", "contended").returncode == 0
    token = ctx.client.hget(ctx.keys.requests, "GitRepository/default/contended")
    wait_for(
        lambda: status(ctx, "contended").get("lastHandledReconcileAt") == token, timeout_s=60, what="done"
    )

    # Then the server never saw two polls of that repository at the same time
    assert slow_http.requests > 1
    assert slow_http.max_in_flight == 1


def test_a_second_beat_stands_by_and_takes_over(cli, ctx, procs, remotes, tmp_path: Path) -> None:
    # Given two beats and a worker, and an object polled every second
    repo = remotes.new_repo("ha", {"a.yaml": "a: 1\n"})
    (tmp_path / "repo.yaml").write_text(git_repository("ha", repo.url, interval="1s"))
    cli("apply", "-f", str(tmp_path / "repo.yaml"))
    worker = procs("worker", "-c", "2", env=DEBUG)
    first = procs("beat", name="beat-first")
    wait_for(lambda: ctx.client.get(ctx.keys.beat_leader), what="a beat to lead")
    leader_token = ctx.client.get(ctx.keys.beat_leader)
    procs("beat", name="beat-standby")
    wait_for(lambda: runs_in_log(worker, "ha") >= 2, what="polls under the first beat")
    assert ctx.client.get(ctx.keys.beat_leader) == leader_token, "the standby must not take the lead"

    # When the leading beat dies without a goodbye
    first.kill()
    before = runs_in_log(worker, "ha")

    # Then the standby takes over once the leader lock expires and polling goes on
    wait_for(
        lambda: ctx.client.get(ctx.keys.beat_leader) not in (None, leader_token),
        timeout_s=30,
        what="the standby to lead",
    )
    wait_for(lambda: runs_in_log(worker, "ha") >= before + 2, timeout_s=30, what="polls under the standby")


def test_events_follow_prints_new_events_as_they_happen(
    cli, ctx, procs, remotes, gt_env, tmp_path: Path
) -> None:
    import subprocess

    from tests.procs import cli_argv

    repo = remotes.new_repo("followed", {"a.yaml": "a: 1\n"})
    (tmp_path / "repo.yaml").write_text(git_repository("followed", repo.url, interval="1h"))
    cli("apply", "-f", str(tmp_path / "repo.yaml"))
    follower = subprocess.Popen(
        cli_argv("events", "--follow", "--for", "GitRepository/followed"),
        env=gt_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        procs("worker", "-c", "1")
        assert cli("reconcile", "gitrepository", "followed", "--wait").returncode == 0
        header = follower.stdout.readline()  # blocks until the event arrives (pytest-timeout bounds it)
        line = follower.stdout.readline()
        assert header.split()[:3] == ["LAST", "SEEN", "TYPE"], header
        assert "GitRepository/followed" in line and "NewArtifact" in line and repo.head[:12] in line
    finally:
        follower.terminate()
        follower.wait(10)
        follower.stdout.close()
