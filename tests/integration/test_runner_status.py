"""The runner's status writes on a real Redis: Reconciling only for runs that take a while.

The reconcilers here are small functions standing in for a kind's concern (the runner takes any);
the runner, the lock, its renewer thread and the Redis scripts are the real ones.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from beat_schedule import entry_for
from gitops_tasks.objects.loader import load_text
from gitops_tasks.objects.model import Object
from gitops_tasks.objects.outcome import Outcome
from gitops_tasks.store import runstate
from gitops_tasks.store.summary import condition
from gitops_tasks.tasks import runner
from gitops_tasks.tasks.context import Context

DOC = """
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: app, namespace: default}
spec: {interval: 1h, url: "https://example.com/app.git"}
"""


def declare(ctx: Context) -> Object:
    obj = load_text(DOC, filename="test.yaml")[0]
    ctx.catalog.apply([obj], entry_for=entry_for)
    return obj


def run(ctx: Context, obj: Object, reconciler: Any) -> dict[str, Any]:
    return runner.run(
        obj.ref, reason="manual", ctx=ctx, reconciler=reconciler, enqueue_dependent=lambda _: False
    )


def status_writes(ctx: Context) -> int:
    stats = ctx.client.info("commandstats")
    return int(stats.get("cmdstat_hset", {}).get("calls", 0))


def test_a_quick_run_writes_its_status_once_and_never_shows_reconciling(ctx: Context) -> None:
    obj = declare(ctx)
    ctx.client.config_resetstat()

    result = run(ctx, obj, lambda o, prev, c: Outcome("success", "Succeeded", "ok", revision="main@sha1:1"))

    assert result["result"] == "success"
    assert status_writes(ctx) == 1, "one HSET: the final status"
    status = ctx.status.get(obj.ref)
    assert condition(status, "Ready")["status"] == "True"
    assert condition(status, "Reconciling") is None


def test_a_slow_run_shows_reconciling_while_it_runs_and_the_outcome_after(ctx: Context) -> None:
    obj = declare(ctx)
    seen: list[dict[str, Any]] = []
    release = threading.Event()

    def slow(o: Object, prev: dict[str, Any], c: Context) -> Outcome:
        release.wait(10)
        return Outcome("success", "Succeeded", "done", revision="main@sha1:2")

    worker = threading.Thread(target=lambda: seen.append(run(ctx, obj, slow)))
    worker.start()
    deadline = time.monotonic() + runstate.DEFAULT_RECONCILING_AFTER_S + 5
    while time.monotonic() < deadline and condition(ctx.status.get(obj.ref), "Reconciling") is None:
        time.sleep(0.05)
    during = ctx.status.get(obj.ref)
    release.set()
    worker.join(10)

    assert condition(during, "Reconciling")["status"] == "True", during
    assert seen and seen[0]["result"] == "success"
    after = ctx.status.get(obj.ref)
    assert condition(after, "Reconciling") is None
    assert condition(after, "Ready")["status"] == "True"


def test_a_late_mark_never_overwrites_the_final_status(ctx: Context) -> None:
    # Given a run that finished and released its lock
    obj = declare(ctx)
    run(ctx, obj, lambda o, prev, c: Outcome("success", "Succeeded", "ok", revision="main@sha1:3"))
    final = ctx.status.get(obj.ref)

    # When a Reconciling mark for that run arrives late (its lock token no longer holds the lock)
    stored = runstate.mark_reconciling(
        ctx.client, ctx.keys, obj.ref, status={"conditions": [{"type": "Reconciling"}]}, lock_token="gone"
    )

    # Then nothing is written
    assert stored is False
    assert ctx.status.get(obj.ref) == final


KUSTOMIZATION = """
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: site, namespace: default}
spec: {interval: 1h, path: ./, prune: true, sourceRef: {kind: GitRepository, name: app}}
"""


def test_dependents_are_queued_only_after_the_new_revision_is_stored(ctx: Context) -> None:
    # Given a Kustomization that depends on the repository
    obj = declare(ctx)
    ctx.catalog.apply(load_text(KUSTOMIZATION, filename="k.yaml"), entry_for=entry_for)
    seen_by_dependent: list[str] = []

    def enqueue(dependent: Any) -> bool:
        # What a dependent starting right now would read as its source's revision
        seen_by_dependent.append(ctx.status.get(obj.ref).get("artifact", {}).get("revision", ""))
        return True

    # When a run finds a new revision
    new = Outcome(
        "success",
        "Succeeded",
        "new revision",
        revision="main@sha1:4",
        changed=True,
        facts={"artifact": {"revision": "main@sha1:4"}},
    )
    runner.run(obj.ref, reason="manual", ctx=ctx, reconciler=lambda o, p, c: new, enqueue_dependent=enqueue)

    # Then the dependent was queued once, after the revision was stored
    assert seen_by_dependent == ["main@sha1:4"]
