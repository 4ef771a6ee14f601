"""The automation task layer on a real Redis: catalog, statuses, the shared branch lock, events."""

from __future__ import annotations

import base64
import dataclasses
import json
import threading
import time

import pytest

from beat_schedule import entry_for
from gitops_tasks.automation.locking import redis_branch_lock
from gitops_tasks.automation.reconcile import Options, reconcile
from gitops_tasks.objects.model import Object, ObjectRef
from gitops_tasks.objects.outcome import Outcome
from gitops_tasks.store.locks import RunLock
from gitops_tasks.tasks import automation as automation_tasks
from gitops_tasks.tasks.context import Context
from tests.gitservers import RemoteRepo, git

WEB = 'image: ghcr.io/org/web:1.0.0 # {"$imagepolicy": "apps:web"}\n'
API = 'image: ghcr.io/org/api:1.0.0 # {"$imagepolicy": "apps:api"}\n'


def objects(url: str) -> list[Object]:
    def policy(name: str) -> Object:
        return Object(
            "image.toolkit.fluxcd.io/v1",
            "ImagePolicy",
            name,
            "apps",
            {"imageRepositoryRef": {"name": name}, "policy": {"semver": {"range": ">=1"}}},
            {"labels": {"tier": name}},
        )

    def auto(name: str) -> Object:
        spec = {
            "interval": "5m",
            "sourceRef": {"kind": "GitRepository", "name": "deploy"},
            "git": {"commit": {"author": {"name": "Bot", "email": "bot@example.test"}}},
            "update": {"path": "./apps"},
            "policySelector": {"matchLabels": {"tier": name}},
        }
        return Object("image.toolkit.fluxcd.io/v1", "ImageUpdateAutomation", name, "apps", spec)

    repo = Object(
        "source.toolkit.fluxcd.io/v1",
        "GitRepository",
        "deploy",
        "apps",
        {"url": url, "interval": "1m", "ref": {"branch": "main"}},
    )
    return [repo, policy("web"), policy("api"), auto("web"), auto("api")]


@pytest.fixture
def setup(ctx: Context, file_remote: RemoteRepo) -> RemoteRepo:
    file_remote.commit(
        {"apps/web.yaml": WEB, "apps/api.yaml": API, "apps/bad.yaml": WEB.replace(": g", ": [g")}
    )
    ctx.catalog.apply(objects(file_remote.url), entry_for=entry_for)
    for name in ("web", "api"):
        image = f"ghcr.io/org/{name}"
        status = {"latestImage": f"{image}:1.1.0", "latestRef": {"name": image, "tag": "1.1.0"}}
        ctx.status.put(ObjectRef("ImagePolicy", "apps", name), status)
    return file_remote


def automation(ctx: Context, name: str) -> Object:
    obj = ctx.catalog.get(ObjectRef("ImageUpdateAutomation", "apps", name))
    assert obj is not None
    return obj


def queued_polls(ctx: Context) -> list[tuple[ObjectRef, str]]:
    """The tasks waiting in the real ``git`` queue (Celery messages in the Redis broker)."""
    out = []
    for raw in ctx.client.lrange(f"{ctx.keys.prefix}git", 0, -1):
        message = json.loads(raw)
        kwargs = json.loads(base64.b64decode(message["body"]))[1]
        out.append((ObjectRef(kwargs["kind"], kwargs["namespace"], kwargs["name"]), kwargs["reason"]))
    return out


def test_a_push_queues_the_source_poll_and_skipped_files_raise_one_event(
    ctx: Context, setup: RemoteRepo
) -> None:
    ctx.client.delete(f"{ctx.keys.prefix}git")
    web = automation(ctx, "web")
    outcome = automation_tasks.reconcile_image_update_automation(web, {}, ctx)
    assert (outcome.result, outcome.changed) == ("success", True), outcome.message
    queued = queued_polls(ctx)
    assert queued == [
        (ObjectRef("GitRepository", "apps", "deploy"), "dependency ImageUpdateAutomation apps/web")
    ]
    assert "web:1.1.0" in git("show", "main:apps/web.yaml", cwd=setup.bare)
    assert "api:1.0.0" in git("show", "main:apps/api.yaml", cwd=setup.bare)
    events = [e for e in ctx.events.recent() if e.reason == automation_tasks.SKIPPED_FILES]
    assert [(e.name, e.severity) for e in events] == [("web", "error")]
    assert "apps/bad.yaml: not valid YAML" in events[0].message
    # A second run with nothing to do queues nothing and does not repeat the event
    again = automation_tasks.reconcile_image_update_automation(web, {**outcome.facts}, ctx)
    assert (again.changed, len(queued_polls(ctx))) == (False, 1)
    assert len([e for e in ctx.events.recent() if e.reason == automation_tasks.SKIPPED_FILES]) == 1


def test_read_only_switch_pushes_nothing(ctx: Context, setup: RemoteRepo) -> None:
    read_only = Context(dataclasses.replace(ctx.settings, git_readonly=True))
    ctx.client.delete(f"{ctx.keys.prefix}git")
    before = git("rev-parse", "main", cwd=setup.bare)
    outcome = automation_tasks.reconcile_image_update_automation(automation(ctx, "web"), {}, read_only)
    assert outcome.message.startswith("read-only: would commit 1 change(s)")
    assert git("rev-parse", "main", cwd=setup.bare) == before
    assert queued_polls(ctx) == [], "nothing was pushed, so nothing to poll"


def test_the_redis_branch_lock_serialises_writers_of_one_branch(ctx: Context, setup: RemoteRepo) -> None:
    before = git("rev-parse", "main", cwd=setup.bare)
    key = ctx.keys.branch_lock(setup.url, "main")
    pushes: list[tuple[str, int, bool]] = []
    outcomes: dict[str, Outcome] = {}
    start = threading.Barrier(2)

    def run(name: str) -> None:
        def before_push(attempt: int) -> None:
            pushes.append((name, attempt, bool(ctx.client.exists(key))))
            time.sleep(0.3)  # a slow push: the other writer must wait, not race

        # each thread is a separate "worker" with its own Redis connection
        worker = Context(ctx.settings)
        options = Options(
            ctx.settings.resolved_secrets_dir,
            ctx.settings.resolved_cache_dir,
            lock=redis_branch_lock(worker.client, worker.keys, owner=name),
            before_push=before_push,
        )
        start.wait()
        outcomes[name] = reconcile(
            automation(worker, name), {}, catalog=worker.catalog, statuses=worker.status, options=options
        )

    threads = [threading.Thread(target=run, args=(n,)) for n in ("web", "api")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(o.changed for o in outcomes.values()), outcomes
    assert sorted(pushes) == [("api", 1, True), ("web", 1, True)]  # no race, so no retry
    assert git("rev-list", "--count", f"{before}..main", cwd=setup.bare) == "2"
    assert not ctx.client.exists(key)


def test_a_branch_held_too_long_is_a_wait(ctx: Context, setup: RemoteRepo) -> None:
    held = RunLock(ctx.client, ctx.keys.branch_lock(setup.url, "main"), ttl_s=30, owner="other-worker")
    assert held.acquire()
    try:
        options = Options(
            ctx.settings.resolved_secrets_dir,
            ctx.settings.resolved_cache_dir,
            lock=redis_branch_lock(ctx.client, ctx.keys, wait_s=0.2),
        )
        outcome = reconcile(
            automation(ctx, "web"), {}, catalog=ctx.catalog, statuses=ctx.status, options=options
        )
    finally:
        held.release()
    assert (outcome.result, outcome.reason, outcome.retry_after_s) == ("waiting", "BranchLocked", None)
    assert "held by other-worker" in outcome.message


def test_a_branch_lock_held_by_a_worker_expires_with_the_run_lock(ctx: Context, setup: RemoteRepo) -> None:
    # Given a worker pushing an automation's change
    key = ctx.keys.branch_lock(setup.url, "main")
    left_ms: list[int] = []
    run_ctx = ctx.for_run(lambda: left_ms.append(int(ctx.client.pttl(key))))

    # When it holds the branch lock at the push (and might die right there)
    outcome = automation_tasks.reconcile_image_update_automation(automation(ctx, "web"), {}, run_ctx)

    # Then that lock would expire within the run lock's TTL, so the automation is back within the
    # recovery target, not after a minute
    assert outcome.changed, outcome.message
    assert left_ms and 0 < left_ms[0] <= ctx.settings.run_lock_ttl_s * 1000
