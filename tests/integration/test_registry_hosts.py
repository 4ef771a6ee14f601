"""Failing and hostile registry hosts, against the tests' own servers: a host answering 500 is
backed off for every worker (not retried at the full rate) and its status names the 500; a host
that never answers holds a bounded number of threads; huge and endless tag lists are capped."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from gitops_tasks.objects.outcome import Outcome
from gitops_tasks.ratelimit import HostCircuit, MemoryHostCircuit, RedisHostCircuit
from gitops_tasks.registry.reconcile import reconcile
from gitops_tasks.tasks.context import Context
from tests.procs import wait_for
from tests.registryfixtures import RegistryKit, image_repository
from tests.registryservers import HangingServer, SpecRegistry


def scan(kit: RegistryKit, name: str, image: str, secrets_dir: Path, **spec: object) -> Outcome:
    obj = image_repository(name, image, insecure=True, **spec)
    return reconcile(
        obj, {}, client=kit.client, store=kit.store, secrets_dir=secrets_dir, docker_config=False
    )


def test_a_host_answering_500_is_backed_off_for_every_worker(
    spec_registry: SpecRegistry, registry_kit, tmp_path: Path
) -> None:
    # Given a host that answers every request with 500, and four workers (each its own client on
    # the shared Redis) scanning its eight repositories as fast as they can for six seconds, under a
    # limit of 20 requests per second
    for i in range(8):
        spec_registry.set_tags(f"team/app{i}", ["1.0.0"])
    spec_registry.fail(500, count=1_000_000)
    kits = [registry_kit(rps=20, burst=5) for _ in range(4)]
    window_s = 6.0
    outcomes: list[Outcome] = []

    def worker(kit: RegistryKit) -> None:
        end = time.monotonic() + window_s
        i = 0
        while time.monotonic() < end:
            outcomes.append(scan(kit, f"app{i % 8}", f"{spec_registry.host}/team/app{i % 8}", tmp_path))
            i += 1

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(worker, kits))
    arrivals = [r.at for r in spec_registry.requests_to("registry")]

    # Then the host received at most ten requests in all, where the rate limit alone would have let
    # ~120 through (the schedule itself, one burst per doubling backoff and then one probe at a
    # time, is checked on a clock of the tests' own in tests/unit/test_ratelimit_circuit.py)
    assert 3 <= len(arrivals) <= 10, arrivals
    # And every scan failed with the registry's own words and when the host is tried again
    assert outcomes and all(o.result == "transient" for o in outcomes)
    assert all(
        f"HTTP 500 from {spec_registry.host} (UNKNOWN: scripted failure)" in o.message for o in outcomes
    )
    assert all(o.reason == "CircuitOpen" and "circuit open" in o.message for o in outcomes[-4:])
    assert sum("RateLimited" in o.reason for o in outcomes) == 0


def test_a_500_under_a_429_is_named_in_the_status_not_hidden_by_rate_limited(
    spec_registry: SpecRegistry, registry_kit, tmp_path: Path
) -> None:
    # Given a host that answers 500, then 429 with a long Retry-After
    spec_registry.set_tags("team/app", ["1.0.0"])
    spec_registry.fail(500)
    spec_registry.fail(429, retry_after="30")

    # When it is scanned
    outcome = scan(registry_kit(), "app", f"{spec_registry.host}/team/app", tmp_path)

    # Then the status names the 500 and the rate limit, and the scan is retried later
    assert (outcome.result, outcome.reason) == ("transient", "ScanFailed"), outcome.message
    assert f"HTTP 500 from {spec_registry.host}" in outcome.message
    assert "also rate limited after 429s, next request allowed after" in outcome.message


def test_a_host_that_never_answers_holds_only_its_slots(
    spec_registry: SpecRegistry, registry_kit, tmp_path: Path
) -> None:
    # Given a host that accepts connections and never answers, and a healthy one
    spec_registry.set_tags("team/ok", ["1.0.0"])
    kit = registry_kit(host_concurrency=2)
    with HangingServer() as hanging:
        # When two scans of the hanging host (spec.timeout 8 s) take this worker's two slots for it
        with ThreadPoolExecutor(2) as pool:
            stuck = [
                pool.submit(scan, kit, f"hang{i}", f"{hanging.host}/team/hang{i}", tmp_path, timeout="8s")
                for i in range(2)
            ]
            wait_for(lambda: len(hanging.connections) == 2, timeout_s=30, what="two hanging requests")
            # Then twenty more scans of it are re-queued at once, each without waiting for a slot: all
            # of them are done while the first two are still waiting for their answer
            busy = [scan(kit, f"more{i}", f"{hanging.host}/team/more{i}", tmp_path) for i in range(20)]
            assert hanging.first_closed() is None and not any(future.done() for future in stuck)
            # And a scan of the healthy host meanwhile succeeds
            assert scan(kit, "ok", f"{spec_registry.host}/team/ok", tmp_path).result == "success"
            timed_out = [future.result() for future in stuck]
        # And the hanging host never had more than two connections from this worker
        assert hanging.most_open_at_once() <= 2
    assert all(o.reason == "HostBusy" and o.result == "waiting" for o in busy), busy
    assert "GITOPS_TASKS_REGISTRY_HOST_CONCURRENCY" in busy[0].message
    assert all(f"{hanging.host} did not answer within 8s" in o.message for o in timed_out), timed_out


@pytest.mark.parametrize("announce", [True, False], ids=["content-length", "until-close"])
def test_an_oversized_tag_list_is_refused_without_reading_it_all(
    spec_registry: SpecRegistry, registry_kit, tmp_path: Path, announce: bool
) -> None:
    # Given a repository whose tag list is 100 MB (8 million tags)
    spec_registry.set_huge("team/huge", 100 * 1024 * 1024, announce=announce)

    # When it is scanned with the default cap of 16 MiB per answer
    outcome = scan(registry_kit(), "huge", f"{spec_registry.host}/team/huge", tmp_path)

    # Then the scan is stalled naming the cap and its setting, and stopped reading near the cap
    assert (outcome.result, outcome.reason) == ("stalled", "TagListTooLarge"), outcome.message
    assert "larger than 16777216 bytes" in outcome.message
    assert "GITOPS_TASKS_REGISTRY_MAX_RESPONSE_BYTES" in outcome.message
    time.sleep(0.2)
    assert spec_registry.sent["team/huge"] < 32 * 1024 * 1024


def test_more_tags_than_the_cap_stall_the_scan(
    spec_registry: SpecRegistry, registry_kit, tmp_path: Path
) -> None:
    spec_registry.set_tags("team/many", [f"1.0.{i}" for i in range(1_200)])
    kit = registry_kit(caps={"max_tags": 1_000})
    outcome = scan(kit, "many", f"{spec_registry.host}/team/many", tmp_path)
    assert (outcome.result, outcome.reason) == ("stalled", "TagListTooLarge"), outcome.message
    assert "more than 1000 tags" in outcome.message and "GITOPS_TASKS_REGISTRY_MAX_TAGS" in outcome.message
    assert len(spec_registry.requests_to("registry")) == 11  # pages of 100: stopped at the 11th
    assert kit.store.get("ImageRepository/default/many") is None  # nothing half-stored


def test_an_endless_link_chain_stops_at_the_page_cap(
    spec_registry: SpecRegistry, registry_kit, tmp_path: Path
) -> None:
    # Given a registry whose Link pagination never ends (100 new tags per page)
    spec_registry.set_endless("team/endless")

    # When it is scanned with the default caps (500 pages, 50,000 tags)
    outcome = scan(registry_kit(), "endless", f"{spec_registry.host}/team/endless", tmp_path)

    # Then the scan stops after 500 requests, saying why and what to raise
    assert (outcome.result, outcome.reason) == ("stalled", "TooManyPages"), outcome.message
    assert "past 500 pages" in outcome.message and "GITOPS_TASKS_REGISTRY_MAX_PAGES" in outcome.message
    assert len(spec_registry.requests_to("registry")) == 500


def test_a_probe_success_closes_the_circuit_for_every_worker(
    spec_registry: SpecRegistry, registry_kit, tmp_path: Path
) -> None:
    # Given a host whose circuit opened after three 500s (first block 0.2 s)
    spec_registry.set_tags("team/app", ["1.0.0"])
    spec_registry.fail(500, count=3)
    one, other = registry_kit(circuit={"backoff_initial_s": 0.2}), registry_kit()
    failed = scan(one, "app", f"{spec_registry.host}/team/app", tmp_path, timeout="1s")
    assert failed.reason == "CircuitOpen", failed.message
    # When the host has recovered, scans fail at once until the block ends; the next one is the probe
    for _ in range(100):
        outcome = scan(one, "app", f"{spec_registry.host}/team/app", tmp_path)
        if outcome.result == "success":
            break
        assert outcome.reason == "CircuitOpen", outcome.message
        time.sleep(0.05)
    assert outcome.result == "success"
    # Then the circuit is closed for every worker
    assert other.circuit.admit(spec_registry.host, lease_s=1).verdict == "clean"
    assert [r.status for r in spec_registry.requests_to("registry")] == [500, 500, 500, 200]


class FakeClock:
    """The circuit's clock (Unix seconds), moved by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_an_open_circuit_has_one_probe_in_flight_until_its_request_ends(
    backend: str, ctx: Context, registry_kit, tmp_path: Path
) -> None:
    # Given a host that never answers, whose circuit (on a clock of the test's own) opened at T0
    t0 = 1_700_000_000.0
    clock = FakeClock(t0)
    options: dict[str, Any] = {"threshold": 1, "backoff_initial_s": 0.5}
    circuit: HostCircuit = (
        MemoryHostCircuit(clock=clock, **options)
        if backend == "memory"
        else RedisHostCircuit(ctx.client, ctx.keys, clock=clock, **options)
    )
    kit = registry_kit(circuit=circuit)
    with HangingServer() as hanging:
        circuit.failed(hanging.host, f"{hanging.host} did not answer within 5s (spec.timeout)")
        # When, after the block, one scan (spec.timeout 5 s) sends the probe
        clock.now = t0 + 1
        with ThreadPoolExecutor(1) as pool:
            probe = pool.submit(scan, kit, "one", f"{hanging.host}/team/one", tmp_path, timeout="5s")
            wait_for(lambda: len(hanging.connections) == 1, timeout_s=30, what="the probe request")
            # And another scan comes just after the probe's call deadline, its request still in flight
            clock.now = t0 + 1 + 5 + 0.05
            other = scan(kit, "two", f"{hanging.host}/team/two", tmp_path, timeout="5s")
            probed = probe.result()
        # Then the other scan failed fast, without a second probe
        assert len(hanging.connections) == 1
    assert other.reason == "CircuitOpen" and "a probe request is in flight until" in other.message
    assert f"{hanging.host} did not answer within 5s" in probed.message
