"""Flux v1 workload annotations honoured by ImageUpdateAutomation runs: real Redis, real git remote.

Tags written straight into the RedisTagStore stand for a finished scan of the ImageRepository
(the store's state, not a double of our code path); the registry-hook test scans for real.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
import redis

from beat_schedule import entry_for
from gitops_tasks.automation.v1repos import GENERATED_BY, GENERATED_FROM, generated_name
from gitops_tasks.objects.model import Object, ObjectRef
from gitops_tasks.objects.outcome import Outcome
from gitops_tasks.registry.tags import RedisTagStore
from gitops_tasks.tasks import automation as automation_tasks
from gitops_tasks.tasks.context import Context
from gitops_tasks.tasks.registry import reconcile_image_repository
from tests.gitservers import RemoteRepo, git
from tests.registryservers import SpecRegistry

NS = "apps"
TEMPLATE = "v1 release\n{{range .Changed.Changes}}{{.Setter}} {{.OldValue}} -> {{println .NewValue}}{{end}}"


def workload(
    name: str, image: str, annotations: dict[str, str], *, kind: str = "Deployment", container: str = "app"
) -> str:
    notes = "".join(f"    {key}: {json.dumps(value)}\n" for key, value in annotations.items())
    return (
        f"apiVersion: apps/v1\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: {NS}\n"
        f"  annotations:\n{notes}spec:\n  template:\n    spec:\n      containers:\n"
        f"      - name: {container}  # the {name} container\n        image: {image}\n"
    )


AUTO = {"fluxcd.io/automated": "true"}
FILES = {
    "apps/web.yaml": workload("web", "ghcr.io/org/web:1.0.0", {**AUTO, "fluxcd.io/tag.app": "semver:~1.0"}),
    "apps/jobs.yaml": workload(
        "jobs", "ghcr.io/org/jobs:build-9", {**AUTO, "fluxcd.io/tag.app": "glob:build-*"}
    ),
    "apps/agent.yaml": workload(
        "agent", '"ghcr.io/org/agent:v1.0"', {**AUTO, "fluxcd.io/tag.app": r"regex:^v1\."}, kind="DaemonSet"
    ),
    "apps/held.yaml": workload("held", "ghcr.io/org/held:1.0.0", {**AUTO, "fluxcd.io/locked": "true"}),
    "apps/static.yaml": workload("static", "ghcr.io/org/static:1.0.0", {}),
}
TAGS = {
    "ghcr.io/org/web": ["1.0.0", "1.0.5", "1.1.0", "2.0.0", "latest"],
    "ghcr.io/org/jobs": ["build-9", "build-10", "build-20", "release-300", "latest"],
    "ghcr.io/org/agent": ["v1.0", "v1.2", "v1.10", "v2.0", "1.5"],
    "ghcr.io/org/held": ["1.0.0", "9.9.9"],
}
AUTOMATED_IMAGES = ["ghcr.io/org/agent", "ghcr.io/org/jobs", "ghcr.io/org/web"]


def catalog_objects(url: str, **spec: Any) -> list[Object]:
    repo = Object(
        "source.toolkit.fluxcd.io/v1",
        "GitRepository",
        "deploy",
        NS,
        {"url": url, "interval": "1m", "ref": {"branch": "main"}},
    )
    auto_spec = {
        "interval": "7m",
        "sourceRef": {"kind": "GitRepository", "name": "deploy"},
        "git": {
            "commit": {"author": {"name": "Bot", "email": "bot@example.test"}, "messageTemplate": TEMPLATE}
        },
        "update": {"path": "./apps", "strategy": "Setters"},
        **spec,
    }
    return [repo, Object("image.toolkit.fluxcd.io/v1", "ImageUpdateAutomation", "fleet", NS, auto_spec)]


@pytest.fixture
def remote(ctx: Context, file_remote: RemoteRepo) -> RemoteRepo:
    file_remote.commit(FILES, "workloads")
    ctx.catalog.apply(catalog_objects(file_remote.url), entry_for=entry_for)
    return file_remote


@pytest.fixture
def tag_store(ctx: Context) -> Any:
    binary = redis.Redis.from_url(ctx.settings.effective_redis_url())
    yield RedisTagStore(binary, ctx.keys)
    binary.close()


def generated_ref(image: str) -> ObjectRef:
    return ObjectRef("ImageRepository", NS, generated_name(image))


def run(ctx: Context, previous: dict[str, Any] | None = None) -> Outcome:
    obj = ctx.catalog.get(ObjectRef("ImageUpdateAutomation", NS, "fleet"))
    assert obj is not None
    outcome = automation_tasks.reconcile_image_update_automation(obj, previous or {}, ctx)
    assert outcome.result == "success", outcome.message
    return outcome


def scanned(store: RedisTagStore, *images: str) -> None:
    """Stand for finished scans of the generated repositories of ``images``."""
    for image in images:
        store.put(generated_ref(image).key, TAGS[image])


def queued(ctx: Context, queue: str) -> list[tuple[str, str]]:
    """``(object key, reason)`` of the tasks waiting in a real broker queue."""
    out = []
    for raw in ctx.client.lrange(f"{ctx.keys.prefix}{queue}", 0, -1):
        kwargs = json.loads(base64.b64decode(json.loads(raw)["body"]))[1]
        out.append((f"{kwargs['kind']}/{kwargs['namespace']}/{kwargs['name']}", kwargs["reason"]))
    return sorted(out)


def show(remote: RemoteRepo, path: str) -> str:
    return git("show", f"main:{path}", cwd=remote.bare) + "\n"


def generated_repositories(ctx: Context) -> dict[str, Object]:
    return {
        o.name: o
        for o in ctx.catalog.iter_kind("ImageRepository", NS)
        if GENERATED_BY in o.metadata.get("labels", {})
    }


def test_first_run_generates_image_repositories_and_queues_their_scans(
    ctx: Context, remote: RemoteRepo
) -> None:
    # Given workloads whose images nobody scanned yet
    before = git("rev-parse", "main", cwd=remote.bare)
    # When the automation runs
    outcome = run(ctx)
    # Then nothing is committed, but every automated, unlocked workload's image gets a repository
    assert not outcome.changed
    assert git("rev-parse", "main", cwd=remote.bare) == before
    names = sorted(generated_name(image) for image in AUTOMATED_IMAGES)
    generated = generated_repositories(ctx)
    assert sorted(generated) == names
    web = generated[generated_name("ghcr.io/org/web")]
    assert web.name.startswith("v1-org-web-") and len(web.name) <= 63
    assert web.spec == {"image": "ghcr.io/org/web", "interval": "7m"}
    assert web.metadata["labels"] == {GENERATED_BY: "fleet"}
    assert "ImageUpdateAutomation/apps/fleet" in web.metadata["annotations"][GENERATED_FROM]
    # ... whose scans are queued on the real registry queue at once
    reason = "generated by ImageUpdateAutomation apps/fleet"
    assert queued(ctx, "registry") == [(f"ImageRepository/{NS}/{name}", reason) for name in names]
    assert outcome.facts["v1"] == {
        "workloads": 3,
        "lockedWorkloads": 1,
        "images": AUTOMATED_IMAGES,
        "unscannedImages": AUTOMATED_IMAGES,
        "imageRepositories": names,
        "generatedRepositories": names,
    }
    events = [e for e in ctx.events.recent() if e.reason == automation_tasks.REPOSITORIES_GENERATED]
    assert len(events) == 1 and all(name in events[0].message for name in names)
    # A second run creates and changes nothing
    again = run(ctx, outcome.facts)
    assert {n: o.metadata["generation"] for n, o in generated_repositories(ctx).items()} == dict.fromkeys(
        names, 1
    )
    assert again.facts["v1"] == outcome.facts["v1"]
    assert len([e for e in ctx.events.recent() if e.reason == automation_tasks.REPOSITORIES_GENERATED]) == 1


def test_scanned_tags_move_automated_workloads_to_the_tag_their_filter_allows(
    ctx: Context, remote: RemoteRepo, tag_store: RedisTagStore
) -> None:
    first = run(ctx)
    scanned(tag_store, *AUTOMATED_IMAGES, "ghcr.io/org/held")
    before = git("rev-parse", "main", cwd=remote.bare)
    outcome = run(ctx, first.facts)
    assert outcome.changed, outcome.message
    assert git("rev-list", "--count", f"{before}..main", cwd=remote.bare) == "1"
    # semver ~1.0 takes 1.0.5; glob build-* the greatest in natural order; the regex keeps quotes
    expected = {
        "apps/web.yaml": FILES["apps/web.yaml"].replace("web:1.0.0", "web:1.0.5"),
        "apps/jobs.yaml": FILES["apps/jobs.yaml"].replace("jobs:build-9", "jobs:build-20"),
        "apps/agent.yaml": FILES["apps/agent.yaml"].replace("agent:v1.0", "agent:v1.10"),
        "apps/held.yaml": FILES["apps/held.yaml"],
        "apps/static.yaml": FILES["apps/static.yaml"],
    }
    assert {path: show(remote, path) for path in expected} == expected
    message = git("log", "-1", "--format=%B", "main", cwd=remote.bare)
    assert "fluxcd.io/automated ghcr.io/org/web:1.0.0 -> ghcr.io/org/web:1.0.5" in message
    assert "fluxcd.io/automated ghcr.io/org/jobs:build-9 -> ghcr.io/org/jobs:build-20" in message
    assert "ghcr.io/org/web:1.0.5" in outcome.message, "the push event lists the v1 changes"
    assert outcome.facts["v1"]["unscannedImages"] == []
    # Nothing left to do on the next run
    assert not run(ctx, outcome.facts).changed


def test_a_declared_image_repository_is_read_and_replaces_a_generated_one(
    ctx: Context, remote: RemoteRepo, tag_store: RedisTagStore
) -> None:
    run(ctx)
    assert generated_name("ghcr.io/org/web") in generated_repositories(ctx)
    # Given a person now declares the web image (spelled differently) and it has been scanned
    declared = Object(
        "image.toolkit.fluxcd.io/v1",
        "ImageRepository",
        "web",
        NS,
        {"image": "ghcr.io/org/web", "interval": "1m"},
    )
    ctx.catalog.apply([declared], entry_for=entry_for)
    tag_store.put(declared.ref.key, ["1.0.0", "1.0.7"])
    outcome = run(ctx)
    # Then its tags are used and the generated duplicate is gone
    assert outcome.changed
    assert "ghcr.io/org/web:1.0.7" in show(remote, "apps/web.yaml")
    assert generated_name("ghcr.io/org/web") not in generated_repositories(ctx)
    assert "web" in outcome.facts["v1"]["imageRepositories"]
    assert "web" not in outcome.facts["v1"]["generatedRepositories"]
    assert ctx.catalog.get(declared.ref) is not None
    # ... and its next scan with new tags queues the automation reading it (through its status)
    fleet = ObjectRef("ImageUpdateAutomation", NS, "fleet")
    ctx.status.put(fleet, outcome.facts)
    assert automation_tasks.automations_reading(ctx, declared) == [fleet]


def test_generated_repositories_go_when_the_annotation_goes_or_the_workload_is_locked(
    ctx: Context, remote: RemoteRepo
) -> None:
    run(ctx)
    remote.commit(
        {
            "apps/agent.yaml": FILES["apps/agent.yaml"].replace('    fluxcd.io/automated: "true"\n', ""),
            "apps/jobs.yaml": FILES["apps/jobs.yaml"].replace(
                '"true"\n', '"true"\n    fluxcd.io/locked: "true"\n', 1
            ),
        },
        "stop automating agent, lock jobs",
    )
    outcome = run(ctx)
    assert sorted(generated_repositories(ctx)) == [generated_name("ghcr.io/org/web")]
    assert ctx.catalog.get(generated_ref("ghcr.io/org/agent")) is None
    assert outcome.facts["v1"]["workloads"] == 1
    assert outcome.facts["v1"]["lockedWorkloads"] == 2
    events = [e for e in ctx.events.recent() if e.reason == automation_tasks.REPOSITORIES_GENERATED]
    assert "deleted" in events[-1].message and generated_name("ghcr.io/org/agent") in events[-1].message


def test_one_commit_holds_setter_and_v1_changes(
    ctx: Context, remote: RemoteRepo, tag_store: RedisTagStore
) -> None:
    # Given a setter marker (owned by its ImagePolicy, even inside an automated workload)
    marked = workload("api", "ghcr.io/org/api:1.0.0", AUTO).replace(
        "api:1.0.0\n", 'api:1.0.0 # {"$imagepolicy": "apps:api"}\n'
    )
    remote.commit({"apps/api.yaml": marked}, "api with a marker")
    run(ctx)
    image = "ghcr.io/org/api"
    assert ctx.catalog.get(generated_ref(image)) is None, "the marked container is not v1's"
    # ... whose policy then picks a new image, while the v1 images' scans come in
    policy = Object(
        "image.toolkit.fluxcd.io/v1",
        "ImagePolicy",
        "api",
        NS,
        {"imageRepositoryRef": {"name": "api"}, "policy": {"semver": {"range": ">=1"}}},
    )
    ctx.catalog.apply([policy], entry_for=entry_for)
    ctx.status.put(
        policy.ref, {"latestImage": f"{image}:1.2.0", "latestRef": {"name": image, "tag": "1.2.0"}}
    )
    scanned(tag_store, *AUTOMATED_IMAGES)
    before = git("rev-parse", "main", cwd=remote.bare)
    outcome = run(ctx)
    # Then one commit carries both the setter's change and the v1 changes
    assert git("rev-list", "--count", f"{before}..main", cwd=remote.bare) == "1"
    changed = git("show", "--name-only", "--format=", "main", cwd=remote.bare).split()
    assert sorted(changed) == ["apps/agent.yaml", "apps/api.yaml", "apps/jobs.yaml", "apps/web.yaml"]
    assert "api:1.2.0 #" in show(remote, "apps/api.yaml")
    message = git("log", "-1", "--format=%B", "main", cwd=remote.bare)
    assert "apps:api ghcr.io/org/api:1.0.0 -> ghcr.io/org/api:1.2.0" in message
    assert "fluxcd.io/automated ghcr.io/org/web:1.0.0 -> ghcr.io/org/web:1.0.5" in message
    assert outcome.facts["observedPolicies"]


def test_a_bad_tag_filter_skips_that_container_with_an_event(ctx: Context, remote: RemoteRepo) -> None:
    bad = workload("bad", "ghcr.io/org/bad:1.0.0", {**AUTO, "fluxcd.io/tag.app": "semver:not-a-range"})
    remote.commit({"apps/bad.yaml": bad}, "bad filter")
    outcome = run(ctx)
    assert [s["path"] for s in outcome.facts["skippedFiles"]] == ["apps/bad.yaml"]
    assert "Deployment/apps/bad container app" in outcome.facts["skippedFiles"][0]["reason"]
    assert "ghcr.io/org/bad" not in outcome.facts["v1"]["images"]
    events = [e for e in ctx.events.recent() if e.reason == automation_tasks.SKIPPED_FILES]
    assert len(events) == 1 and "semver:not-a-range" in events[0].message


def test_a_scan_finding_new_tags_queues_the_automation_that_generated_it(
    ctx: Context, file_remote: RemoteRepo, spec_registry: SpecRegistry
) -> None:
    # Given a plain-HTTP registry: the declared repository of that host lends `insecure` to ours
    image = f"{spec_registry.host}/org/web"
    file_remote.commit({"apps/web.yaml": workload("web", f"{image}:1.0.0", AUTO)}, "web")
    base = Object(
        "image.toolkit.fluxcd.io/v1",
        "ImageRepository",
        "base",
        NS,
        {"image": f"{spec_registry.host}/org/base", "interval": "1h", "insecure": True},
    )
    ctx.catalog.apply([*catalog_objects(file_remote.url), base], entry_for=entry_for)
    spec_registry.set_tags("org/web", ["1.0.0", "1.1.0", "latest"])
    run(ctx)
    generated = ctx.catalog.get(generated_ref(image))
    assert generated is not None and generated.spec["insecure"] is True
    # When its scan runs and finds tags
    ctx.client.delete(f"{ctx.keys.prefix}automation")
    scan = reconcile_image_repository(generated, {}, ctx)
    assert (scan.result, scan.changed) == ("success", True), scan.message
    # Then the automation is queued, and its run writes the new tag
    assert queued(ctx, "automation") == [
        ("ImageUpdateAutomation/apps/fleet", f"dependency ImageRepository apps/{generated.name}")
    ]
    outcome = run(ctx)
    assert outcome.changed and f"{image}:1.1.0" in show(file_remote, "apps/web.yaml")
    # An unchanged scan queues nothing
    ctx.client.delete(f"{ctx.keys.prefix}automation")
    ctx.guard.release(ObjectRef("ImageUpdateAutomation", NS, "fleet").key)
    again = reconcile_image_repository(generated, {"lastScanResult": scan.facts["lastScanResult"]}, ctx)
    assert (again.result, again.changed) == ("success", False)
    assert queued(ctx, "automation") == []


def test_generated_names_are_dns_names_shared_by_every_spelling_of_a_repository() -> None:
    name = generated_name("nginx")
    assert name == generated_name("docker.io/library/nginx") == generated_name("index.docker.io/nginx")
    assert name.startswith("v1-nginx-") and name != generated_name("ghcr.io/nginx")
    long = generated_name("registry.example.com:5000/Team_A/" + "very-long-path/" * 10 + "app")
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", long) and len(long) <= 63
