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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from beat_schedule import entry_for
from benchmarks import gitwork, pyspy, whatif_worker
from benchmarks.report import Section, median, percentile, table
from benchmarks.stack import (
    child_pids,
    children_cpu_seconds,
    cpu_seconds,
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
DEFAULT_REPEATS = 3
#: Worker configurations measured: (processes, threads per process).
DEFAULT_CONFIGS = ((1, 8), (2, 8))
#: A cycle that takes longer than this fails the benchmark (seconds).
DEFAULT_CYCLE_TIMEOUT_S = 600.0
#: How often the benchmark checks statuses while a cycle runs (seconds).
DEFAULT_CHECK_INTERVAL_S = 0.02
#: Statuses read per check (the oldest pending ones).
DEFAULT_CHECK_CHUNK = 64
#: Worker variants measured by ``--whatif`` (1 process × 8 threads, first server): see whatif_worker.
DEFAULT_WHATIFS = (
    "log_warning",
    "no_events",
    "memo_commit",
    "no_renew_thread",
    "log_warning,no_events,memo_commit,no_renew_thread",
)
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
    listen_overflows: int = 0

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
        pending = list(tokens)
        done: dict[str, dict[str, Any]] = {}
        while pending:
            if time.perf_counter() - start > DEFAULT_CYCLE_TIMEOUT_S:
                raise RuntimeError(
                    f"{len(pending)} of {len(tokens)} polls unfinished after {DEFAULT_CYCLE_TIMEOUT_S}s"
                )
            raws = self.client.hmget(self.keys.status, pending)
            still = []
            for key, raw in zip(pending, raws, strict=True):
                if raw and tokens[key] in raw:
                    status = json.loads(raw)
                    if status.get("lastHandledReconcileAt") == tokens[key]:
                        done[key] = status
                        continue
                still.append(key)
            pending = still
            if pending:
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
                )
            figures["variants"].append(variant)
        if whatif:
            print("what-if worker variants (1x8, first server)", flush=True)
            for change in DEFAULT_WHATIFS:
                figures["whatif"].append(
                    _measure_config(
                        base, server, variants[0], processes=1, threads=8, repeats=repeats, whatif=change
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
            lambda conc=conc: gitwork.ls_remote_pool(urls, concurrency=conc, protocol=0),
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
) -> dict[str, Any]:
    """Start the workers, warm up, measure ``repeats`` cycles (and one profiled cycle if asked)."""
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
    workers = [
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
        for i in range(processes)
    ]
    out: dict[str, Any] = {"whatif": whatif}
    try:
        cycles = PollCycles(env, [o.ref for o in objects], meter=variant.meter)
        out["warmup"] = cycles.run(f"{label}-warmup", workers)
        print(f"  {label} warm-up: {out['warmup'].wall_s:.2f}s {out['warmup'].results}", flush=True)
        out["cycles"] = []
        for i in range(repeats):
            cycle = cycles.run(f"{label}-{i}", workers)
            out["cycles"].append(cycle)
            print(
                f"  {label} cycle {i + 1}: {cycle.wall_s:.2f}s {cycle.results} "
                f"drops={cycle.counters.listen_overflows}",
                flush=True,
            )
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


# ------------------------------------------------------------------------------------ report


def _f(x: float, digits: int = 2) -> str:
    return f"{x:.{digits}f}"


def _ms(seconds: float, repos: int) -> str:
    return _f(seconds / repos * 1000, 1)


def _median_cycle(cycles: list[Cycle]) -> Cycle:
    return sorted(cycles, key=lambda c: c.wall_s)[len(cycles) // 2]


def _variant_markdown(v: Variant, repos: int, primary: bool) -> tuple[str, list[str]]:
    b = v.baselines
    seq, seq0 = b["seq_default"].wall, b["seq_v0"].wall
    rows: list[list[str]] = []
    verdicts: list[str] = []

    def spread(walls: list[float]) -> str:
        return f"{_f(min(walls))}–{_f(max(walls))}"

    for key, base in b.items():
        name = base.label if key.startswith("seq") else f"lower bound: {base.label}"
        rows.append(
            [
                name,
                _f(base.wall),
                spread(base.walls),
                _f(repos / base.wall, 0),
                _f(seq / base.wall),
                _f(seq0 / base.wall),
                "—",
                str(base.median_run().listen_overflows),
            ]
        )
    for (processes, threads), data in v.configs.items():
        cycles: list[Cycle] = data["cycles"]
        wall = median([c.wall_s for c in cycles])
        conc = processes * threads
        speedup, ratio = seq / wall, wall / b[f"ls_v0_{conc}"].wall
        rows.append(
            [
                f"**gitops-tasks {processes} process{'es' if processes > 1 else ''} × {threads} threads**",
                f"**{_f(wall)}**",
                spread([c.wall_s for c in cycles]),
                _f(repos / wall, 0),
                f"**{_f(speedup)}**",
                _f(seq0 / wall),
                f"**{_f(ratio)}**",
                str(_median_cycle(cycles).counters.listen_overflows),
            ]
        )
        verdicts.append(
            f"- {processes}×{threads}: **{_f(speedup, 1)}×** the sequential fetch (target ≥ {TARGET_SPEEDUP:.0f}×: "
            f"**{'met' if speedup >= TARGET_SPEEDUP else 'missed'}**); **{_f(ratio)}×** the ls-remote lower bound "
            f"at concurrency {conc} (target ≤ {TARGET_RATIO}×: **{'met' if ratio <= TARGET_RATIO else 'missed'}**). "
            f"Against a sequential fetch that also uses protocol v0: {_f(seq0 / wall, 1)}×."
        )
    headers = [
        "",
        "median s",
        "range s",
        "polls/s",
        "speed-up vs sequential fetch (v2)",
        "speed-up vs sequential fetch (v0)",
        "ratio to lower bound (v0, same concurrency)",
        "listen-queue drops",
    ]
    cpu_rows: list[list[str]] = []
    for (processes, threads), data in v.configs.items():
        mid = _median_cycle(data["cycles"])
        c = mid.counters
        cpu_rows.append(
            [
                f"gitops-tasks {processes}×{threads}",
                _f(c.wall_s),
                _ms(c.poller_cpu_s, repos),
                _ms(c.git_client_cpu_s, repos),
                _ms(c.daemon_cpu_s, repos),
                _ms(c.redis_cpu_s, repos),
                _ms(c.machine_busy_s, repos),
                _f(c.busy_pct(), 0) + " %",
                f"{_f(median(mid.run_s) * 1000, 0)} / {_f(percentile(mid.run_s, 99) * 1000, 0)}",
            ]
        )
    for key, base in b.items():
        if key == "seq_v0" or key.startswith("ls_v0_"):
            c = base.median_run()
            cpu_rows.append(
                [
                    base.label,
                    _f(c.wall_s),
                    "—",
                    _ms(c.git_client_cpu_s, repos),
                    _ms(c.daemon_cpu_s, repos),
                    "—",
                    _ms(c.machine_busy_s, repos),
                    _f(c.busy_pct(), 0) + " %",
                    "—",
                ]
            )
    cpu_headers = [
        "",
        "wall s",
        "worker processes ms/poll",
        "git client ms/poll",
        "git server ms/poll",
        "redis-server ms/poll",
        "whole machine ms/poll",
        "machine busy",
        "task run p50 / p99 ms",
    ]
    redis_rows = []
    for (processes, threads), data in v.configs.items():
        mid = _median_cycle(data["cycles"])
        per_poll = {k: n / repos for k, n in mid.redis_calls.items() if k not in ("info", "hmget") and n > 0}
        top = sorted(per_poll.items(), key=lambda kv: -kv[1])
        redis_rows.append(
            [
                f"gitops-tasks {processes}×{threads}",
                _f(sum(per_poll.values()), 1),
                ", ".join(f"{k} {n:.1f}" for k, n in top),
                _f(_median_cycle(data["cycles"]).enqueue_s),
            ]
        )
    md = [
        f"### Server: {v.title}\n",
        table(headers, rows),
        (
            "**Targets (on this server, the one the brief names):**\n"
            if primary
            else "**Targets on this server:**\n"
        ),
        "\n".join(verdicts) + "\n",
        "**Where the CPU goes** (median cycle or run; milliseconds of CPU per poll from `/proc`: "
        "worker processes' own threads, their git subprocesses, the git server's per-connection "
        "processes, redis-server, and the whole machine including everything else; machine busy = "
        "whole-machine CPU ÷ (wall × cores)):\n",
        table(cpu_headers, cpu_rows),
        "**Redis commands per poll** (`INFO commandstats` over the median cycle, excluding the "
        "benchmark's own HMGET status checks and INFO; includes broker traffic and task events):\n",
        table(
            ["", "commands per poll", "by command, per poll", f"enqueue time of the {repos} tasks, s"],
            redis_rows,
        ),
    ]
    return "\n".join(md), verdicts


def render(figures: dict[str, Any], *, command: str) -> Section:
    """The ``poll`` section of BENCHMARKS.md ."""
    repos = figures["repos"]
    parts = [
        f"## Poll cycle: {repos} unchanged repositories over `git daemon`\n",
        f"Run {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} with `{command}`.\n",
        "**What is measured.** The wall time for every one of "
        f"{repos} GitRepository objects to be polled once when nothing changed upstream. For "
        "gitops-tasks: write a fresh token per object into the `requests` hash, publish one "
        "`gitops.git.poll` task per object (`tasks.enqueue.send`, one producer), and stop the clock "
        "when every status has `lastHandledReconcileAt` equal to its token (checked every 20 ms). "
        "Enqueueing is inside the measured time.\n",
        f"**Setup.** {repos} bare repositories (one commit each on `main`) served on 127.0.0.1; a "
        "private redis-server; workers started as `python -m gitops_tasks.cli worker -c 8 -P threads "
        "-Q git` with default settings (log level INFO, task events on), one or two processes sharing "
        "one cache directory. Objects have `interval: 1h`; no beat runs. Each configuration is warmed "
        "up by one full cycle (every mirror exists, every object has a recorded revision), then "
        f"{figures['repeats']} cycles are measured and the median is reported. Baselines over the same "
        "repositories: (a) sequential `git -C <mirror> fetch origin` over pre-made `git clone "
        "--mirror` copies, with git's default protocol (v2) and with `-c protocol.version=0`; "
        "(b) the lower bound: the same number of `git ls-remote` subprocesses on a thread pool as "
        "wide as the workers' total concurrency. gitops-tasks polls `git://` with protocol v0 "
        "(`gitcli.PROTOCOL_VERSION`), so the v0 lower bound is the fair one. 'listen-queue drops' "
        "is the kernel's `ListenOverflows` counter over the run (each drop costs the client a 1 s "
        "SYN retransmit).\n",
    ]
    for i, variant in enumerate(figures["variants"]):
        text, _verdicts = _variant_markdown(variant, repos, primary=i == 0)
        parts.append(text)
    if figures["variants"]:
        parts.append(_profile_markdown(figures["variants"][0], repos))
        parts.append(_whatif_markdown(figures["variants"][0], figures["whatif"], repos))
    return Section("poll", "\n".join(p for p in parts if p))


WHATIF_LABELS = {
    "log_warning": "worker log level WARNING instead of INFO (no per-task log lines)",
    "no_events": "no Celery task events (no `-E`, `worker_send_task_events` off)",
    "memo_commit": "no `git cat-file -e` when this process already saw the commit",
    "no_renew_thread": "no renewal thread per run lock",
}


def _whatif_markdown(primary: Variant, whatifs: list[dict[str, Any]], repos: int) -> str:
    if not whatifs or DEFAULT_CONFIGS[0] not in primary.configs:
        return ""
    processes, threads = DEFAULT_CONFIGS[0]
    shipped = primary.configs[DEFAULT_CONFIGS[0]]
    lower = primary.baselines[f"ls_v0_{processes * threads}"].wall
    seq = primary.baselines["seq_default"].wall
    shipped_wall = median([c.wall_s for c in shipped["cycles"]])
    rows = []
    for data in [shipped, *whatifs]:
        cycles: list[Cycle] = data["cycles"]
        wall = median([c.wall_s for c in cycles])
        mid = _median_cycle(cycles).counters
        name = (
            "as shipped"
            if data["whatif"] is None
            else " + ".join(WHATIF_LABELS[c] for c in data["whatif"].split(","))
        )
        if data["whatif"] is not None and "," in data["whatif"]:
            name = "all four together"
        rows.append(
            [
                name,
                _f(wall),
                _f(repos / wall, 0),
                _ms(mid.poller_cpu_s, repos),
                _ms(mid.git_client_cpu_s, repos),
                _ms(mid.machine_busy_s, repos),
                f"{_f(100 * (shipped_wall - wall) / shipped_wall, 0)} %",
                _f(seq / wall, 1),
                _f(wall / lower),
            ]
        )
    return "\n".join(
        [
            f"### What would help: worker variants ({processes} process × {threads} threads, first server)\n",
            "Each row runs the same cycle with one candidate change patched into the worker at start-up "
            "by `benchmarks/whatif_worker.py` (the code under test is unchanged; the patch stands in for "
            "the change proposed below), warmed up and measured the same way.\n",
            table(
                [
                    "worker",
                    "median s",
                    "polls/s",
                    "worker processes ms/poll",
                    "git client ms/poll",
                    "whole machine ms/poll",
                    "time saved",
                    "speed-up vs sequential (v2)",
                    "ratio to lower bound",
                ],
                rows,
            ),
        ]
    )


def _profile_markdown(primary: Variant, repos: int) -> str:
    data = primary.configs.get(DEFAULT_CONFIGS[0], {})
    counts = data.get("profile")
    if not counts:
        return ""
    total = sum(counts.values())
    cycle: Cycle = data["profiled"]
    rows = [
        [name, f"{100 * n / total:.0f} %", _f(n / pyspy.DEFAULT_RATE_HZ / repos * 1000, 1)]
        for name, n in counts.most_common()
    ]
    gil_s = total / pyspy.DEFAULT_RATE_HZ
    processes, threads = DEFAULT_CONFIGS[0]
    return "\n".join(
        [
            f"### Profile of the {processes}×{threads} worker (py-spy, GIL holder only)\n",
            f"One extra cycle ({_f(cycle.wall_s)} s under the profiler) sampled at {pyspy.DEFAULT_RATE_HZ} Hz with "
            "`py-spy record --gil`: each sample is the Python stack of the thread holding the GIL, so this "
            f"splits the worker's Python time ({_f(gil_s)} s, i.e. {_f(gil_s / repos * 1000, 1)} ms per poll, "
            f"the GIL held {_f(100 * gil_s / cycle.wall_s, 0)} % of the cycle). "
            "Samples are put in the first bucket whose frame appears in the stack.\n",
            table(["bucket", "share of GIL-held samples", "ms per poll"], rows),
        ]
    )


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
