"""The catalog's schedule entries and indexes on a real Redis."""

from __future__ import annotations

import time

from beat_schedule import entry_for
from gitops_tasks.objects import dependents_of
from gitops_tasks.objects.model import Object
from gitops_tasks.store import marker
from gitops_tasks.store.catalog import DEFAULT_FIRST_RUN_RATE, INDEX_VERSION


def image_repo(name: str, namespace: str = "default") -> Object:
    return Object(
        api_version="image.toolkit.fluxcd.io/v1",
        kind="ImageRepository",
        name=name,
        namespace=namespace,
        spec={"image": f"ghcr.io/team/{name}", "interval": "5m"},
    )


def policy(
    name: str, repository: str, *, namespace: str = "default", repository_namespace: str | None = None
) -> Object:
    ref = {"name": repository, **({"namespace": repository_namespace} if repository_namespace else {})}
    return Object(
        api_version="image.toolkit.fluxcd.io/v1",
        kind="ImagePolicy",
        name=name,
        namespace=namespace,
        spec={"imageRepositoryRef": ref, "policy": {"semver": {"range": ">=1.0"}}},
    )


def policies_of(ctx, name: str, namespace: str = "default") -> list[str]:
    return [p.name for p in ctx.catalog.image_policies_of(image_repo(name, namespace).ref)]


def repo(name: str, interval: str = "1m") -> Object:
    return Object(
        api_version="source.toolkit.fluxcd.io/v1",
        kind="GitRepository",
        name=name,
        namespace="default",
        spec={"url": "https://example.test/r.git", "interval": interval},
    )


def kustomization(name: str, *, source: str, depends: list[str] | None = None) -> Object:
    spec: dict = {
        "interval": "10m",
        "path": "./",
        "prune": True,
        "sourceRef": {"kind": "GitRepository", "name": source},
    }
    if depends:
        spec["dependsOn"] = [{"name": d} for d in depends]
    return Object(
        api_version="kustomize.toolkit.fluxcd.io/v1",
        kind="Kustomization",
        name=name,
        namespace="default",
        spec=spec,
    )


def automation(name: str, source: str) -> Object:
    return Object(
        api_version="image.toolkit.fluxcd.io/v1beta2",
        kind="ImageUpdateAutomation",
        name=name,
        namespace="default",
        spec={
            "interval": "10m",
            "sourceRef": {"kind": "GitRepository", "name": source},
            "git": {"commit": {"author": {"name": "bot", "email": "bot@example.test"}}},
            "update": {"path": "./", "strategy": "Setters"},
        },
    )


def test_a_single_new_object_is_due_at_once(ctx) -> None:
    before = time.time()
    ctx.catalog.apply([repo("one")], entry_for=entry_for)
    assert ctx.client.zscore(ctx.keys.schedule, "GitRepository/default/one") <= time.time()
    assert ctx.client.zscore(ctx.keys.schedule, "GitRepository/default/one") >= before


def test_a_bulk_apply_spreads_first_runs_within_the_interval(ctx) -> None:
    objects = [repo(f"r{i}") for i in range(1000)]
    now = time.time()
    ctx.catalog.apply(objects, entry_for=entry_for, now=now)
    scores = sorted(score for _key, score in ctx.client.zrange(ctx.keys.schedule, 0, -1, withscores=True))
    assert len(scores) == 1000
    assert scores[0] == now
    assert scores[-1] - now <= 1000 / DEFAULT_FIRST_RUN_RATE
    assert scores[-1] - now > 1000 / DEFAULT_FIRST_RUN_RATE * 0.9
    # and re-applying the same objects moves nothing
    ctx.catalog.apply(objects, entry_for=entry_for, now=now + 100)
    assert sorted(s for _k, s in ctx.client.zrange(ctx.keys.schedule, 0, -1, withscores=True)) == scores


def test_spread_never_exceeds_a_short_interval(ctx) -> None:
    objects = [repo(f"f{i}", interval="2s") for i in range(2000)]
    now = time.time()
    ctx.catalog.apply(objects, entry_for=entry_for, now=now)
    last = ctx.client.zrange(ctx.keys.schedule, -1, -1, withscores=True)[0][1]
    assert last - now <= 2.0


def test_image_policies_are_found_through_their_repository_index(ctx) -> None:
    # Given two repositories and policies naming them (one from another namespace)
    ctx.catalog.apply(
        [
            image_repo("a"),
            image_repo("b"),
            policy("p1", "a"),
            policy("p2", "a"),
            policy("p3", "b"),
            policy("p4", "a", namespace="other", repository_namespace="default"),
            policy("p5", "a", namespace="other"),
        ],
        entry_for=entry_for,
    )
    # Then each repository finds exactly the policies that name it, through its index set
    assert policies_of(ctx, "a") == ["p1", "p2", "p4"]
    assert policies_of(ctx, "b") == ["p3"]
    assert policies_of(ctx, "a", "other") == ["p5"]
    assert ctx.client.smembers(ctx.keys.catalog_dependents("ImageRepository/default/a")) == {
        "ImagePolicy/default/p1",
        "ImagePolicy/default/p2",
        "ImagePolicy/other/p4",
    }

    # When a policy is pointed at the other repository
    ctx.catalog.apply([policy("p2", "b")], entry_for=entry_for)
    # Then it moves from one index to the other
    assert policies_of(ctx, "a") == ["p1", "p4"]
    assert policies_of(ctx, "b") == ["p2", "p3"]

    # When a policy and a repository are deleted
    assert ctx.catalog.delete(policy("p1", "a").ref)
    assert ctx.catalog.delete(image_repo("b").ref)
    # Then the policy leaves its index; the repository's policies stay indexed (they still name it)
    assert policies_of(ctx, "a") == ["p4"]
    assert policies_of(ctx, "b") == ["p2", "p3"]
    assert ctx.client.smembers(ctx.keys.catalog_dependents("ImageRepository/default/a")) == {
        "ImagePolicy/other/p4"
    }


def test_a_catalog_written_before_the_indexes_gets_them_at_its_next_apply(ctx) -> None:
    # Given a catalog as an earlier version wrote it: objects only (no per-kind or dependents
    # index), and that version's ImagePolicy index set
    old = [
        image_repo("a"),
        policy("p1", "a"),
        policy("p2", "a"),
        policy("p3", "elsewhere"),
        repo("src"),
        kustomization("app", source="src"),
    ]
    for obj in old:
        ctx.client.hset(ctx.keys.catalog, obj.ref.key, obj.to_json())
    legacy = [
        f"{ctx.keys.prefix}catalog:imagepolicies:ImageRepository/default/a",
        f"{ctx.keys.prefix}catalog:imagepolicies-built",
    ]
    ctx.client.sadd(legacy[0], "ImagePolicy/default/p1")
    ctx.client.set(legacy[1], "1")
    assert not ctx.client.exists(ctx.keys.catalog_indexes)

    # Then readers still find the policies and dependents (by reading the kinds)
    assert policies_of(ctx, "a") == ["p1", "p2"]
    assert [r.key for r in ctx.catalog.dependents_of(repo("src").ref)] == ["Kustomization/default/app"]

    # When anything is applied (here an unrelated repository)
    ctx.catalog.apply([image_repo("unrelated")], entry_for=entry_for)

    # Then both indexes are built for the whole catalog in the same transaction, and the earlier
    # version's index is removed
    assert ctx.client.get(ctx.keys.catalog_indexes) == INDEX_VERSION
    assert ctx.client.smembers(ctx.keys.catalog_dependents("ImageRepository/default/a")) == {
        "ImagePolicy/default/p1",
        "ImagePolicy/default/p2",
    }
    assert ctx.client.smembers(ctx.keys.catalog_dependents("ImageRepository/default/elsewhere")) == {
        "ImagePolicy/default/p3"
    }
    assert ctx.client.smembers(ctx.keys.catalog_dependents("GitRepository/default/src")) == {
        "Kustomization/default/app"
    }
    assert ctx.client.smembers(ctx.keys.catalog_kind("ImagePolicy")) == {
        "ImagePolicy/default/p1",
        "ImagePolicy/default/p2",
        "ImagePolicy/default/p3",
    }
    assert [o.name for o in ctx.catalog.iter_kind("Kustomization")] == ["app"]
    assert not any(ctx.client.exists(k) for k in legacy)
    assert policies_of(ctx, "a") == ["p1", "p2"]
    # And a dry run writes nothing, indexes included
    ctx.client.delete(ctx.keys.catalog_indexes)
    ctx.catalog.apply([image_repo("unrelated-2")], entry_for=entry_for, dry_run=True)
    assert not ctx.client.exists(ctx.keys.catalog_indexes)


def test_dependents_are_found_through_the_index_and_follow_changes(ctx) -> None:
    # Given a source, two Kustomizations reading it, one depending on the other, and an automation
    app = kustomization("app", source="src", depends=["infra"])
    ctx.catalog.apply(
        [repo("src"), repo("other"), kustomization("infra", source="src"), app, automation("auto", "src")],
        entry_for=entry_for,
    )
    src, infra = repo("src").ref, kustomization("infra", source="src").ref
    # Then each object's dependents come from its index set
    assert [r.key for r in ctx.catalog.dependents_of(src)] == [
        "ImageUpdateAutomation/default/auto",
        "Kustomization/default/app",
        "Kustomization/default/infra",
    ]
    assert [r.key for r in ctx.catalog.dependents_of(infra)] == ["Kustomization/default/app"]
    assert ctx.client.smembers(ctx.keys.catalog_dependents(infra.key)) == {"Kustomization/default/app"}

    # When app moves to the other source and drops its dependsOn
    ctx.catalog.apply([kustomization("app", source="other")], entry_for=entry_for)
    # Then it leaves both sets and joins the other source's
    assert [r.key for r in ctx.catalog.dependents_of(src)] == [
        "ImageUpdateAutomation/default/auto",
        "Kustomization/default/infra",
    ]
    assert ctx.catalog.dependents_of(infra) == []
    assert [r.key for r in ctx.catalog.dependents_of(repo("other").ref)] == ["Kustomization/default/app"]

    # When the automation is deleted, it leaves the index; a deleted source keeps its dependents
    assert ctx.catalog.delete(automation("auto", "src").ref)
    assert ctx.catalog.delete(src)
    assert [r.key for r in ctx.catalog.dependents_of(src)] == ["Kustomization/default/infra"]
    # And the index gives what a scan of every object gives
    assert ctx.catalog.dependents_of(repo("other").ref) == dependents_of(repo("other").ref, ctx.catalog.all())


def test_the_first_apply_writes_the_marker_and_later_ones_keep_its_epoch(ctx) -> None:
    # An apply of nothing creates no catalog, so no marker
    ctx.catalog.apply([], entry_for=entry_for)
    assert marker.read(ctx.client, ctx.keys) is None
    # The first apply with objects writes one, naming who created it and the epoch it replaces
    ctx.catalog.apply([repo("a")], entry_for=entry_for, created_by="beat", replaces="lost1", now=100.0)
    first = marker.read(ctx.client, ctx.keys)
    assert first is not None and (first.created_by, first.replaces, first.lost_at) == ("beat", "lost1", 100.0)
    # Later applies, and beat's ensure, keep it
    ctx.catalog.apply([repo("b")], entry_for=entry_for, created_by="apply")
    assert marker.ensure(ctx.client, ctx.keys, "beat") == first
    assert marker.read(ctx.client, ctx.keys) == first


def test_an_apply_keeps_a_marker_beat_created_before_any_object(ctx) -> None:
    created = marker.ensure(ctx.client, ctx.keys, "beat")
    ctx.catalog.apply([repo("a")], entry_for=entry_for)
    assert marker.read(ctx.client, ctx.keys) == created


def test_a_labels_only_change_is_stored_without_making_the_object_due(ctx) -> None:
    key = "ImageRepository/default/app"
    ctx.catalog.apply([image_repo("app")], entry_for=entry_for)
    ctx.client.zadd(ctx.keys.schedule, {key: time.time() + 300})  # as after its first run
    ctx.client.hdel(ctx.keys.pending, key)
    labelled = image_repo("app")
    labelled.metadata["labels"] = {"team": "web"}
    [applied] = ctx.catalog.apply([labelled], entry_for=entry_for)
    assert (applied.action, applied.generation) == ("configured", 1)
    assert ctx.catalog.get(labelled.ref).metadata["labels"] == {"team": "web"}
    assert ctx.client.zscore(ctx.keys.schedule, key) > time.time() + 200
    assert ctx.client.hget(ctx.keys.pending, key) is None
    # while a spec change makes it due at once
    changed = image_repo("app")
    changed.spec["interval"] = "1m"
    assert ctx.catalog.apply([changed], entry_for=entry_for)[0].generation == 2
    assert ctx.client.zscore(ctx.keys.schedule, key) <= time.time()
