"""Registry hosts that fail, with real worker processes: a host that accepts connections and never
answers does not starve a healthy one, and huge or endless tag lists are capped."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tests.procs import wait_for
from tests.registryservers import HangingServer, SpecRegistry

#: Every repository's spec.interval (seconds).
INTERVAL_S = 1.0
#: The share of its scheduled scans a healthy repository must get while another host hangs.
HEALTHY_SHARE = 0.75


def image_repository(name: str, image: str, *, timeout: str = "30s") -> str:
    return (
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\n"
        f"metadata:\n  name: {name}\n  namespace: default\n"
        f"spec:\n  image: {image}\n  interval: {INTERVAL_S:g}s\n  timeout: {timeout}\n  insecure: true\n"
    )


def ready(ctx: Any, name: str) -> dict[str, Any]:
    raw = ctx.client.hget(ctx.keys.status, f"ImageRepository/default/{name}")
    conditions = json.loads(raw).get("conditions", []) if raw else []
    return next((c for c in conditions if c["type"] == "Ready"), {})


def scans_of(registry: SpecRegistry, name: str, *, since: float, until: float = float("inf")) -> int:
    path = f"/v2/team/{name}/tags/list"
    return sum(
        1 for r in registry.requests_to("registry") if r.path.startswith(path) and since <= r.at < until
    )


def test_a_hanging_registry_host_does_not_slow_a_healthy_one(
    cli, ctx, procs, spec_registry: SpecRegistry, tmp_path: Path
) -> None:
    # Given four repositories on a healthy host and eight on a host that accepts connections and
    # never answers (more than the eight worker threads), all scanned every second
    healthy = [f"ok{i}" for i in range(4)]
    for name in healthy:
        spec_registry.set_tags(f"team/{name}", ["1.0.0", "1.1.0"])
    with HangingServer() as hanging:
        docs = [image_repository(n, f"{spec_registry.host}/team/{n}") for n in healthy]
        docs += [
            image_repository(f"hang{i}", f"{hanging.host}/team/hang{i}", timeout="15s") for i in range(8)
        ]
        (tmp_path / "repos.yaml").write_text("---\n".join(docs))
        assert cli("apply", "-f", str(tmp_path / "repos.yaml")).returncode == 0

        # When two worker processes of four threads scan them, one request slot per host each, the
        # circuit opening after two failed requests
        env = {"GITOPS_TASKS_REGISTRY_HOST_CONCURRENCY": "1", "GITOPS_TASKS_REGISTRY_CIRCUIT_FAILURES": "2"}
        for _ in range(2):
            procs("worker", "-c", "4", "-Q", "registry,priority", env=env)
        procs("beat", env=env)

        # Then while the first requests to the hanging host hang (15 s), every healthy repository is
        # scanned again and again
        wait_for(lambda: hanging.connections, what="a scan of the hanging host")
        started = hanging.connections[0][0] or 0.0
        closed = wait_for(
            lambda: len([c for _, c in hanging.connections if c]) >= 2 and hanging, timeout_s=60
        )
        first_closed = closed.first_closed() or 0.0
        counts = {n: scans_of(spec_registry, n, since=started, until=first_closed) for n in healthy}
        # (at least 75 % of the scans their interval asks for in that window: on this 2-core machine
        # under a load of 10 they got 87-100 %; the starvation this guards against left 33 %)
        expected = (first_closed - started) / INTERVAL_S
        assert all(count >= HEALTHY_SHARE * expected for count in counts.values()), (expected, counts)

        # And the hanging host's repositories fail fast with its circuit open, naming the timeout
        def circuit_open() -> dict[str, Any]:
            found = ready(ctx, "hang0")
            return found if found.get("reason") == "CircuitOpen" else {}

        status = wait_for(circuit_open, timeout_s=30, what="hang0's circuit to open")
        # (requests admitted before it opened may still take their slot for up to a second)
        probes_from = time.monotonic() + 1.5
        assert f"registry host {hanging.host} is failing" in status["message"]
        assert f"{hanging.host} did not answer within 15s (spec.timeout)" in status["message"]
        assert "circuit open" in status["message"]

        # And the healthy repositories keep being scanned while the circuit is open
        opened = sorted(c for _, c in hanging.connections if c)[1]
        wait_for(
            lambda: all(scans_of(spec_registry, n, since=opened) >= 5 for n in healthy),
            timeout_s=30,
            what="five more scans of each healthy repository",
        )
        assert all(ready(ctx, n).get("reason") == "Succeeded" for n in healthy)
        # And once open, the hanging host saw one probe connection at a time
        wait_for(
            lambda: any((o or 0.0) >= probes_from for o, _ in hanging.connections),
            timeout_s=40,
            what="a probe of the hanging host",
        )
        assert hanging.most_open_at_once(since=probes_from) <= 1


def test_oversized_and_endless_tag_lists_are_capped(
    cli, ctx, procs, spec_registry: SpecRegistry, tmp_path: Path
) -> None:
    # Given a 100 MB tag list, an endless Link chain and an ordinary repository on one host
    spec_registry.set_huge("team/huge", 100 * 1024 * 1024)
    spec_registry.set_endless("team/endless")
    spec_registry.set_tags("team/fine", ["1.0.0"])
    docs = [image_repository(n, f"{spec_registry.host}/team/{n}") for n in ("huge", "endless", "fine")]
    (tmp_path / "repos.yaml").write_text("---\n".join(docs))
    assert cli("apply", "-f", str(tmp_path / "repos.yaml")).returncode == 0

    # When a worker scans them (a high rate limit, the default caps)
    env = {"GITOPS_TASKS_REGISTRY_RPS": "2000", "GITOPS_TASKS_REGISTRY_BURST": "100"}
    worker = procs("worker", "-c", "2", "-Q", "registry,priority", env=env)
    procs("beat", env=env)

    # Then both hostile repositories are stalled, naming the limit and the setting to raise
    huge = wait_for(lambda: ready(ctx, "huge").get("reason") == "TagListTooLarge" and ready(ctx, "huge"))
    assert "GITOPS_TASKS_REGISTRY_MAX_RESPONSE_BYTES" in huge["message"]
    endless = wait_for(
        lambda: ready(ctx, "endless").get("reason") == "TooManyPages" and ready(ctx, "endless"), timeout_s=60
    )
    assert "past 500 pages" in endless["message"] and "GITOPS_TASKS_REGISTRY_MAX_PAGES" in endless["message"]
    status = json.loads(ctx.client.hget(ctx.keys.status, "ImageRepository/default/endless"))
    assert any(c["type"] == "Stalled" and c["status"] == "True" for c in status["conditions"])
    # And the worker read no more than the cap (plus socket buffers), stayed up, and scanned the rest
    assert spec_registry.sent["team/huge"] < 32 * 1024 * 1024
    wait_for(lambda: ready(ctx, "fine").get("reason") == "Succeeded", what="the ordinary repository")
    assert worker.proc.poll() is None
