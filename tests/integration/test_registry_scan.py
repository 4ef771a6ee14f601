"""ImageRepository scans against a real registry (distribution 2.8): plain, htpasswd, policies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gitops_tasks.objects.model import Object
from gitops_tasks.objects.outcome import Outcome
from gitops_tasks.registry.reconcile import reconcile
from gitops_tasks.tasks import runner
from gitops_tasks.tasks.context import Context
from gitops_tasks.tasks.registry import reconcile_image_repository
from tests.registryfixtures import (
    REGISTRY_PASSWORD,
    REGISTRY_USERNAME,
    RegistryKit,
    image_repository,
    write_dockerconfigjson,
)
from tests.registryservers import DockerRegistry, SpecRegistry


def scan(
    kit: RegistryKit, obj: Object, secrets_dir: Path, prev: dict[str, Any] | None = None, **kw: Any
) -> Outcome:
    return reconcile(
        obj,
        prev or {},
        client=kit.client,
        store=kit.store,
        secrets_dir=secrets_dir,
        docker_config=False,
        **kw,
    )


def test_scan_stores_tags_and_drops_signature_tags(
    docker_registry: DockerRegistry, image_path: str, registry_kit, tmp_path: Path
) -> None:
    # Given an image with three releases and a cosign signature tag
    docker_registry.push(image_path, "1.0.0", "1.1.0", "2.0.0-rc.1", "sha256-" + "ab" * 32 + ".sig")
    kit = registry_kit()
    obj = image_repository("app", f"{docker_registry.host}/{image_path}", insecure=True)

    # When it is scanned
    outcome = scan(kit, obj, tmp_path)

    # Then the signature is excluded by the default exclusionList and the rest is stored
    assert outcome.result == "success", outcome.message
    assert outcome.message == "successful scan: found 3 tags"
    assert outcome.changed
    result = outcome.facts["lastScanResult"]
    assert result["tagCount"] == 3
    assert result["latestTags"] == ["2.0.0-rc.1", "1.1.0", "1.0.0"]
    assert outcome.facts["canonicalImageName"] == f"{docker_registry.host}/{image_path}"
    assert kit.store.get(obj.ref.key) == ["1.0.0", "1.1.0", "2.0.0-rc.1"]

    # And an unchanged registry gives an unchanged scan
    again = scan(kit, obj, tmp_path, prev=outcome.facts)
    assert again.result == "success" and not again.changed
    # While a new tag changes it
    docker_registry.push(image_path, "1.2.0")
    newer = scan(kit, obj, tmp_path, prev=again.facts)
    assert newer.changed and newer.facts["lastScanResult"]["tagCount"] == 4


def test_missing_repository_is_image_not_found(
    docker_registry: DockerRegistry, registry_kit, tmp_path: Path
) -> None:
    outcome = scan(
        registry_kit(), image_repository("gone", f"{docker_registry.host}/no/such", insecure=True), tmp_path
    )
    assert (outcome.result, outcome.reason) == ("transient", "ImageNotFound")
    assert "no/such" in outcome.message and "NAME_UNKNOWN" in outcome.message


def test_htpasswd_registry_with_good_bad_and_no_credentials(
    docker_registry_auth: DockerRegistry, image_path: str, registry_kit, tmp_path: Path
) -> None:
    docker_registry_auth.push(image_path, "0.1.0", "0.2.0")
    host = docker_registry_auth.host
    kit = registry_kit()
    write_dockerconfigjson(tmp_path, "default", "good", host, REGISTRY_USERNAME, REGISTRY_PASSWORD)
    write_dockerconfigjson(tmp_path, "default", "bad", host, REGISTRY_USERNAME, "wrong-password-123")
    image = f"{host}/{image_path}"

    good = scan(kit, image_repository("good", image, insecure=True, secretRef={"name": "good"}), tmp_path)
    assert good.result == "success", good.message
    assert good.facts["lastScanResult"]["tagCount"] == 2

    bad = scan(kit, image_repository("bad", image, insecure=True, secretRef={"name": "bad"}), tmp_path)
    assert (bad.result, bad.reason) == ("stalled", "AuthenticationFailed")
    assert "secret default/bad" in bad.message and "wrong-password" not in bad.message

    anonymous = scan(kit, image_repository("anon", image, insecure=True), tmp_path)
    assert (anonymous.result, anonymous.reason) == ("stalled", "AuthenticationFailed")
    assert "requires credentials" in anonymous.message


def test_policies_are_evaluated_after_a_changed_scan(
    ctx: Context, docker_registry: DockerRegistry, image_path: str, tmp_path: Path
) -> None:
    # Given a repository with two semver policies in the catalog
    from beat_schedule import entry_for
    from gitops_tasks.objects import load_text

    docker_registry.push(image_path, "1.0.0", "1.4.2", "2.0.0")
    image = f"{docker_registry.host}/{image_path}"
    objects = load_text(
        f"""
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {{name: app}}
spec: {{image: "{image}", interval: 1h, insecure: true}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {{name: app-1x}}
spec:
  imageRepositoryRef: {{name: app}}
  policy: {{semver: {{range: "1.x"}}}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {{name: app-latest}}
spec:
  imageRepositoryRef: {{name: app}}
  policy: {{semver: {{range: ">=0.0.0"}}}}
""",
        filename="test.yaml",
    )
    ctx.catalog.apply(objects, entry_for=entry_for)
    repo = next(o for o in objects if o.kind == "ImageRepository")

    def run() -> dict[str, Any]:
        return runner.run(
            repo.ref,
            reason="manual",
            ctx=ctx,
            reconciler=reconcile_image_repository,
            enqueue_dependent=lambda _: False,
        )

    # When the repository is reconciled
    assert run()["result"] == "success"

    # Then each policy has its latest image, and an event says so
    policies = {o.name: o.ref for o in objects if o.kind == "ImagePolicy"}
    one_x = ctx.status.get(policies["app-1x"])
    assert one_x["latestImage"] == f"{image}:1.4.2"
    assert ctx.status.get(policies["app-latest"])["latestImage"] == f"{image}:2.0.0"
    assert one_x["conditions"][0]["status"] == "True"
    events = ctx.events.recent(ref=policies["app-1x"])
    assert [e.reason for e in events] == ["Succeeded"] and "resolved to 1.4.2" in events[0].message

    # When a newer 1.x tag is pushed and the repository scanned again
    docker_registry.push(image_path, "1.5.0")
    assert run()["result"] == "success"
    assert ctx.status.get(policies["app-1x"])["latestImage"] == f"{image}:1.5.0"
    events = ctx.events.recent(ref=policies["app-1x"])
    assert "updated from 1.4.2 to 1.5.0" in events[-1].message
    # The other policy's image did not change: no new event
    assert len(ctx.events.recent(ref=policies["app-latest"])) == 1


def test_a_scan_evaluates_only_the_policies_that_name_its_repository(
    ctx: Context, spec_registry: SpecRegistry
) -> None:
    # Given two repositories with different tags, and a policy naming the first
    from beat_schedule import entry_for

    spec_registry.set_tags("team/one", ["1.0.0"])
    spec_registry.set_tags("team/two", ["2.0.0"])
    one = image_repository("one", f"{spec_registry.host}/team/one", insecure=True)
    two = image_repository("two", f"{spec_registry.host}/team/two", insecure=True)

    def policy(repository: str) -> Object:
        return Object(
            api_version="image.toolkit.fluxcd.io/v1",
            kind="ImagePolicy",
            name="app",
            namespace="default",
            spec={"imageRepositoryRef": {"name": repository}, "policy": {"semver": {"range": ">=0.1"}}},
        )

    ctx.catalog.apply([one, two, policy("one")], entry_for=entry_for)
    ref = policy("one").ref

    def run(repository: Object) -> None:
        result = runner.run(
            repository.ref,
            reason="manual",
            ctx=ctx,
            reconciler=reconcile_image_repository,
            enqueue_dependent=lambda _: False,
        )
        assert result["result"] == "success", result

    run(one)
    run(two)
    assert ctx.status.get(ref)["latestImage"] == f"{one.spec['image']}:1.0.0"

    # When the policy is pointed at the second repository (a new generation)
    ctx.catalog.apply([policy("two")], entry_for=entry_for)
    # Then the first repository's scan leaves it alone, and the second's evaluates it
    run(one)
    assert ctx.status.get(ref)["observedGeneration"] == 1
    run(two)
    status = ctx.status.get(ref)
    assert (status["latestImage"], status["observedGeneration"]) == (f"{two.spec['image']}:2.0.0", 2)

    # When the policy is deleted, scans that change the tags find nothing to evaluate
    assert ctx.catalog.delete(ref)
    spec_registry.set_tags("team/two", ["2.0.0", "2.1.0"])
    run(two)
    assert ctx.status.get(ref) == {}
