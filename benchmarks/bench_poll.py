"""Poll cycle: 500 unchanged repositories served by ``git daemon``, polled once each.

gitops-tasks (real workers, real Redis) is measured against two baselines over the same
repositories: a sequential ``git fetch`` loop over local mirrors, and the lower bound of
``git ls-remote`` calls run with the workers' concurrency. A cycle is: write a fresh request
token per object into the ``requests`` hash, publish one ``gitops.git.poll`` per object, and stop
the clock when every status carries its token in ``lastHandledReconcileAt``.

Besides wall time, each cycle records where the CPU went (worker processes, their git children,
``git daemon``'s children, redis-server) and how many Redis commands one poll costs
(``INFO commandstats``), so a missed target can be explained with numbers.

``python -m benchmarks.bench_poll [--repos N] [--repeats N] [--write]``
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import redis

from beat_schedule import entry_for
from benchmarks import gitwork, pyspy, whatif_worker
from benchmarks.report import Section, median
from benchmarks.stack import (
    child_pids,
    children_cpu_seconds,
    cpu_seconds,
    exit_cleanly_on_signals,
    gt_env,
    listen_overflows,
    machine_cpu,
    settings_of,
    start_worker,
)
from gitops_tasks import tasknames
from gitops_tasks.app import make_app
from gitops_tasks.objects.model import Object, ObjectRef
from gitops_tasks.store import Catalog, Keys
from gitops_tasks.tasks.enqueue import send
from tests.gitservers import GitDaemon
from tests.procs import Proc, RedisServer

#: Repositories (and GitRepository objects) in one cycle.
DEFAULT_REPOS = 500
#: Measured cycles per configuration (the median is reported).
DEFAULT_REPEATS = 5
#: Worker configurations measured: (processes, threads per process).
DEFAULT_CONFIGS = ((1, 8), (2, 4), (2, 8))
#: A cycle that takes longer than this fails the benchmark (seconds).
DEFAULT_CYCLE_TIMEOUT_S = 600.0
#: How often the benchmark checks statuses while a cycle runs (seconds).
DEFAULT_CHECK_INTERVAL_S = 0.02
#: Statuses read per check (the oldest pending ones).
DEFAULT_CHECK_CHUNK = 64
#: Worker variants measured by ``--whatif`` (1 process × 8 threads, first server): see whatif_worker.
DEFAULT_WHATIFS = ("no_events",)
#: Targets from the brief: speed-up over the sequential fetch, ratio to the ls-remote lower bound.
TARGET_SPEEDUP = 5.0
TARGET_RATIO = 1.5


@dataclass
class Counters:
    """CPU seconds and kernel counters over one measured run (differences of two snapshots)."""

    wall_s: float = 0.0
    machine_busy_s: float = 0.0
    #: The processes that poll: worker processes' own CPU (0 for baselines).
    poller_cpu_s: float = 0.0
    #: git client subprocesses (the workers' children, or the benchmark's for baselines).
    git_client_cpu_s: float = 0.0
    #: ``git daemon``'s children (one per connection: upload-pack).
    daemon_cpu_s: float = 0.0
    redis_cpu_s: float = 0.0
    #: This benchmark process (sending tasks, checking statuses, or the baselines' thread pools).
    bench_cpu_s: float = 0.0
    listen_overflows: int = 0

    @property
    def other_cpu_s(self) -> float:
        """Machine CPU not spent by any process above: other work on the machine, the kernel."""
        known = (
            self.poller_cpu_s
            + self.git_client_cpu_s
            + self.daemon_cpu_s
            + self.redis_cpu_s
            + self.bench_cpu_s
        )
        return self.machine_busy_s - known

    def busy_pct(self) -> float:
        return 100 * self.machine_busy_s / (self.wall_s * (os.cpu_count() or 1))


class Meter:
    """Snapshots of the counters in :class:`Counters` for a given set of processes."""

    def __init__(self, *, daemon_pid: int, redis_pid: int, direct: bool = False) -> None:
        children = [] if direct else child_pids(daemon_pid)
        # `git daemon` runs git-daemon as a child; that child forks one process per connection.
        # socat (``direct``) forks the per-connection processes itself.
        self.daemon_pid = children[0] if children else daemon_pid
        self.redis_pid = redis_pid

    def snapshot(self, pollers: list[int]) -> Counters:
        busy, _total = machine_cpu()
        return Counters(
            wall_s=time.perf_counter(),
            machine_busy_s=busy,
            poller_cpu_s=sum(cpu_seconds(p) for p in pollers),
            git_client_cpu_s=sum(children_cpu_seconds(p) for p in pollers)
            if pollers
            else gitwork.children_cpu_s(),
            daemon_cpu_s=children_cpu_seconds(self.daemon_pid),
            redis_cpu_s=cpu_seconds(self.redis_pid),
            bench_cpu_s=cpu_seconds(os.getpid()),
            listen_overflows=listen_overflows(),
        )

    @staticmethod
    def diff(a: Counters, b: Counters) -> Counters:
        return Counters(**{f.name: getattr(b, f.name) - getattr(a, f.name) for f in fields(Counters)})


@dataclass
class Cycle:
    """One measured cycle of gitops-tasks."""

    counters: Counters
    enqueue_s: float
    redis_calls: dict[str, int]
    run_s: list[float]
    results: dict[str, int]

    @property
    def wall_s(self) -> float:
        return self.counters.wall_s


@dataclass
class Baseline:
    label: str
    runs: list[Counters] = field(default_factory=list)

    @property
    def walls(self) -> list[float]:
        return [r.wall_s for r in self.runs]

    @property
    def wall(self) -> float:
        return median(self.walls)

    def median_run(self) -> Counters:
        return sorted(self.runs, key=lambda r: r.wall_s)[len(self.runs) // 2]


def _objects(urls: list[str]) -> list[Object]:
    return [
        Object(
            api_version="source.toolkit.fluxcd.io/v1",
            kind="GitRepository",
            name=f"repo-{i:04d}",
            namespace="default",
            spec={"interval": "1h", "timeout": "60s", "url": url, "ref": {"branch": "main"}},
        )
        for i, url in enumerate(urls)
    ]


def _commandstats(client: redis.Redis) -> dict[str, int]:
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in client.info("commandstats").items()}


class PollCycles:
    """Runs cycles of ``gitops.git.poll`` for every object and waits for their statuses."""

    def __init__(self, env: dict[str, str], refs: list[ObjectRef], *, meter: Meter) -> None:
        self.settings = settings_of(env)
        self.app = make_app(self.settings)
        self.client = redis.Redis.from_url(self.settings.effective_redis_url(), decode_responses=True)
        self.keys = Keys(self.settings.key_prefix)
        self.refs = refs
        self.meter = meter

    def run(self, label: str, workers: list[Proc]) -> Cycle:
        tokens = {ref.key: f"bench-{label}-{i}-{secrets.token_hex(3)}" for i, ref in enumerate(self.refs)}
        self.client.hset(self.keys.requests, mapping=tokens)
        pids = [w.pid for w in workers]
        calls0 = _commandstats(self.client)
        before = self.meter.snapshot(pids)
        start = time.perf_counter()
        with self.app.producer_or_acquire() as producer:
            for ref in self.refs:
                send(
                    self.app,
                    ref,
                    task=tasknames.GIT_POLL,
                    queue="git",
                    timeout_s=60.0,
                    reason="manual",
                    producer=producer,
                )
        enqueue_s = time.perf_counter() - start
        statuses = self._wait(tokens, start)
        after = self.meter.snapshot(pids)
        calls1 = _commandstats(self.client)
        calls = {k: v - calls0.get(k, 0) for k, v in calls1.items() if v - calls0.get(k, 0) > 0}
        calls["info"] = calls.get("info", 0) - 1  # the benchmark's own (its status checks are the HMGETs)
        results: dict[str, int] = {}
        for status in statuses:
            results[status.get("lastResult", "?")] = results.get(status.get("lastResult", "?"), 0) + 1
        return Cycle(
            counters=Meter.diff(before, after),
            enqueue_s=enqueue_s,
            redis_calls=calls,
            run_s=[float(s.get("lastRunDurationSeconds", 0.0)) for s in statuses],
            results=results,
        )

    def _wait(self, tokens: dict[str, str], start: float) -> list[dict[str, Any]]:
        """Wait until every status carries its token; return the statuses in ``tokens`` order.

        Tasks are delivered first in, first out, so only the oldest :data:`DEFAULT_CHECK_CHUNK`
        pending statuses are read per check: the benchmark shares the machine's cores with the
        workers and must not spend them re-reading every status 50 times a second.
        """
        pending = list(tokens)
        done: dict[str, dict[str, Any]] = {}
        while pending:
            if time.perf_counter() - start > DEFAULT_CYCLE_TIMEOUT_S:
                raise RuntimeError(
                    f"{len(pending)} of {len(tokens)} polls unfinished after {DEFAULT_CYCLE_TIMEOUT_S}s"
                )
            chunk = pending[:DEFAULT_CHECK_CHUNK]
            raws = self.client.hmget(self.keys.status, chunk)
            still = []
            for key, raw in zip(chunk, raws, strict=True):
                if raw and tokens[key] in raw:
                    status = json.loads(raw)
                    if status.get("lastHandledReconcileAt") == tokens[key]:
                        done[key] = status
                        continue
                still.append(key)
            pending = still + pending[len(chunk) :]
            if still:
                time.sleep(DEFAULT_CHECK_INTERVAL_S)
        return [done[key] for key in tokens]


def _measure_baseline(label: str, repeats: int, work: Callable[[], None], meter: Meter) -> Baseline:
    out = Baseline(label)
    for _ in range(repeats):
        before = meter.snapshot([])
        work()
        out.runs.append(Meter.diff(before, meter.snapshot([])))
        print(f"  {label}: {out.runs[-1].wall_s:.2f}s", flush=True)
    return out


@dataclass
class Variant:
    """One server serving the repositories, with everything measured against it."""

    key: str
    title: str
    urls: list[str]
    meter: Meter
    baselines: dict[str, Baseline] = field(default_factory=dict)
    configs: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)


def measure(
    *,
    repos: int = DEFAULT_REPOS,
    repeats: int = DEFAULT_REPEATS,
    inetd: bool = True,
    whatif: bool = True,
    profile: bool = True,
    keep: bool = False,
) -> dict[str, Any]:
    """Run everything; return the raw figures (see :func:`render`)."""
    base = Path(tempfile.mkdtemp(prefix="gt-bench-poll-"))
    server = RedisServer(base / "redis")
    daemon = GitDaemon(base / "srv").start()
    front = gitwork.InetdGitDaemon(base / "srv") if inetd and gitwork.InetdGitDaemon.available() else None
    figures: dict[str, Any] = {"repos": repos, "repeats": repeats, "variants": [], "whatif": []}
    profile = profile and pyspy.available()
    try:
        t0 = time.perf_counter()
        remote_repos = gitwork.make_repos(daemon, repos)
        mirrors = gitwork.clone_mirrors([r.url for r in remote_repos], base / "baseline-mirrors")
        print(f"setup: {repos} repositories and mirrors in {time.perf_counter() - t0:.1f}s", flush=True)
        assert daemon.proc is not None
        variants = [
            Variant(
                "daemon",
                "`git daemon` (tests.gitservers.GitDaemon)",
                [r.url for r in remote_repos],
                Meter(daemon_pid=daemon.proc.pid, redis_pid=server.proc.pid),
            )
        ]
        if front is not None:
            front.start()
            assert front.proc is not None
            variants.append(
                Variant(
                    "inetd",
                    f"`git daemon --inetd` behind socat (listen backlog {gitwork.DEFAULT_INETD_BACKLOG})",
                    [front.url(r.name) for r in remote_repos],
                    Meter(daemon_pid=front.proc.pid, redis_pid=server.proc.pid, direct=True),
                )
            )
        for variant in variants:
            print(f"server: {variant.title}", flush=True)
            gitwork.set_origin(mirrors, variant.urls)
            _measure_baselines(variant, mirrors, repeats)
            for processes, threads in DEFAULT_CONFIGS:
                variant.configs[(processes, threads)] = _measure_config(
                    base,
                    server,
                    variant,
                    processes=processes,
                    threads=threads,
                    repeats=repeats,
                    profile=profile and variant is variants[0] and (processes, threads) == DEFAULT_CONFIGS[0],
                    paired_work=_lower_bound_work(variant.urls, processes * threads),
                )
            figures["variants"].append(variant)
        if whatif:
            print("what-if worker variants (1x8, first server)", flush=True)
            for change in DEFAULT_WHATIFS:
                figures["whatif"].append(
                    _measure_config(
                        base,
                        server,
                        variants[0],
                        processes=1,
                        threads=8,
                        repeats=repeats,
                        whatif=change,
                        paired_work=_lower_bound_work(variants[0].urls, 8),
                    )
                )
    finally:
        if front is not None:
            front.stop()
        daemon.stop()
        server.stop()
        if keep:
            print(f"kept {base}", flush=True)
        else:
            shutil.rmtree(base, ignore_errors=True)
    return figures


def _lower_bound_work(urls: list[str], concurrency: int) -> Callable[[], None]:
    """One run of the lower bound: ``git ls-remote`` (protocol v0) over ``urls``, ``concurrency`` wide."""
    return lambda: gitwork.ls_remote_pool(urls, concurrency=concurrency, protocol=0)


def _measure_baselines(variant: Variant, mirrors: list[Path], repeats: int) -> None:
    b, meter, urls = variant.baselines, variant.meter, variant.urls
    b["seq_default"] = _measure_baseline(
        "sequential git fetch (git's default protocol, v2)",
        repeats,
        lambda: gitwork.sequential_fetch(mirrors, protocol=None),
        meter,
    )
    b["seq_v0"] = _measure_baseline(
        "sequential git fetch, -c protocol.version=0",
        repeats,
        lambda: gitwork.sequential_fetch(mirrors, protocol=0),
        meter,
    )
    for conc in sorted({p * t for p, t in DEFAULT_CONFIGS}):
        b[f"ls_v0_{conc}"] = _measure_baseline(
            f"ls-remote ×{conc} threads, -c protocol.version=0",
            repeats,
            _lower_bound_work(urls, conc),
            meter,
        )
        b[f"ls_v2_{conc}"] = _measure_baseline(
            f"ls-remote ×{conc} threads (git's default protocol, v2)",
            repeats,
            lambda conc=conc: gitwork.ls_remote_pool(urls, concurrency=conc, protocol=None),
            meter,
        )


def _measure_config(
    base: Path,
    server: RedisServer,
    variant: Variant,
    *,
    processes: int,
    threads: int,
    repeats: int,
    whatif: str | None = None,
    profile: bool = False,
    paired_work: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Start the workers, warm up, measure ``repeats`` cycles (and one profiled cycle if asked).

    ``paired_work`` (the lower bound at the same concurrency) runs once before each cycle."""
    label = f"{variant.key}-{processes}x{threads}" + (
        f"-{whatif.replace(',', '+')}" if whatif is not None else ""
    )
    env = gt_env(server.url(0), base / "gt", key_prefix=f"bench-{label}:")
    module = "gitops_tasks.cli"
    if whatif is not None:
        module = "benchmarks.whatif_worker"
        changes = [c for c in whatif.split(",") if c != "log_warning"]
        env[whatif_worker.ENV_VAR] = ",".join(changes)
        if "log_warning" in whatif:
            env["GITOPS_TASKS_LOG_LEVEL"] = "WARNING"
    settings = settings_of(env)
    client = redis.Redis.from_url(settings.effective_redis_url(), decode_responses=True)
    client.flushdb()
    objects = _objects(variant.urls)
    Catalog(client, Keys(settings.key_prefix)).apply(objects, entry_for=entry_for)
    log_dir = base / "logs" / label
    log_dir.mkdir(parents=True, exist_ok=True)
    workers: list[Proc] = []
    out: dict[str, Any] = {"whatif": whatif}
    try:
        for i in range(processes):
            workers.append(
                start_worker(
                    f"worker-{label}-{i}",
                    env,
                    log_dir,
                    "-c",
                    str(threads),
                    "-P",
                    "threads",
                    "-Q",
                    "git",
                    module=module,
                )
            )
        cycles = PollCycles(env, [o.ref for o in objects], meter=variant.meter)
        out["warmup"] = cycles.run(f"{label}-warmup", workers)
        print(f"  {label} warm-up: {out['warmup'].wall_s:.2f}s {out['warmup'].results}", flush=True)
        out["cycles"] = []
        # The lower bound at the same concurrency runs right before each cycle (while the idle
        # workers wait on an empty queue), so both see the same machine: on a shared 2-core machine
        # the standalone baselines, measured minutes earlier, drift by ±20 %.
        paired = Baseline(f"ls-remote ×{processes * threads} threads, -c protocol.version=0, paired")
        for i in range(repeats):
            if paired_work is not None:
                before = variant.meter.snapshot([])
                paired_work()
                paired.runs.append(Meter.diff(before, variant.meter.snapshot([])))
            cycle = cycles.run(f"{label}-{i}", workers)
            out["cycles"].append(cycle)
            print(
                f"  {label} cycle {i + 1}: {cycle.wall_s:.2f}s {cycle.results} "
                f"drops={cycle.counters.listen_overflows}"
                + (f"; paired lower bound {paired.runs[-1].wall_s:.2f}s" if paired.runs else ""),
                flush=True,
            )
        out["paired"] = paired if paired.runs else None
        if profile:
            with pyspy.record([w.pid for w in workers], log_dir) as paths:
                out["profiled"] = cycles.run(f"{label}-profiled", workers)
            out["profile"] = pyspy.summarise(paths)
            print(f"  {label} profiled cycle: {out['profiled'].wall_s:.2f}s", flush=True)
    finally:
        for w in workers:
            w.stop()
        client.close()
    return out


def render(figures: dict[str, Any], *, command: str) -> Section:
    """The ``poll`` section of BENCHMARKS.md (see :mod:`benchmarks.poll_report`)."""
    from benchmarks import poll_report

    return poll_report.render(figures, command=command)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=DEFAULT_REPOS)
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    parser.add_argument(
        "--no-inetd", action="store_true", help="skip the second server (socat + git daemon --inetd)"
    )
    parser.add_argument(
        "--no-whatif", action="store_true", help="skip the worker variants with optimisations patched in"
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile of the 1x8 worker")
    parser.add_argument("--write", action="store_true", help="also update the poll section of BENCHMARKS.md")
    args = parser.parse_args(argv)
    exit_cleanly_on_signals()
    figures = measure(
        repos=args.repos,
        repeats=args.repeats,
        inetd=not args.no_inetd,
        whatif=not args.no_whatif,
        profile=not args.no_profile,
        keep=args.keep,
    )
    section = render(figures, command="python -m benchmarks.bench_poll " + " ".join(argv or sys.argv[1:]))
    print(section.markdown)
    if args.write:
        from benchmarks.run import write

        write([section])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
