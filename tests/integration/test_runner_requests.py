"""Requests made while an object runs: none is lost, duplicates and stale holders write nothing.

The first test runs real worker processes against a real git server; the others drive the runner
directly (the runner, its lock, the renewer thread and the Redis scripts are the real ones; the
reconcilers are small functions standing in for a kind's concern).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from beat_schedule import entry_for
from gitops_tasks.objects.loader import load_text
from gitops_tasks.objects.model import Object, ObjectRef
from gitops_tasks.objects.outcome import Outcome
from gitops_tasks.store.summary import condition
from gitops_tasks.tasks import runner
from gitops_tasks.tasks.context import Context
from gitops_tasks.tasks.enqueue import enqueue
from tests.procs import wait_for


def git_repository(name: str, url: str, *, interval: str = "1h") -> str:
    return (
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n"
        f"metadata: {{name: {name}, namespace: default}}\n"
        f"spec: {{interval: {interval}, url: '{url}'}}\n"
    )


def runs(worker: Any) -> int:
    """Runs of the repository the worker logged (every run is logged at DEBUG)."""
    return int(worker.log().count("GitRepository default/fleet: success"))


def test_a_dependency_request_during_a_run_is_served_by_a_later_run(
    cli, ctx: Context, procs, slow_http, tmp_path: Path
) -> None:
    # Given a repository polled hourly whose server answers slowly, and notes, as each request
    # arrives, which run holds the object's run lock; a worker and beat
    repo = slow_http.new_repo("fleet", {"a.yaml": "a: 1\n"})
    (tmp_path / "repo.yaml").write_text(git_repository("fleet", repo.url))
    ref = ObjectRef("GitRepository", "default", "fleet")
    lock_key = ctx.keys.run_lock(ref.key)
    slow_http.observe = lambda: ctx.client.get(lock_key)
    worker = procs("worker", "-c", "2", env={"GITOPS_TASKS_LOG_LEVEL": "DEBUG"})
    procs("beat")
    slow_http.delay_s = 8.0
    assert cli("apply", "-f", str(tmp_path / "repo.yaml")).returncode == 0
    first = wait_for(
        lambda: slow_http.in_flight > 0 and ctx.client.get(lock_key), what="the first poll under its lock"
    )

    # When, while that run holds the lock, a dependency asks for the object (as a scan asks for an
    # automation), and the request's task finds the lock held and leaves the request owed
    assert ctx.client.get(lock_key) == first
    assert enqueue(ctx.app, ctx.guard, ctx.keys, ref, reason="dependency ImagePolicy/default/web")
    wait_for(lambda: ctx.client.hget(ctx.keys.pending, ref.key), what="the request to find the run")
    assert ctx.client.get(lock_key) == first, "the first run must still hold the lock"
    slow_http.delay_s = 0.0

    # Then a second run polls the repository, and it started after the first one had finished:
    # every request was made under one run's lock, and the runs' requests do not interleave
    wait_for(lambda: runs(worker) >= 2, timeout_s=30, what="a poll that started after the request")
    order = [served.seen for served in sorted(slow_http.served, key=lambda served: served.start)]
    runs_in_order = [seen for i, seen in enumerate(order) if i == 0 or seen != order[i - 1]]
    assert None not in runs_in_order, order
    assert runs_in_order[0] == first and len(runs_in_order) >= 2, order
    assert len(runs_in_order) == len(set(runs_in_order)), f"runs interleaved: {order}"
    status = ctx.status.get(ref)
    assert (condition(status, "Ready") or {}).get("status") == "True", status
    assert slow_http.max_in_flight == 1, "never two polls of the repository at once"


def declare(ctx: Context) -> Object:
    obj = load_text(git_repository("app", "https://example.com/app.git"), filename="test.yaml")[0]
    ctx.catalog.apply([obj], entry_for=entry_for)
    return obj


class Blocking:
    """A reconciler whose first run waits for ``release``; records each run's start."""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.running = threading.Event()
        self.release = threading.Event()

    def __call__(self, obj: Object, prev: dict[str, Any], ctx: Context) -> Outcome:
        self.starts.append(time.time())
        if len(self.starts) == 1:
            self.running.set()
            self.release.wait(20)
        return Outcome("success", "Succeeded", f"run {len(self.starts)}", revision="main@sha1:1")


def run_in_thread(target: Any) -> tuple[threading.Thread, list[dict[str, Any]]]:
    results: list[dict[str, Any]] = []
    thread = threading.Thread(target=lambda: results.append(target()))
    thread.start()
    return thread, results


def run(
    ctx: Context, obj: Object, reconcile: Blocking, *, reason: str, task_id: str, requeued: list[str]
) -> Any:
    """One run of ``obj`` as task ``task_id``; what the holder re-queues goes to ``requeued``."""
    return runner.run(
        obj.ref,
        reason=reason,
        ctx=ctx,
        reconciler=reconcile,
        enqueue_dependent=lambda _: False,
        requeue=lambda ref, why: requeued.append(f"{ref} {why}") is None,
        task_id=task_id,
    )


DEPENDENCY = "dependency ImagePolicy/default/web"


@pytest.mark.parametrize(
    ("reason", "task_id", "result", "owed"),
    [
        # a dependency's request (another task): the holder owes a run that starts after it
        (DEPENDENCY, "task-2", "waiting", [DEPENDENCY]),
        # the broker delivering the running task again (its visibility timeout passed): no request
        ("schedule", "task-1", "duplicate", []),
    ],
    ids=["dependency-request", "redelivered-copy"],
)
def test_a_delivery_during_a_run_is_owed_a_later_run_unless_it_is_the_running_task(
    ctx: Context, reason: str, task_id: str, result: str, owed: list[str]
) -> None:
    # Given a run of task "task-1" in progress
    obj = declare(ctx)
    reconcile = Blocking()
    requeued: list[str] = []
    thread, results = run_in_thread(
        lambda: run(ctx, obj, reconcile, reason="schedule", task_id="task-1", requeued=requeued)
    )
    assert reconcile.running.wait(10)

    # When another delivery for the object arrives during the run
    asked = run(ctx, obj, reconcile, reason=reason, task_id=task_id, requeued=requeued)
    reconcile.release.set()
    thread.join(10)

    # Then it returns at once; the holder, once done, re-queues the object for a request only, and
    # then the object is due now (beat serves it even if the re-queue were lost)
    assert asked["result"] == result
    assert results[0]["result"] == "success"
    assert len(reconcile.starts) == 1
    assert requeued == [f"{obj.ref} {why}" for why in owed]
    due = ctx.client.zscore(ctx.keys.schedule, obj.ref.key)
    assert due is not None
    if owed:
        assert due <= time.time()
    else:
        assert due > time.time() + 3000, "next run at the interval"


def test_a_run_that_lost_its_lock_writes_nothing(ctx: Context) -> None:
    # Given a run in progress
    obj = declare(ctx)
    reconcile = Blocking()
    queued: list[ObjectRef] = []
    changed = Outcome("success", "Succeeded", "new", revision="main@sha1:9", changed=True)

    def slow(o: Object, prev: dict[str, Any], c: Context) -> Outcome:
        reconcile(o, prev, c)
        return changed

    thread, results = run_in_thread(
        lambda: runner.run(
            obj.ref, reason="manual", ctx=ctx, reconciler=slow, enqueue_dependent=queued.append
        )
    )
    assert reconcile.running.wait(10)
    before = ctx.status.get(obj.ref)
    events_before = ctx.client.xlen(ctx.keys.events)

    # When its lock expires and another worker takes the object meanwhile
    lock_key = ctx.keys.run_lock(obj.ref.key)
    ctx.client.set(lock_key, "other-worker:abc")
    reconcile.release.set()
    thread.join(10)

    # Then the stale run stores no status and no event, queues no dependent, keeps the other's lock
    assert results[0]["result"] == "discarded"
    assert ctx.status.get(obj.ref) == before
    assert ctx.client.xlen(ctx.keys.events) == events_before
    assert queued == []
    assert ctx.client.get(lock_key) == "other-worker:abc"


def test_a_run_longer_than_its_lock_ttl_keeps_the_object_from_being_sent_again(ctx: Context) -> None:
    # Given a run lasting three lock lifetimes of 1 s (renewed every third of one)
    ctx = Context(dataclasses.replace(ctx.settings, run_lock_ttl_s=1))
    obj = declare(ctx)
    reconcile = Blocking()
    thread, results = run_in_thread(
        lambda: runner.run(
            obj.ref, reason="manual", ctx=ctx, reconciler=reconcile, enqueue_dependent=lambda _: False
        )
    )
    assert reconcile.running.wait(10)

    # When beat looks for due objects during the run
    due_during: list[float] = []
    deadline = time.monotonic() + 3 * ctx.settings.run_lock_ttl_s
    while time.monotonic() < deadline:
        due_during.append(float(ctx.client.zscore(ctx.keys.schedule, obj.ref.key) or 0) - time.time())
        time.sleep(0.2)
    reconcile.release.set()
    thread.join(10)

    # Then the object was never due while its holder ran, and the run kept its lock to the end
    assert min(due_during) > 0, due_during
    assert results[0]["result"] == "success"
    ctx.client.close()


def test_a_catalog_change_made_while_the_object_runs_is_owed_a_run(ctx: Context) -> None:
    # Given an object whose spec changes in the catalog while its run is in progress (a parent
    # Kustomization's sync storing a new revision of it, or a hand apply)
    ref = ObjectRef("GitRepository", "default", "fleet")
    ctx.catalog.apply(load_text(git_repository("fleet", "https://example.test/a.git")), entry_for=entry_for)
    requeued: list[tuple[ObjectRef, str]] = []

    def reconciler(obj: Object, previous: dict[str, Any], c: Context) -> Outcome:
        changed = load_text(git_repository("fleet", "https://example.test/b.git"))
        ctx.catalog.apply(changed, entry_for=entry_for)
        return Outcome("success", "Succeeded", "ran with the old spec")

    runner.run(
        ref,
        reason="manual",
        ctx=ctx,
        reconciler=reconciler,
        enqueue_dependent=lambda _: True,
        requeue=lambda again, why: requeued.append((again, why)) or True,
    )
    # Then its finish owes a run of the new spec: re-queued, and due now rather than in an hour
    assert requeued == [(ref, "changed")]
    assert ctx.client.zscore(ctx.keys.schedule, ref.key) <= time.time() + 1
    assert ctx.client.hget(ctx.keys.pending, ref.key) is None


def test_a_change_between_runs_owes_nothing_extra(ctx: Context) -> None:
    ref = ObjectRef("GitRepository", "default", "fleet")
    for url in ("https://example.test/a.git", "https://example.test/b.git"):
        ctx.catalog.apply(load_text(git_repository("fleet", url)), entry_for=entry_for)
    requeued: list[str] = []
    runner.run(
        ref,
        reason="schedule",
        ctx=ctx,
        reconciler=lambda obj, prev, c: Outcome("success", "Succeeded", obj.spec["url"]),
        enqueue_dependent=lambda _: True,
        requeue=lambda again, why: requeued.append(why) or True,
    )
    # The run read the new spec itself; no second run is owed
    assert requeued == []
    assert ctx.client.zscore(ctx.keys.schedule, ref.key) > time.time() + 3000
