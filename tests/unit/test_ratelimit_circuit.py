"""The per-host circuit, run on the real Redis and on the in-process double alike (explicit clock)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gitops_tasks.ratelimit import HostCircuit, MemoryHostCircuit, RedisHostCircuit
from gitops_tasks.tasks.context import Context

T0 = 1_700_000_000.0
HOST = "registry.example.com"


@pytest.fixture(params=["redis", "memory"])
def make(request: pytest.FixtureRequest) -> Iterator[Callable[..., HostCircuit]]:
    if request.param == "memory":
        yield lambda **kw: MemoryHostCircuit(**kw)
        return
    ctx: Context = request.getfixturevalue("ctx")
    yield lambda **kw: RedisHostCircuit(ctx.client, ctx.keys, **kw)


def test_a_host_never_failing_is_clean(make: Callable[..., HostCircuit]) -> None:
    circuit = make()
    health = circuit.admit(HOST, lease_s=5, now=T0)
    assert (health.verdict, health.wait_s, health.failures) == ("clean", 0, 0)


def test_each_failure_outside_a_block_doubles_the_block(make: Callable[..., HostCircuit]) -> None:
    circuit = make(threshold=10, backoff_initial_s=0.5, backoff_max_s=3)
    blocks = []
    now = T0
    for _ in range(5):
        health = circuit.failed(HOST, "HTTP 500 from h", now=now)
        blocks.append(health.wait_s)
        now = health.blocked_until
    assert blocks == pytest.approx([0.5, 1, 2, 3, 3])
    assert circuit.admit(HOST, lease_s=5, now=T0 + 0.2).verdict == "blocked"
    after = circuit.admit(HOST, lease_s=5, now=now)
    assert (after.verdict, after.failures, after.last_error) == ("go", 5, "HTTP 500 from h")


def test_failures_during_a_block_count_but_do_not_double_it(make: Callable[..., HostCircuit]) -> None:
    # Given four requests in flight when the host fails: their answers arrive during the block
    circuit = make(threshold=3, backoff_initial_s=1)
    first = circuit.failed(HOST, "timed out", now=T0)
    rest = [circuit.failed(HOST, "timed out", now=T0 + 0.1 * i) for i in range(1, 4)]
    # Then the block stays one second, but the failures open the circuit
    assert all(h.blocked_until == pytest.approx(first.blocked_until) for h in rest)
    assert rest[-1].failures == 4 and rest[-1].verdict == "open"


def test_an_open_circuit_lets_one_probe_through_and_a_success_closes_it(
    make: Callable[..., HostCircuit],
) -> None:
    circuit = make(threshold=2, backoff_initial_s=1)
    circuit.failed(HOST, "cannot reach h", now=T0)
    circuit.failed(HOST, "cannot reach h", now=T0 + 0.5)
    # While blocked, nobody; after the cool-down, one probe and the others wait for it
    assert circuit.admit(HOST, lease_s=5, now=T0 + 0.9).verdict == "open"
    probe = circuit.admit(HOST, lease_s=5, now=T0 + 1.1)
    other = circuit.admit(HOST, lease_s=5, now=T0 + 1.2)
    assert probe.verdict == "probe"
    assert (other.verdict, other.wait_s) == ("open", pytest.approx(4.9))
    # A failed probe blocks for twice as long; the next probe's success closes the circuit
    failed = circuit.failed(HOST, "cannot reach h", probe=True, now=T0 + 2)
    assert failed.wait_s == pytest.approx(2)
    assert circuit.admit(HOST, lease_s=5, now=T0 + 4.1).verdict == "probe"
    circuit.succeeded(HOST)
    assert circuit.admit(HOST, lease_s=5, now=T0 + 4.2).verdict == "clean"


def test_a_stale_failure_leaves_the_probe_lease_alone(make: Callable[..., HostCircuit]) -> None:
    # Given an open circuit whose probe went at T0+1 with a 5 s lease
    circuit = make(threshold=1, backoff_initial_s=1)
    circuit.failed(HOST, "timed out", now=T0)
    assert circuit.admit(HOST, lease_s=5, now=T0 + 1).verdict == "probe"
    # When a request sent before the circuit opened fails (it backs the host off again)
    stale = circuit.failed(HOST, "timed out", now=T0 + 1.5)
    # Then after that block nobody else probes while the probe's lease runs
    seen = circuit.admit(HOST, lease_s=5, now=T0 + 3.6)
    assert stale.blocked_until == pytest.approx(T0 + 3.5)
    assert (seen.verdict, seen.wait_s) == ("open", pytest.approx(2.4))
    # And the probe's own failure ends its lease
    circuit.failed(HOST, "timed out", probe=True, now=T0 + 4)
    assert circuit.admit(HOST, lease_s=5, now=T0 + 8.1).verdict == "probe"


def test_a_probe_that_never_reports_back_expires(make: Callable[..., HostCircuit]) -> None:
    circuit = make(threshold=1, backoff_initial_s=1)
    circuit.failed(HOST, "timed out", now=T0)
    assert circuit.admit(HOST, lease_s=3, now=T0 + 1).verdict == "probe"
    assert circuit.admit(HOST, lease_s=3, now=T0 + 3.9).verdict == "open"
    assert circuit.admit(HOST, lease_s=3, now=T0 + 4.1).verdict == "probe"


def test_the_backoff_is_shared_by_every_circuit_on_the_same_store(ctx: Context) -> None:
    one, other = RedisHostCircuit(ctx.client, ctx.keys), RedisHostCircuit(ctx.client, ctx.keys)
    one.failed(HOST, "HTTP 503 from h", now=T0)
    seen = other.admit(HOST, lease_s=1, now=T0 + 0.1)
    assert (seen.verdict, seen.last_error) == ("blocked", "HTTP 503 from h")
    assert other.admit("other.example.com", lease_s=1, now=T0).verdict == "clean"


def test_a_failure_long_ago_is_forgotten(ctx: Context) -> None:
    circuit = RedisHostCircuit(ctx.client, ctx.keys, backoff_initial_s=1, forget_after_s=60)
    circuit.failed(HOST, "HTTP 500 from h")
    ttl_ms = ctx.client.pttl(ctx.keys.host_circuit(HOST))
    assert 60_000 < ttl_ms <= 61_000


@pytest.mark.parametrize("options", [{"threshold": 0}, {"backoff_initial_s": 0}])
def test_bad_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        MemoryHostCircuit(**options)


def test_a_probe_given_back_lets_the_next_caller_probe(make: Callable[..., HostCircuit]) -> None:
    circuit = make(threshold=1, backoff_initial_s=1)
    circuit.failed(HOST, "timed out", now=T0)
    assert circuit.admit(HOST, lease_s=30, now=T0 + 1).verdict == "probe"
    circuit.release_probe(HOST, now=T0 + 1.5)
    assert circuit.admit(HOST, lease_s=30, now=T0 + 1.6).verdict == "probe"
    circuit.release_probe("never-failed.example.com", now=T0)
    assert circuit.admit("never-failed.example.com", lease_s=1, now=T0).verdict == "clean"


def test_workers_scanning_a_failing_host_send_one_burst_then_one_probe_per_doubling_backoff(
    make: Callable[..., HostCircuit],
) -> None:
    # Given four workers scanning a host that fails every request (each request takes 10 ms), each
    # trying again exactly when the circuit says it may, for six seconds
    circuit = make(threshold=3, backoff_initial_s=0.5, backoff_max_s=300)
    request_s, window_s = 0.01, 6.0
    events: list[tuple[float, int, str]] = [(T0, worker, "try") for worker in range(4)]
    probing: set[int] = set()
    sent: list[tuple[float, int]] = []
    while events:
        events.sort()
        now, worker, what = events.pop(0)
        if what == "try":
            health = circuit.admit(HOST, lease_s=5, now=now)
            if health.allowed:
                sent.append((now - T0, worker))
                if health.verdict == "probe":
                    probing.add(worker)
                events.append((now + request_s, worker, "fail"))
                continue
            wait_s = health.wait_s
        else:
            health = circuit.failed(HOST, "HTTP 500 from h", probe=worker in probing, now=now)
            probing.discard(worker)
            wait_s = health.wait_s
        if now + wait_s < T0 + window_s:
            events.append((now + wait_s, worker, "try"))

    # Then the host saw one burst (the four requests sent before anyone heard of a failure, which
    # opened the circuit), then one probe at a time, each after a block twice the one before
    times = [at for at, _ in sent]
    assert times == pytest.approx([0, 0, 0, 0, 0.51, 1.52, 3.53])
    assert [worker for _, worker in sent[4:]] == [0, 0, 0]
