"""The image loop with real processes: beat + workers scan a registry, policies pick the latest
tag, and the global rate limit holds across several worker processes sharing one Redis."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tests.procs import wait_for
from tests.registryservers import DockerRegistry, SpecRegistry, max_in_window


def image_repository(name: str, image: str, *, interval: str = "1s", timeout: str = "30s") -> str:
    return (
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\n"
        f"metadata:\n  name: {name}\n  namespace: default\n"
        f"spec:\n  image: {image}\n  interval: {interval}\n  timeout: {timeout}\n  insecure: true\n"
    )


def image_policy(name: str, repository: str, semver: str) -> str:
    return (
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\n"
        f"metadata:\n  name: {name}\n  namespace: default\n"
        f"spec:\n  imageRepositoryRef:\n    name: {repository}\n"
        f"  policy:\n    semver:\n      range: '{semver}'\n"
    )


def status(ctx: Any, kind: str, name: str) -> dict[str, Any]:
    raw = ctx.client.hget(ctx.keys.status, f"{kind}/default/{name}")
    return json.loads(raw) if raw else {}


def test_pushed_tags_reach_the_policy_and_a_newer_tag_updates_it(
    cli, ctx, procs, docker_registry: DockerRegistry, image_path: str, tmp_path: Path
) -> None:
    # Given an image with two releases, a repository scanned every second and a semver policy
    image = f"{docker_registry.host}/{image_path}"
    docker_registry.push(image_path, "1.0.0", "1.1.0", "2.0.0-rc.1")
    objects = tmp_path / "image.yaml"
    objects.write_text(image_repository("app", image) + "---\n" + image_policy("app", "app", ">=1.0.0"))
    applied = cli("apply", "-f", str(objects))
    assert applied.returncode == 0, applied.stderr
    procs("worker", "-c", "2")
    procs("beat")

    # Then the scan records the tags and the policy the latest release
    wait_for(lambda: status(ctx, "ImagePolicy", "app").get("latestImage") == f"{image}:1.1.0", what="1.1.0")
    # (the policy is evaluated inside the scan, so its status may land a moment before the scan's own)
    scanned = wait_for(
        lambda: (
            status(ctx, "ImageRepository", "app").get("lastScanResult")
            and status(ctx, "ImageRepository", "app")
        ),
        what="the scan's status",
    )
    assert scanned["lastScanResult"]["tagCount"] == 3
    assert scanned["canonicalImageName"] == image

    # When a newer release is pushed, the next scan moves the policy to it, with an event
    docker_registry.push(image_path, "1.2.0")
    wait_for(lambda: status(ctx, "ImagePolicy", "app").get("latestImage") == f"{image}:1.2.0", what="1.2.0")
    events = cli("events", "--for", "ImagePolicy/app").stdout
    assert "updated from 1.1.0 to 1.2.0" in events, events
    wait_for(
        lambda: status(ctx, "ImageRepository", "app")["lastScanResult"]["tagCount"] == 4,
        what="4 tags in status",
    )

    # And the CLI shows the latest image, and a manual reconcile waits for its scan
    listed = cli("get", "imagepolicy", "app").stdout
    assert f"{image}:1.2.0" in listed, listed
    manual = cli("reconcile", "imagerepository", "app", "--wait", "--timeout", "30s")
    assert manual.returncode == 0, manual.stdout + manual.stderr
    assert "successful scan: found 4 tags" in manual.stdout


def test_rate_limit_holds_across_worker_processes(cli, ctx, procs, tmp_path: Path) -> None:
    # Given 30 repositories of 250 tags (3 pages each) on one host, all due every second
    rps, burst = 20, 5
    with SpecRegistry(page_max=100) as registry:
        names = [f"team/app{i}" for i in range(30)]
        for name in names:
            registry.set_tags(name, [f"1.0.{i}" for i in range(250)])
        docs = [image_repository(f"app{i}", f"{registry.host}/{name}") for i, name in enumerate(names)]
        (tmp_path / "many.yaml").write_text("---\n".join(docs))
        assert cli("apply", "-f", str(tmp_path / "many.yaml")).returncode == 0

        # When three worker processes with four threads each scan them under a 20 rps / burst 5 limit
        limits = {"GITOPS_TASKS_REGISTRY_RPS": str(rps), "GITOPS_TASKS_REGISTRY_BURST": str(burst)}
        for _ in range(3):
            procs("worker", "-c", "4", "-Q", "registry,priority", env=limits)
        procs("beat", env=limits)

        # Then every repository is scanned completely, although the demand is ~90 requests/s
        def all_scanned() -> bool:
            return all(
                status(ctx, "ImageRepository", f"app{i}").get("lastScanResult", {}).get("tagCount") == 250
                for i in range(30)
            )

        wait_for(all_scanned, timeout_s=60, what="every repository scanned")
        time.sleep(3)
        times = [r.at for r in registry.requests_to("registry")]

    # And no window of any length saw more than burst + rps·w requests at the registry itself (the
    # limiter's default margin absorbs the varying delay between a slot and the request's arrival)
    assert len(times) >= 90
    span = max(times) - min(times)
    windows = {w: max_in_window(times, w) for w in (0.1, 0.25, 0.5, 1.0, 2.0, 5.0)}
    print(f"\n{len(times)} registry requests in {span:.1f}s; most per window: {windows}")
    for window_s, seen in windows.items():
        assert seen <= burst + rps * window_s, (window_s, seen)
    assert len(times) <= burst + rps * span
    # The limit was the bottleneck: the registry saw most of what the limit allows
    assert len(times) >= 0.6 * rps * span, (len(times), span)
