"""Registry scanning: the global rate limit under load, scan throughput, and tag-list memory.

Measurements (DESIGN §6), written to the ``registry`` section of BENCHMARKS.md:

1. **Limit held** (``limit``). 4 worker processes × 4 threads scan 500 ImageRepositories, three
   times each (30 s of traffic at the limit), through a counting proxy
   (:mod:`benchmarks.bench_registry_servers`) under a 50 rps / burst 10 limit; the most requests in
   any window of ``w`` seconds is compared with the token bucket's envelope ``burst + rps·w``, and
   the mean rate with the limit. One more run logs every granted token (Redis clock), one more
   runs under py-spy.
2. **Throughput without a limit** (``throughput``). Scans per second with 1, 2 and 4 worker
   processes × 4 threads when the proxy adds 20 ms to every request and the limit is out of
   reach, against the lower bound: a plain thread pool of the same width sending only the
   tag-list requests; plus what-if workers (:mod:`benchmarks.bench_registry_whatif`) and profiles.
3. **Catalog lookups** (``lookups``): what a scan spends finding its ImagePolicies and dependents,
   at 500 and 5,000 objects.
4. **Memory** (``memory``). Redis bytes for 5,000 images holding 2,000,000 realistic tags, stored
   with :class:`~gitops_tasks.registry.tags.RedisTagStore` into a private Redis; the codec's CPU.

A throughput cycle is: a fresh request token per object in the ``requests`` hash, one
``gitops.registry.scan`` per object (``tasks.enqueue.send``, one producer), and the clock stops when
every status carries its token in ``lastHandledReconcileAt``. No beat runs; objects have
``interval: 1h``.

``python -m benchmarks.bench_registry [--only NAME]... [--repeats N] [--no-write]``;
``--save-figures F`` keeps the raw figures, ``--from-figures F`` (repeatable) renders and merges
them without measuring. ``measure()`` and ``render()`` follow ``benchmarks/run.py``'s convention.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
import requests

from beat_schedule import entry_for
from benchmarks import bench_registry_whatif, machine, pyspy, report
from benchmarks.bench_registry_servers import ProxyControl, ServerProc, repo_name
from benchmarks.report import Section, median, read_sections
from benchmarks.stack import cpu_seconds, gt_env, machine_cpu, settings_of, start_worker
from gitops_tasks import tasknames
from gitops_tasks.app import make_app
from gitops_tasks.objects.model import Object
from gitops_tasks.registry.scan import DEFAULT_EXCLUSION_LIST, without_excluded
from gitops_tasks.registry.tags import RedisTagStore, encode_tags, sorted_tags, tags_revision
from gitops_tasks.store import Catalog, Keys
from gitops_tasks.tasks.enqueue import send
from tests.procs import REPO_ROOT, Proc, RedisServer
from tests.registryservers import max_in_window, realistic_tags, tag_counts

#: ImageRepositories (and registry repositories) scanned per cycle.
DEFAULT_REPOS = 500
#: Tags per registry repository (one page: the registry's pages hold up to 100).
DEFAULT_TAGS = 40
#: Measured runs (or cycles) per configuration; medians are reported.
DEFAULT_REPEATS = 3
#: Threads per worker process (``-c``), in every configuration.
DEFAULT_THREADS = 4

#: The limit of measurement 1, and how long it must be under load at least (seconds).
LIMIT_RPS = 50
LIMIT_BURST = 10
LIMIT_PROCESSES = 4
LIMIT_MIN_TRAFFIC_S = 20.0
#: Full cycles queued per run: 3 × 500 scans are 30 s of traffic at 50 rps (at least 20 s).
LIMIT_CYCLES = 3
#: A limit run that takes longer than this fails the benchmark (seconds).
LIMIT_RUN_TIMEOUT_S = 300.0
#: Kombu's Redis transport keeps delivered, unacknowledged messages in this hash (after the prefix).
KOMBU_UNACKED = "unacked"
#: Windows (seconds) in which the most requests are counted.
WINDOWS_S = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)
#: Measurement 2: worker processes, latency the proxy adds, and a limit nothing reaches.
THROUGHPUT_PROCESSES = (1, 2, 4)
THROUGHPUT_LATENCY_MS = 20.0
UNLIMITED = 100_000
#: Measurement 3: images, total tags, seeds (one run each).
MEMORY_IMAGES = 5_000
MEMORY_TAGS = 2_000_000
MEMORY_SEEDS = (2024, 7)
#: Worker variants measured against the unpatched worker (see bench_registry_whatif), and where.
DEFAULT_WHATIFS = ("no_events",)
WHATIF_PROCESSES = (1,)

#: A cycle that takes longer than this fails the benchmark (seconds).
DEFAULT_CYCLE_TIMEOUT_S = 300.0
#: Seconds between status checks while a cycle runs, and statuses read per check.
CHECK_INTERVAL_S = 0.02
CHECK_CHUNK = 64

#: Targets from the brief.
TARGET_MEAN_FRACTION = 0.95
TARGET_RATIO = 0.7
TARGET_MEMORY_MIB = 40.0
FLUX_MEMORY_MIB = "60–80"

BENCHMARKS_MD = REPO_ROOT / "BENCHMARKS.md"
SECTION = "registry"


# ------------------------------------------------------------------------------ CPU accounting


@dataclass
class Counters:
    """Wall and CPU seconds over one measured interval (differences of two snapshots)."""

    wall_s: float = 0.0
    machine_busy_s: float = 0.0
    workers_cpu_s: float = 0.0
    redis_cpu_s: float = 0.0
    proxy_cpu_s: float = 0.0
    registry_cpu_s: float = 0.0
    bench_cpu_s: float = 0.0
    #: Worker processes of the other sets, idle meanwhile (see :func:`measure_throughput`).
    idle_workers_cpu_s: float = 0.0

    @property
    def other_cpu_s(self) -> float:
        """Machine CPU spent by nothing above: other work on the machine, the kernel."""
        known = (
            self.workers_cpu_s
            + self.redis_cpu_s
            + self.proxy_cpu_s
            + self.registry_cpu_s
            + self.bench_cpu_s
            + self.idle_workers_cpu_s
        )
        return self.machine_busy_s - known


class Meter:
    def __init__(self, *, redis_pid: int, proxy_pid: int, registry_pid: int) -> None:
        self.redis_pid, self.proxy_pid, self.registry_pid = redis_pid, proxy_pid, registry_pid
        #: Every worker process up now (all sets).
        self.all_workers: set[int] = set()

    def snapshot(self, workers: list[int]) -> Counters:
        idle = [p for p in self.all_workers if p not in workers]
        return Counters(
            wall_s=time.perf_counter(),
            machine_busy_s=machine_cpu()[0],
            workers_cpu_s=sum(cpu_seconds(p) for p in workers),
            idle_workers_cpu_s=sum(cpu_seconds(p) for p in idle),
            redis_cpu_s=cpu_seconds(self.redis_pid),
            proxy_cpu_s=cpu_seconds(self.proxy_pid),
            registry_cpu_s=cpu_seconds(self.registry_pid),
            bench_cpu_s=cpu_seconds(os.getpid()),
        )

    @staticmethod
    def diff(a: Counters, b: Counters) -> Counters:
        return Counters(**{f.name: getattr(b, f.name) - getattr(a, f.name) for f in fields(Counters)})


# ------------------------------------------------------------------------------ the stack


class Stack:
    """Redis, the registry and the proxy in front of it; the objects point at the proxy."""

    def __init__(self, base: Path, *, repos: int, tags: int) -> None:
        self.base = base
        self.repos = repos
        self.redis = RedisServer(base / "redis")
        self.registry = ServerProc("registry", "--repos", str(repos), "--tags", str(tags))
        self.proxy = ServerProc("proxy", "--upstream", self.registry.host)
        self.control = ProxyControl(self.proxy.host)
        self.meter = Meter(
            redis_pid=self.redis.proc.pid, proxy_pid=self.proxy.pid, registry_pid=self.registry.pid
        )

    def objects(self) -> list[Object]:
        return [
            Object(
                api_version="image.toolkit.fluxcd.io/v1",
                kind="ImageRepository",
                name=f"img-{i:04d}",
                namespace="default",
                spec={
                    "image": f"{self.proxy.host}/{repo_name(i)}",
                    "interval": "1h",
                    "timeout": "60s",
                    "insecure": True,
                },
            )
            for i in range(self.repos)
        ]

    def stop(self) -> None:
        self.proxy.stop()
        self.registry.stop()
        self.redis.stop()


@dataclass
class Cycle:
    counters: Counters
    enqueue_s: float
    #: lastResult/Ready reason → objects.
    results: dict[str, int]
    #: Proxy arrival times of the registry requests sent during the cycle.
    times: list[float]
    run_s: list[float] = field(default_factory=list)
    #: Redis commands (INFO commandstats) during the cycle, the benchmark's own status reads included.
    redis_calls: dict[str, int] = field(default_factory=dict)

    @property
    def wall_s(self) -> float:
        return self.counters.wall_s

    @property
    def traffic_rate(self) -> float:
        """Requests per second between the first and the last request of the cycle."""
        if len(self.times) < 2:
            return 0.0
        return (len(self.times) - 1) / (self.times[-1] - self.times[0])


def _commandstats(client: redis.Redis) -> dict[str, int]:
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in client.info("commandstats").items()}


class Workers:
    """Worker processes consuming ``queue``, and cycles of scans through them.

    Each set has its own key prefix (catalog, statuses, rate-limit bucket), so several sets can be up
    at once on one Redis, each on a queue of its own, and be measured in turns.
    """

    def __init__(
        self,
        stack: Stack,
        label: str,
        *,
        processes: int,
        threads: int,
        rps: float,
        burst: int,
        whatif: str | None = None,
        queue: str = "registry",
        standby: bool = False,
    ) -> None:
        self.stack = stack
        self.label = label
        self.queue = queue
        extra = {"GITOPS_TASKS_REGISTRY_RPS": str(rps), "GITOPS_TASKS_REGISTRY_BURST": str(burst)}
        module = "gitops_tasks.cli"
        if whatif is not None:
            module = "benchmarks.bench_registry_whatif"
            changes = [c for c in whatif.split(",") if c != "log_warning"]
            extra[bench_registry_whatif.ENV_VAR] = ",".join(changes)
            if "log_warning" in whatif.split(","):
                extra["GITOPS_TASKS_LOG_LEVEL"] = "WARNING"
        self.env = gt_env(stack.redis.url(0), stack.base / "gt", key_prefix=f"bench-{label}:", **extra)
        settings = settings_of(self.env)
        self.app = make_app(settings)
        self.client = redis.Redis.from_url(settings.effective_redis_url(), decode_responses=True)
        self.keys = Keys(settings.key_prefix)
        objects = stack.objects()
        Catalog(self.client, self.keys).apply(objects, entry_for=entry_for)
        self.refs = [o.ref for o in objects]
        self.log_dir = stack.base / "logs" / label
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.procs: list[Proc] = []
        # On standby the workers consume a queue nobody sends to, until :meth:`consume`.
        listen = f"{queue}-standby" if standby else queue
        argv = ("-c", str(threads), "-P", "threads", "-Q", listen)
        try:
            for i in range(processes):
                self.procs.append(
                    start_worker(f"worker-{label}-{i}", self.env, self.log_dir, *argv, module=module)
                )
        except BaseException:
            self.stop()
            raise
        stack.meter.all_workers.update(self.pids)

    def consume(self) -> None:
        """Make workers started on standby consume ``queue`` (Celery's ``add_consumer`` broadcast),
        so that every process starts taking tasks at the same moment, all of them ready."""
        nodes = [f"worker-{self.label}-{i}@{socket.gethostname()}" for i in range(len(self.procs))]
        replies = self.app.control.add_consumer(self.queue, destination=nodes, reply=True, timeout=10)
        if len(replies) != len(nodes):
            raise RuntimeError(
                f"{self.label}: add_consumer answered by {len(replies)} of {len(nodes)} workers"
            )

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def stop(self) -> None:
        self.stack.meter.all_workers.difference_update(self.pids)
        for proc in self.procs:
            proc.stop()
        self.client.close()
        self.app.close()

    def cycle(self, label: str) -> Cycle:
        control, meter = self.stack.control, self.stack.meter
        tokens = {ref.key: f"bench-{label}-{i}-{secrets.token_hex(3)}" for i, ref in enumerate(self.refs)}
        self.client.hset(self.keys.requests, mapping=dict[Any, Any](tokens))
        since = len(control.times())
        calls0 = _commandstats(self.client)
        before = meter.snapshot(self.pids)
        start = time.perf_counter()
        with self.app.producer_or_acquire() as producer:
            for ref in self.refs:
                send(
                    self.app,
                    ref,
                    task=tasknames.REGISTRY_SCAN,
                    queue=self.queue,
                    timeout_s=60.0,
                    reason="manual",
                    producer=producer,
                )
        enqueue_s = time.perf_counter() - start
        statuses = self._wait(tokens, start)
        after = meter.snapshot(self.pids)
        calls1 = _commandstats(self.client)
        results: Counter[str] = Counter()
        for status in statuses:
            ready: dict[str, Any] = next(
                (c for c in status.get("conditions", []) if c.get("type") == "Ready"), {}
            )
            results[f"{status.get('lastResult', '?')}/{ready.get('reason', '?')}"] += 1
        return Cycle(
            counters=Meter.diff(before, after),
            enqueue_s=enqueue_s,
            results=dict(results),
            times=sorted(control.times(since)),
            run_s=[float(s.get("lastRunDurationSeconds", 0.0)) for s in statuses],
            redis_calls={k: v - calls0.get(k, 0) for k, v in calls1.items() if v > calls0.get(k, 0)},
        )

    def _wait(self, tokens: dict[str, str], start: float) -> list[dict[str, Any]]:
        """Wait until every status carries its token (reading the oldest pending ones only)."""
        pending = list(tokens)
        done: dict[str, dict[str, Any]] = {}
        while pending:
            if time.perf_counter() - start > DEFAULT_CYCLE_TIMEOUT_S:
                raise RuntimeError(
                    f"{len(pending)} of {len(tokens)} scans unfinished after {DEFAULT_CYCLE_TIMEOUT_S}s"
                )
            chunk = pending[:CHECK_CHUNK]
            still = []
            for key, raw in zip(chunk, self.client.hmget(self.keys.status, chunk), strict=True):
                if raw and tokens[key] in raw:
                    status = json.loads(raw)
                    if status.get("lastHandledReconcileAt") == tokens[key]:
                        done[key] = status
                        continue
                still.append(key)
            pending = still + pending[len(chunk) :]
            if still:
                time.sleep(CHECK_INTERVAL_S)
        return [done[key] for key in tokens]


# ------------------------------------------------------------------------------ 1. limit held


@dataclass
class LimitRun:
    #: Proxy arrival times of every registry request of the run (monotonic seconds), sorted.
    times: list[float]
    #: Scans queued, and how many of them logged ``waiting RateLimited`` (no request sent).
    scans: int
    rate_limited: int
    enqueue_s: float
    counters: Counters
    redis_calls: dict[str, int]
    #: Redis times of the tokens the limiter granted (``record_grants`` runs only), sorted.
    grants: list[float] | None = None
    #: py-spy buckets (the profiled run only; not counted against the targets).
    profile: Counter[str] | None = None

    @property
    def plain(self) -> bool:
        """A run of the workers as shipped, neither logging grants nor under the profiler."""
        return self.grants is None and self.profile is None

    @property
    def span_s(self) -> float:
        return self.times[-1] - self.times[0] if len(self.times) > 1 else 0.0

    @property
    def mean_rps(self) -> float:
        return (len(self.times) - 1) / self.span_s if self.span_s else 0.0

    def windows(self) -> dict[float, int]:
        return {w: max_in_window(self.times, w) for w in WINDOWS_S}

    def rps_between(self, first: int, last: int) -> float:
        """Mean rate from request ``first`` to request ``last`` (indexes into :attr:`times`)."""
        last = min(last, len(self.times) - 1)
        span = self.times[last] - self.times[first] if last > first else 0.0
        return (last - first) / span if span else 0.0

    def grant_windows(self) -> dict[float, int]:
        return {w: max_in_window(self.grants or [], w) for w in WINDOWS_S}

    def longest_silence_s(self) -> float:
        """The longest time without any request (a stall: at the limit they come every 20 ms)."""
        return max((b - a for a, b in zip(self.times, self.times[1:], strict=False)), default=0.0)


def envelope(window_s: float) -> float:
    return LIMIT_BURST + LIMIT_RPS * window_s


def measure_limit(stack: Stack, repeats: int, *, profile: bool = True) -> list[LimitRun]:
    """``repeats`` runs with the workers as shipped, one with ``record_grants`` workers, and (with
    ``profile`` and py-spy installed) one more run of shipped workers under py-spy.

    A run starts the workers on standby, queues :data:`LIMIT_CYCLES` full cycles of scans (every
    object that many times, all with one fresh request token), lets every worker consume at once,
    and waits until the queue is empty, no task is unacknowledged and every status carries the
    token. Neither the benchmark's producer nor the workers' start-up is inside the traffic: on
    this shared machine, publishing 500 tasks while 16 threads polled the limiter took 0.3 to 13 s,
    and workers starting one after the other (a few CPU-seconds each) held the first ones back.
    """
    kinds = ["plain"] * repeats + ["grants"] + (["profiled"] if profile and pyspy.available() else [])
    runs: list[LimitRun] = []
    for run, kind in enumerate(kinds):
        whatif = "record_grants" if kind == "grants" else None
        label = f"limit-{run}" + ("" if kind == "plain" else f"-{kind}")
        workers = Workers(
            stack,
            label,
            processes=LIMIT_PROCESSES,
            threads=DEFAULT_THREADS,
            rps=LIMIT_RPS,
            burst=LIMIT_BURST,
            whatif=whatif,
            standby=True,
        )
        try:
            if kind == "profiled":
                with pyspy.record(workers.pids, workers.log_dir) as paths:
                    r = _limit_run(workers, label, grants=False)
                r.profile = summarise_profile(paths)
            else:
                r = _limit_run(workers, label, grants=kind == "grants")
            runs.append(r)
            print(
                f"  {label}: {len(r.times)} requests in {r.span_s:.1f}s = {r.mean_rps:.2f} rps, "
                f"{r.rate_limited} RateLimited, enqueue {r.enqueue_s:.2f}s, longest silence "
                f"{r.longest_silence_s():.2f}s; {r.windows()}"
                + (f"; grants {r.grant_windows()}" if r.grants else ""),
                flush=True,
            )
        finally:
            workers.stop()
    return runs


def _limit_run(workers: Workers, label: str, *, grants: bool) -> LimitRun:
    stack, client, keys = workers.stack, workers.client, workers.keys
    tokens = {ref.key: f"bench-{label}-{i}-{secrets.token_hex(3)}" for i, ref in enumerate(workers.refs)}
    client.hset(keys.requests, mapping=dict[Any, Any](tokens))
    started = time.perf_counter()
    with workers.app.producer_or_acquire() as producer:
        for _ in range(LIMIT_CYCLES):
            for ref in workers.refs:
                send(
                    workers.app,
                    ref,
                    task=tasknames.REGISTRY_SCAN,
                    queue=workers.queue,
                    timeout_s=60.0,
                    reason="manual",
                    producer=producer,
                )
    enqueue_s = time.perf_counter() - started
    since = len(stack.control.times())
    calls0 = _commandstats(client)
    before = stack.meter.snapshot(workers.pids)
    workers.consume()
    deadline = time.monotonic() + LIMIT_RUN_TIMEOUT_S
    # The broker's keys carry the set's GITOPS_TASKS_KEY_PREFIX too (kombu's global_keyprefix).
    queue_key, unacked_key = keys.prefix + workers.queue, keys.prefix + KOMBU_UNACKED
    while client.llen(queue_key) or client.hlen(unacked_key) or not _all_handled(workers, tokens):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{label}: scans unfinished after {LIMIT_RUN_TIMEOUT_S}s")
        time.sleep(0.2)
    after = stack.meter.snapshot(workers.pids)
    calls1 = _commandstats(client)
    granted = None
    if grants:
        key = keys.rate_bucket(stack.proxy.host) + bench_registry_whatif.GRANTS_SUFFIX
        granted = sorted(float(t) for t in client.lrange(key, 0, -1))
    return LimitRun(
        times=sorted(stack.control.times(since)),
        scans=LIMIT_CYCLES * len(workers.refs),
        rate_limited=sum(p.log().count(" waiting RateLimited: ") for p in workers.procs),
        enqueue_s=enqueue_s,
        counters=Meter.diff(before, after),
        redis_calls={k: v - calls0.get(k, 0) for k, v in calls1.items() if v > calls0.get(k, 0)},
        grants=granted,
    )


def _all_handled(workers: Workers, tokens: dict[str, str]) -> bool:
    raws = workers.client.hmget(workers.keys.status, list(tokens))
    return all(
        raw and json.loads(raw).get("lastHandledReconcileAt") == tokens[key]
        for key, raw in zip(tokens, raws, strict=True)
    )


# ------------------------------------------------------------------------------ 2. throughput


@dataclass
class LoopRun:
    wall_s: float
    counters: Counters
    times: list[float]


def tag_list_loop(stack: Stack, concurrency: int) -> LoopRun:
    """The lower bound: ``concurrency`` threads, each with a kept-alive session, sending one
    tag-list request per repository through the proxy and reading the JSON."""
    local = threading.local()
    urls = [f"http://{stack.proxy.host}/v2/{repo_name(i)}/tags/list?n=1000" for i in range(stack.repos)]

    def get(url: str) -> int:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.trust_env = False
        response = session.get(url, timeout=30)
        response.raise_for_status()
        return len(response.json()["tags"])

    since = len(stack.control.times())
    before = stack.meter.snapshot([])
    with ThreadPoolExecutor(concurrency) as pool:
        counts = list(pool.map(get, urls))
    after = stack.meter.snapshot([])
    assert all(counts), "every repository has tags"
    counters = Meter.diff(before, after)
    return LoopRun(counters.wall_s, counters, sorted(stack.control.times(since)))


@dataclass
class ThroughputConfig:
    processes: int
    threads: int
    cycles: list[Cycle]
    loops: list[LoopRun]
    profile: Counter[str] | None = None
    profiled: Cycle | None = None

    @property
    def concurrency(self) -> int:
        return self.processes * self.threads

    @property
    def label(self) -> str:
        return f"tp-{self.processes}x{self.threads}"

    @property
    def scans_per_s(self) -> float:
        return median([len(c.run_s) / c.wall_s for c in self.cycles])

    @property
    def loop_per_s(self) -> float:
        return median([len(r.times) / r.wall_s for r in self.loops])

    @property
    def ratio(self) -> float:
        return self.scans_per_s / self.loop_per_s


def measure_throughput(stack: Stack, repeats: int, *, profile: bool, whatif: bool) -> dict[str, Any]:
    """Every worker configuration (and what-if variant) is started at once, each set idle on a queue
    of its own, then measured in turns: per round, for each width, the loop then the workers, then
    the what-if sets. Taking turns spreads the load of whatever else runs on the machine over every
    configuration instead of letting it land on one."""
    stack.control.set_delay(THROUGHPUT_LATENCY_MS)
    sets: dict[str, Workers] = {}
    configs = [ThroughputConfig(p, DEFAULT_THREADS, [], []) for p in THROUGHPUT_PROCESSES]
    variants = [WhatIf(change, 1, []) for change in (DEFAULT_WHATIFS if whatif else ())]
    try:
        for config in configs:
            sets[config.label] = _unlimited(stack, config.label, config.processes)
        for variant in variants:
            sets[variant.label] = _unlimited(stack, variant.label, variant.processes, whatif=variant.change)
        for label, workers in sets.items():
            warm = workers.cycle(f"{label}-warmup")
            print(f"  {label} warm-up: {warm.wall_s:.2f}s {warm.results}", flush=True)
        for config in configs:
            tag_list_loop(stack, config.concurrency)  # warm-up: connections
        for r in range(repeats):
            for config in configs:
                config.loops.append(tag_list_loop(stack, config.concurrency))
                print(
                    f"  round {r + 1} loop ×{config.concurrency}: {config.loops[-1].wall_s:.2f}s", flush=True
                )
                config.cycles.append(_cycle(sets[config.label], f"{config.label}-{r}"))
            for variant in variants:
                variant.cycles.append(_cycle(sets[variant.label], f"{variant.label}-{r}"))
        if profile and pyspy.available():
            for config in (configs[0], configs[-1]):
                workers = sets[config.label]
                with pyspy.record(workers.pids, workers.log_dir) as paths:
                    config.profiled = workers.cycle(f"{config.label}-profiled")
                config.profile = summarise_profile(paths)
                print(f"  {config.label} profiled cycle: {config.profiled.wall_s:.2f}s", flush=True)
    finally:
        for workers in sets.values():
            workers.stop()
        stack.control.set_delay(0)
    return {"configs": configs, "whatif": variants}


def _unlimited(stack: Stack, label: str, processes: int, *, whatif: str | None = None) -> Workers:
    return Workers(
        stack,
        label,
        processes=processes,
        threads=DEFAULT_THREADS,
        rps=UNLIMITED,
        burst=UNLIMITED,
        whatif=whatif,
        queue=f"registry-{label}",
    )


def _cycle(workers: Workers, label: str) -> Cycle:
    c = workers.cycle(label)
    print(
        f"  {label}: {c.wall_s:.2f}s ({len(c.run_s) / c.wall_s:.0f} scans/s, workers "
        f"{c.counters.workers_cpu_s / len(c.run_s) * 1000:.1f} ms CPU/scan, other "
        f"{c.counters.other_cpu_s / len(c.run_s) * 1000:.1f} ms/scan) {c.results}",
        flush=True,
    )
    return c


@dataclass
class WhatIf:
    change: str
    processes: int
    cycles: list[Cycle]

    @property
    def label(self) -> str:
        return f"tp-{self.processes}x{DEFAULT_THREADS}-{self.change.replace(',', '+')}"

    @property
    def scans_per_s(self) -> float:
        return median([len(c.run_s) / c.wall_s for c in self.cycles])


#: (bucket, needle in a frame ``function (file)`` without its line number). Frames are read leaf
#: first, so a stack lands in the bucket of its innermost frame that some needle finds; the
#: catch-alls apply only to stacks no specific needle finds.
PROFILE_BUCKETS: list[tuple[str, str]] = [
    (
        "ImagePolicy lookup: HSCAN + parse of every catalog key per scan",
        "iter_kind (gitops_tasks/store/catalog.py)",
    ),
    ("dependents lookup: every catalog object parsed", "Catalog.all (gitops_tasks/store/catalog.py)"),
    ("run lock: keep-alive registration, release", "RunLock."),
    ("rate limiter (its EVALSHA calls)", "gitops_tasks/ratelimit/"),
    ("registry HTTP (requests/urllib3: send, receive, parse)", "requests/"),
    ("registry HTTP (requests/urllib3: send, receive, parse)", "urllib3/"),
    ("tag list: sort, hash, compress, store", "gitops_tasks/registry/tags.py"),
    ("status, events, begin/finish pipelines", "gitops_tasks/store/"),
    ("logging", "logging/__init__.py"),
]
CATCH_ALL_BUCKETS: list[tuple[str, str]] = [
    ("other task code (gitops_tasks, tenacity, json)", "gitops_tasks/"),
    ("Celery task tracing", "celery/"),
]
_LINE_NO = re.compile(r":\d+\)$")


def bucket_of(frames: list[str]) -> str:
    frames = [_LINE_NO.sub(")", f) for f in frames]
    if any("asynloop (celery/" in f for f in frames):
        return "Celery consumer loop, main thread (receive, ack, task events)"
    if any("_Renewer._loop (" in f or "_renew_loop (" in f for f in frames):
        return "run-lock renewer thread"
    for buckets in (PROFILE_BUCKETS, CATCH_ALL_BUCKETS):
        for frame in reversed(frames):
            for name, needle in buckets:
                if needle in frame:
                    return name
    return "other (thread pool, interpreter)"


def summarise_profile(paths: list[Path]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for path in paths:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            stack, _, n = line.rpartition(" ")
            if stack and n.isdigit():
                counts[bucket_of(stack.split(";"))] += int(n)
    return counts


# ------------------------------------------------------------------------------ 3. memory


@dataclass
class MemoryRun:
    seed: int
    images: int
    tags: int
    raw_bytes: int
    payload_bytes: int
    usage_bytes: int
    used_memory_delta: int
    popular: int
    generate_s: float
    store_s: float
    #: The tag-list codec over every list: CPU seconds at zlib level 9 (the store's) and 6, and the
    #: total size at level 6.
    encode9_cpu_s: float = 0.0
    encode6_cpu_s: float = 0.0
    payload6_bytes: int = 0
    #: The largest list: its tag count, CPU ms of one ``sorted_tags``, and of the CPU path of a scan
    #: that stores it (exclusionList, the sort in ``scan``, ``RedisTagStore.put`` without Redis).
    largest_tags: int = 0
    largest_sort_ms: float = 0.0
    largest_scan_path_ms: float = 0.0


def _cpu_ms(work: Callable[[], object], *, repeat: int = 10) -> float:
    started = time.process_time()
    for _ in range(repeat):
        work()
    return (time.process_time() - started) / repeat * 1000


def _scan_path(tags: list[str]) -> None:
    """What a scan does to a new list in Python before the SET (scan.scan, then RedisTagStore.put)."""
    kept = sorted_tags(without_excluded(tags, [re.compile(p) for p in DEFAULT_EXCLUSION_LIST]))
    ordered = sorted_tags(kept)
    tags_revision(ordered)
    encode_tags(ordered)


def measure_memory(base: Path, seed: int) -> MemoryRun:
    server = RedisServer(base / f"redis-memory-{seed}")
    client = redis.Redis.from_url(server.url(0))
    try:
        keys = Keys("bench-mem:")
        store = RedisTagStore(client, keys)
        rng = random.Random(seed)
        counts = tag_counts(rng, images=MEMORY_IMAGES, total=MEMORY_TAGS)
        t0 = time.perf_counter()
        lists = [realistic_tags(rng, count) for count in counts]
        generate_s = time.perf_counter() - t0
        refs = [f"ImageRepository/team-{i % 50}/image-{i:05d}" for i in range(len(lists))]
        before = int(client.info("memory")["used_memory"])
        t0 = time.perf_counter()
        for ref, tags in zip(refs, lists, strict=True):
            store.put(ref, tags)
        store_s = time.perf_counter() - t0
        used = int(client.info("memory")["used_memory"]) - before
        with client.pipeline(transaction=False) as pipe:
            for ref in refs:
                pipe.memory_usage(keys.tags(ref), samples=0)
            usage = sum(int(u or 0) for u in pipe.execute())
        popular = max(range(len(lists)), key=lambda i: len(lists[i]))
        assert store.get(refs[popular]) == sorted(lists[popular]), "a popular list reads back whole"
        texts = ["\n".join(tags).encode() for tags in lists]
        started = time.process_time()
        for text in texts:
            zlib.compress(text, 9)
        encode9_cpu_s = time.process_time() - started
        started = time.process_time()
        payload6 = sum(len(zlib.compress(t, 6)) for t in texts)
        encode6_cpu_s = time.process_time() - started
        largest = list(lists[popular])
        random.Random(seed).shuffle(largest)  # registries answer in their own order
        return MemoryRun(
            seed=seed,
            images=len(lists),
            tags=sum(len(t) for t in lists),
            raw_bytes=sum(len(t) + 1 for tags in lists for t in tags),
            payload_bytes=sum(len(encode_tags(tags)) for tags in lists),
            usage_bytes=usage,
            used_memory_delta=used,
            popular=sum(1 for tags in lists if len(tags) >= 4_000),
            generate_s=generate_s,
            store_s=store_s,
            encode9_cpu_s=encode9_cpu_s,
            encode6_cpu_s=encode6_cpu_s,
            payload6_bytes=payload6 + len(texts),  # + the format byte of each value
            largest_tags=len(largest),
            largest_sort_ms=_cpu_ms(lambda: sorted_tags(largest)),
            largest_scan_path_ms=_cpu_ms(lambda: _scan_path(largest)),
        )
    finally:
        client.close()
        server.stop()


# ------------------------------------------------------------------------------ catalog lookups

#: Catalog sizes for the per-scan lookup costs, and timings taken per size (the best is kept).
LOOKUP_SIZES = (500, 5_000)
LOOKUP_TRIES = 5


@dataclass
class Lookup:
    objects: int
    #: (wall s, CPU s of this process) of the best try.
    policy_lookup: tuple[float, float]
    dependents_lookup: tuple[float, float]
    #: The same dependents lookup by reading every dependent kind (as before the index).
    dependents_scan: tuple[float, float] = (0.0, 0.0)


def _best(work: Callable[[], object]) -> tuple[float, float]:
    """(wall s, CPU s) of the fastest of :data:`LOOKUP_TRIES` calls of ``work``."""
    tries = []
    for _ in range(LOOKUP_TRIES):
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        tries.append((time.perf_counter() - wall, time.process_time() - cpu))
    return min(tries)


def measure_lookups(base: Path) -> list[Lookup]:
    """What a scan spends finding its ImagePolicies (``Catalog.image_policies_of``, every scan) and
    its dependents (``Catalog.dependents_of``, every scan whose tags changed), as the worker calls
    them, against catalogs of N ImageRepositories with one ImagePolicy each; and the dependents
    lookup as a scan of every dependent kind, which is what it costs without the index."""
    from gitops_tasks.objects import dependents_of
    from gitops_tasks.store.catalog import DEPENDENT_KINDS

    server = RedisServer(base / "redis-lookups")
    client = redis.Redis.from_url(server.url(0), decode_responses=True)
    out = []
    try:
        for size in LOOKUP_SIZES:
            client.flushdb()
            catalog = Catalog(client, Keys("bench-lookups:"))
            objects = [
                Object(
                    api_version="image.toolkit.fluxcd.io/v1",
                    kind="ImageRepository",
                    name=f"img-{i:05d}",
                    namespace="default",
                    spec={"image": f"127.0.0.1:5000/{repo_name(i)}", "interval": "1h", "insecure": True},
                )
                for i in range(size)
            ]
            policies = [
                Object(
                    api_version="image.toolkit.fluxcd.io/v1",
                    kind="ImagePolicy",
                    name=f"img-{i:05d}",
                    namespace="default",
                    spec={
                        "imageRepositoryRef": {"name": f"img-{i:05d}"},
                        "policy": {"semver": {"range": ">=0"}},
                    },
                )
                for i in range(size)
            ]
            catalog.apply(objects + policies, entry_for=entry_for)
            ref = objects[0].ref
            found = catalog.dependents_of(ref)
            assert found == [policies[0].ref], found
            out.append(
                Lookup(
                    size,
                    _best(lambda: catalog.image_policies_of(ref)),  # noqa: B023 (called now)
                    _best(lambda: catalog.dependents_of(ref)),  # noqa: B023
                    _best(lambda: dependents_of(ref, catalog.iter_kinds(DEPENDENT_KINDS))),  # noqa: B023
                )
            )
            print(f"  lookups at {size} objects: {out[-1]}", flush=True)
    finally:
        client.close()
        server.stop()
    return out


# ------------------------------------------------------------------------------ driver


def measure(
    *,
    only: tuple[str, ...] = ("limit", "throughput", "lookups", "memory"),
    repeats: int = DEFAULT_REPEATS,
    profile: bool = True,
    whatif: bool = True,
    keep: bool = False,
) -> dict[str, Any]:
    """Run the measurements named in ``only``; return the raw figures (see :func:`render`)."""
    base = Path(tempfile.mkdtemp(prefix="gt-bench-registry-"))
    figures: dict[str, Any] = {
        "repeats": repeats,
        "started": datetime.now(UTC),
        "code": machine.code_version(),
    }
    busy0 = machine_cpu()
    try:
        if "limit" in only or "throughput" in only:
            stack = Stack(base, repos=DEFAULT_REPOS, tags=DEFAULT_TAGS)
            try:
                if "limit" in only:
                    print("limit held: 4x4 workers, 50 rps / burst 10", flush=True)
                    figures["limit"] = measure_limit(stack, repeats, profile=profile)
                if "throughput" in only:
                    print(
                        f"throughput: +{THROUGHPUT_LATENCY_MS:.0f} ms per request, no effective limit",
                        flush=True,
                    )
                    figures["throughput"] = measure_throughput(stack, repeats, profile=profile, whatif=whatif)
            finally:
                stack.stop()
        if "lookups" in only:
            print("catalog lookups per scan", flush=True)
            figures["lookups"] = measure_lookups(base)
        if "memory" in only:
            print(f"memory: {MEMORY_IMAGES} images, {MEMORY_TAGS} tags", flush=True)
            figures["memory"] = []
            for seed in MEMORY_SEEDS:
                run = measure_memory(base, seed)
                print(f"  seed {seed}: {run}", flush=True)
                figures["memory"].append(run)
    finally:
        if keep:
            print(f"kept {base}", flush=True)
        else:
            shutil.rmtree(base, ignore_errors=True)
    busy1 = machine_cpu()
    figures["machine_busy"] = (busy1[0] - busy0[0]) / max(busy1[1] - busy0[1], 1e-9)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Registry scanning benchmarks; writes BENCHMARKS.md.")
    parser.add_argument("--only", action="append", choices=("limit", "throughput", "lookups", "memory"))
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profiles")
    parser.add_argument("--no-whatif", action="store_true", help="skip the what-if worker variants")
    parser.add_argument(
        "--no-write", action="store_true", help="print the section, leave BENCHMARKS.md alone"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (worker logs, profiles)")
    args = parser.parse_args(argv)
    # SIGTERM ends the run through the finally blocks, so workers and servers are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    only = tuple(args.only or ("limit", "throughput", "lookups", "memory"))
    command = "python -m " + " ".join(
        ["benchmarks.bench_registry", *(sys.argv[1:] if argv is None else argv)]
    )
    figures = measure(
        only=only,
        repeats=args.repeats,
        profile=not args.no_profile,
        whatif=not args.no_whatif,
        keep=args.keep,
    )
    figures["command"] = command
    section = render(figures, command=command)
    if args.no_write:
        print(section.markdown)
    else:
        write_section(section)
        print(f"wrote section {section.name} of {BENCHMARKS_MD}")
    return 0


def render(figures: dict[str, Any], *, command: str) -> Section:
    """The ``registry`` section of BENCHMARKS.md (what ``benchmarks/run.py`` calls on a benchmark)."""
    from benchmarks import bench_registry_report

    return bench_registry_report.render(figures, command=command)


def merge_figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One set of figures from several invocations: limit runs, throughput rounds (per configuration)
    and memory runs are pooled; profiles come from the last invocation that took them."""
    out: dict[str, Any] = {
        "repeats": sum(r["repeats"] for r in runs if "throughput" in r) or runs[0]["repeats"],
        "started": min(r["started"] for r in runs),
        "code": runs[-1]["code"],
        "machine_busy": median([r["machine_busy"] for r in runs]),
        "command": "; ".join(dict.fromkeys(r.get("command", "?") for r in runs)),
        "invocations": len(runs),
        "throughput_invocations": sum(1 for r in runs if "throughput" in r),
        "notes": [r["note"] for r in runs if r.get("note")],
    }
    for run in runs:
        if "limit" in run:
            out.setdefault("limit", []).extend(run["limit"])
        if "memory" in run:
            out["memory"] = run["memory"]  # deterministic per seed: the last invocation's
        if "lookups" in run:
            out["lookups"] = run["lookups"]
        if "throughput" in run:
            pooled = out.setdefault("throughput", {"configs": [], "whatif": []})
            for config in run["throughput"]["configs"]:
                same = next((c for c in pooled["configs"] if c.label == config.label), None)
                if same is None:
                    pooled["configs"].append(config)
                    continue
                same.cycles += config.cycles
                same.loops += config.loops
                if config.profile:
                    same.profile, same.profiled = config.profile, config.profiled
            for variant in run["throughput"]["whatif"]:
                same_v = next((v for v in pooled["whatif"] if v.label == variant.label), None)
                if same_v is None:
                    pooled["whatif"].append(variant)
                else:
                    same_v.cycles += variant.cycles
    # Limit runs: the plain ones first (the report numbers them in this order).
    if "limit" in out:
        out["limit"].sort(key=lambda r: not r.plain)
    return out


def write_section(section: Section) -> None:
    """Replace (or add) ``section`` in BENCHMARKS.md, keeping its header and every other section."""
    from benchmarks.run import ORDER

    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.is_file() else "# Benchmarks\n"
    cut = text.find("<!-- section:")
    header = text if cut < 0 else text[:cut]
    sections = read_sections(BENCHMARKS_MD)
    sections[section.name] = section.markdown
    BENCHMARKS_MD.write_text(report.render(header.rstrip("\n") + "\n", sections, ORDER))


if __name__ == "__main__":
    # Run the imported module's main, so the figures' classes live in benchmarks.bench_registry
    # (the report module then sees one set of classes, not a second one in __main__).
    from benchmarks.bench_registry import main as _main

    raise SystemExit(_main())
