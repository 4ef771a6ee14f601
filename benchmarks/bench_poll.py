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
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from beat_schedule import entry_for
from benchmarks import gitwork
from benchmarks.report import Section, median, percentile, table
from benchmarks.stack import children_cpu_seconds, cpu_seconds, gt_env, settings_of, start_worker
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
#: Targets from the brief: speed-up over the sequential fetch, ratio to the ls-remote lower bound.
TARGET_SPEEDUP = 5.0
TARGET_RATIO = 1.5


@dataclass
class Cycle:
    """One measured cycle of gitops-tasks."""

    wall_s: float
    enqueue_s: float
    worker_cpu_s: float
    git_client_cpu_s: float
    daemon_cpu_s: float
    redis_cpu_s: float
    redis_calls: dict[str, int]
    run_s: list[float]
    results: dict[str, int]


@dataclass
class Baseline:
    label: str
    walls: list[float] = field(default_factory=list)
    client_cpu: list[float] = field(default_factory=list)
    daemon_cpu: list[float] = field(default_factory=list)

    @property
    def wall(self) -> float:
        return median(self.walls)


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

    def __init__(self, env: dict[str, str], refs: list[ObjectRef], *, redis_pid: int, daemon_pid: int) -> None:
        self.settings = settings_of(env)
        self.app = make_app(self.settings)
        self.client = redis.Redis.from_url(self.settings.effective_redis_url(), decode_responses=True)
        self.keys = Keys(self.settings.key_prefix)
        self.refs = refs
        self.redis_pid = redis_pid
        self.daemon_pid = daemon_pid

    def run(self, label: str, workers: list[Proc]) -> Cycle:
        tokens = {ref.key: f"bench-{label}-{i}-{secrets.token_hex(3)}" for i, ref in enumerate(self.refs)}
        self.client.hset(self.keys.requests, mapping=tokens)
        calls0 = _commandstats(self.client)
        cpu0 = self._cpu(workers)
        start = time.perf_counter()
        with self.app.producer_or_acquire() as producer:
            for ref in self.refs:
                send(
                    self.app, ref, task=tasknames.GIT_POLL, queue="git", timeout_s=60.0,
                    reason="manual", producer=producer,
                )
        enqueue_s = time.perf_counter() - start
        statuses = self._wait(tokens, start)
        wall_s = time.perf_counter() - start
        cpu1 = self._cpu(workers)
        calls1 = _commandstats(self.client)
        calls = {k: v - calls0.get(k, 0) for k, v in calls1.items() if v - calls0.get(k, 0) > 0}
        calls["info"] = calls.get("info", 0) - 1  # the benchmark's own (its status checks are the HMGETs)
        results: dict[str, int] = {}
        for status in statuses:
            results[status.get("lastResult", "?")] = results.get(status.get("lastResult", "?"), 0) + 1
        return Cycle(
            wall_s=wall_s,
            enqueue_s=enqueue_s,
            worker_cpu_s=cpu1[0] - cpu0[0],
            git_client_cpu_s=cpu1[1] - cpu0[1],
            daemon_cpu_s=cpu1[2] - cpu0[2],
            redis_cpu_s=cpu1[3] - cpu0[3],
            redis_calls=calls,
            run_s=[float(s.get("lastRunDurationSeconds", 0.0)) for s in statuses],
            results=results,
        )

    def _cpu(self, workers: list[Proc]) -> tuple[float, float, float, float]:
        pids = [w.pid for w in workers]
        return (
            sum(cpu_seconds(p) for p in pids),
            sum(children_cpu_seconds(p) for p in pids),
            children_cpu_seconds(self.daemon_pid),
            cpu_seconds(self.redis_pid),
        )

    def _wait(self, tokens: dict[str, str], start: float) -> list[dict[str, Any]]:
        pending = list(tokens)
        done: dict[str, dict[str, Any]] = {}
        while pending:
            if time.perf_counter() - start > DEFAULT_CYCLE_TIMEOUT_S:
                raise RuntimeError(f"{len(pending)} of {len(tokens)} polls unfinished after {DEFAULT_CYCLE_TIMEOUT_S}s")
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


def _measure_baseline(label: str, repeats: int, work: Callable[[], None], daemon_pid: int) -> Baseline:
    out = Baseline(label)
    for _ in range(repeats):
        client0, daemon0 = gitwork.children_cpu_s(), children_cpu_seconds(daemon_pid)
        start = time.perf_counter()
        work()
        out.walls.append(time.perf_counter() - start)
        out.client_cpu.append(gitwork.children_cpu_s() - client0)
        out.daemon_cpu.append(children_cpu_seconds(daemon_pid) - daemon0)
        print(f"  {label}: {out.walls[-1]:.2f}s", flush=True)
    return out


def measure(*, repos: int = DEFAULT_REPOS, repeats: int = DEFAULT_REPEATS, keep: bool = False) -> dict[str, Any]:
    """Run everything; return the raw figures (see :func:`render`)."""
    base = Path(tempfile.mkdtemp(prefix="gt-bench-poll-"))
    server = RedisServer(base / "redis")
    daemon = GitDaemon(base / "srv").start()
    figures: dict[str, Any] = {"repos": repos, "repeats": repeats, "baselines": {}, "configs": {}}
    try:
        t0 = time.perf_counter()
        remote_repos = gitwork.make_repos(daemon, repos)
        urls = [r.url for r in remote_repos]
        mirrors = gitwork.clone_mirrors(urls, base / "baseline-mirrors")
        print(f"setup: {repos} repositories and mirrors in {time.perf_counter() - t0:.1f}s", flush=True)
        assert daemon.proc is not None
        dpid = daemon.proc.pid

        baselines = figures["baselines"]
        baselines["seq_default"] = _measure_baseline(
            "sequential git fetch (git's default protocol, v2)", repeats,
            lambda: gitwork.sequential_fetch(mirrors, protocol=None), dpid,
        )
        baselines["seq_v0"] = _measure_baseline(
            "sequential git fetch, -c protocol.version=0", repeats,
            lambda: gitwork.sequential_fetch(mirrors, protocol=0), dpid,
        )
        for conc in sorted({p * t for p, t in DEFAULT_CONFIGS}):
            baselines[f"ls_v0_{conc}"] = _measure_baseline(
                f"ls-remote ×{conc} threads, -c protocol.version=0", repeats,
                lambda conc=conc: gitwork.ls_remote_pool(urls, concurrency=conc, protocol=0), dpid,
            )
            baselines[f"ls_v2_{conc}"] = _measure_baseline(
                f"ls-remote ×{conc} threads (git's default protocol, v2)", repeats,
                lambda conc=conc: gitwork.ls_remote_pool(urls, concurrency=conc, protocol=None), dpid,
            )

        for processes, threads in DEFAULT_CONFIGS:
            figures["configs"][(processes, threads)] = _measure_config(
                base, server, dpid, urls, processes=processes, threads=threads, repeats=repeats
            )
    finally:
        daemon.stop()
        server.stop()
        if not keep:
            shutil.rmtree(base, ignore_errors=True)
    return figures


def _measure_config(
    base: Path, server: RedisServer, daemon_pid: int, urls: list[str], *, processes: int, threads: int, repeats: int
) -> dict[str, Any]:
    label = f"{processes}x{threads}"
    env = gt_env(server.url(0), base / "gt", key_prefix=f"bench{label}:")
    settings = settings_of(env)
    client = redis.Redis.from_url(settings.effective_redis_url(), decode_responses=True)
    client.flushdb()
    objects = _objects(urls)
    Catalog(client, Keys(settings.key_prefix)).apply(objects, entry_for=entry_for)
    log_dir = base / "logs" / label
    log_dir.mkdir(parents=True, exist_ok=True)
    workers = [
        start_worker(f"worker-{label}-{i}", env, log_dir, "-c", str(threads), "-P", "threads", "-Q", "git")
        for i in range(processes)
    ]
    try:
        cycles = PollCycles(env, [o.ref for o in objects], redis_pid=server.proc.pid, daemon_pid=daemon_pid)
        warm = cycles.run(f"{label}-warmup", workers)
        print(f"  gitops-tasks {label} warm-up: {warm.wall_s:.2f}s {warm.results}", flush=True)
        measured = []
        for i in range(repeats):
            cycle = cycles.run(f"{label}-{i}", workers)
            measured.append(cycle)
            print(f"  gitops-tasks {label} cycle {i + 1}: {cycle.wall_s:.2f}s {cycle.results}", flush=True)
        worker_log_tail = workers[0].log()[-2000:]
    finally:
        for w in workers:
            w.stop()
    return {"warmup": warm, "cycles": measured, "log_tail": worker_log_tail}


# ------------------------------------------------------------------------------------ report


def _fmt(x: float, digits: int = 2) -> str:
    return f"{x:.{digits}f}"


def render(figures: dict[str, Any], *, command: str) -> Section:
    """The ``poll`` section of BENCHMARKS.md."""
    repos = figures["repos"]
    b: dict[str, Baseline] = figures["baselines"]
    seq = b["seq_default"].wall
    seq0 = b["seq_v0"].wall
    rows: list[list[str]] = []
    verdicts: list[str] = []
    for key in ("seq_default", "seq_v0"):
        base = b[key]
        rows.append([base.label, _fmt(base.wall), f"{_fmt(min(base.walls))}–{_fmt(max(base.walls))}",
                     _fmt(repos / base.wall, 0), _fmt(seq / base.wall), _fmt(seq0 / base.wall), "—"])
    for key, base in b.items():
        if key.startswith("ls_"):
            rows.append([f"lower bound: {base.label}", _fmt(base.wall),
                         f"{_fmt(min(base.walls))}–{_fmt(max(base.walls))}", _fmt(repos / base.wall, 0),
                         _fmt(seq / base.wall), _fmt(seq0 / base.wall), "—"])
    cpu_rows: list[list[str]] = []
    redis_rows: list[list[str]] = []
    for (processes, threads), data in figures["configs"].items():
        cycles: list[Cycle] = data["cycles"]
        walls = [c.wall_s for c in cycles]
        wall = median(walls)
        conc = processes * threads
        lower = b[f"ls_v0_{conc}"].wall
        speedup, ratio = seq / wall, wall / lower
        rows.append([f"**gitops-tasks {processes} process × {threads} threads**", f"**{_fmt(wall)}**",
                     f"{_fmt(min(walls))}–{_fmt(max(walls))}", _fmt(repos / wall, 0),
                     f"**{_fmt(speedup)}**", _fmt(seq0 / wall), f"**{_fmt(ratio)}**"])
        verdicts.append(
            f"- {processes}×{threads}: speed-up {_fmt(speedup)}× over the sequential fetch (target ≥ "
            f"{TARGET_SPEEDUP:.0f}×: **{'met' if speedup >= TARGET_SPEEDUP else 'missed'}**); "
            f"{_fmt(ratio)}× the ls-remote lower bound at concurrency {conc} (target ≤ {TARGET_RATIO}×: "
            f"**{'met' if ratio <= TARGET_RATIO else 'missed'}**). Against a sequential fetch that also "
            f"uses protocol v0 the speed-up is {_fmt(seq0 / wall)}×."
        )
        mid = sorted(cycles, key=lambda c: c.wall_s)[len(cycles) // 2]
        cpu_total = mid.worker_cpu_s + mid.git_client_cpu_s + mid.daemon_cpu_s + mid.redis_cpu_s
        cpu_rows.append([
            f"gitops-tasks {processes}×{threads}", _fmt(mid.wall_s), _fmt(mid.worker_cpu_s / repos * 1000, 1),
            _fmt(mid.git_client_cpu_s / repos * 1000, 1), _fmt(mid.daemon_cpu_s / repos * 1000, 1),
            _fmt(mid.redis_cpu_s / repos * 1000, 1), _fmt(cpu_total / (mid.wall_s * _cores()) * 100, 0) + " %",
            _fmt(median(mid.run_s) * 1000, 0) + " / " + _fmt(percentile(mid.run_s, 99) * 1000, 0),
        ])
        per_poll = {k: v / repos for k, v in mid.redis_calls.items() if k not in ("info", "hmget") and v > 0}
        hmget_task = max(mid.redis_calls.get("hmget", 0), 0)
        top = sorted(per_poll.items(), key=lambda kv: -kv[1])
        redis_rows.append([
            f"gitops-tasks {processes}×{threads}", _fmt(sum(per_poll.values()), 1),
            ", ".join(f"{k} {v:.1f}" for k, v in top[:12]),
            str(hmget_task),
        ])
    for key, base in b.items():
        if key.startswith("ls_v0_") or key == "seq_v0":
            i = base.walls.index(sorted(base.walls)[len(base.walls) // 2])
            cpu_rows.append([
                base.label, _fmt(base.walls[i]), "—", _fmt(base.client_cpu[i] / repos * 1000, 1),
                _fmt(base.daemon_cpu[i] / repos * 1000, 1), "—",
                _fmt((base.client_cpu[i] + base.daemon_cpu[i]) / (base.walls[i] * _cores()) * 100, 0) + " %", "—",
            ])
    md = [
        "## Poll cycle: 500 unchanged repositories over `git daemon`\n",
        f"Run {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} with `{command}`.\n",
        "**What is measured.** The wall time for every one of "
        f"{repos} GitRepository objects to be polled once when nothing changed upstream. For "
        "gitops-tasks: write a fresh token per object into the `requests` hash, publish one "
        "`gitops.git.poll` task per object (`tasks.enqueue.send`, one producer), stop the clock when "
        "every status has `lastHandledReconcileAt` equal to its token (checked every 20 ms). "
        "Enqueueing is inside the measured time.\n",
        f"**Setup.** One `git daemon` on 127.0.0.1 serving {repos} bare repositories (one commit each, "
        "branch `main`); a private redis-server; workers started with "
        "`python -m gitops_tasks.cli worker -c 8 -P threads -Q git` (default settings: log level "
        "INFO, task events on), one or two processes sharing one cache directory. Objects have "
        "`interval: 1h` and no beat runs. Each configuration is warmed up with one full cycle (mirrors "
        f"exist, every object has a recorded revision), then {figures['repeats']} cycles are measured; "
        "the median is reported. Baselines over the same repositories: (a) a sequential "
        "`git -C <mirror> fetch origin` over 500 pre-made `git clone --mirror` copies, with git's default "
        "protocol (v2) and with `-c protocol.version=0`; (b) the lower bound, 500 `git ls-remote` "
        "subprocesses on a thread pool of the same concurrency as the workers.\n",
        table(
            ["", "median s", "range s", "polls/s", "speed-up vs sequential fetch (v2)",
             "speed-up vs sequential fetch (v0)", "ratio to lower bound (v0, same concurrency)"],
            rows,
        ),
        "**Targets.**\n",
        "\n".join(verdicts) + "\n",
        "**Where the time goes** (median cycle; CPU milliseconds per poll, from `/proc/<pid>/stat`: "
        "worker processes' own CPU, their git subprocesses, `git daemon`'s children, redis-server; "
        "busy = all of that ÷ (wall × cores)):\n",
        table(
            ["", "wall s", "worker Python ms/poll", "git client ms/poll", "git daemon ms/poll",
             "redis ms/poll", "machine busy", "task run time p50 / p99 ms"],
            cpu_rows,
        ),
        "**Redis commands per poll** (`INFO commandstats` over the median cycle, the benchmark's own "
        "HSET/HMGET/INFO excluded; the list includes the broker's and task events' traffic):\n",
        table(["", "commands per poll", "by command (per poll)", "HMGET calls (mostly the benchmark's checks)"],
              redis_rows),
    ]
    return Section("poll", "\n".join(md))


def _cores() -> int:
    import os

    return os.cpu_count() or 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=DEFAULT_REPOS)
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    parser.add_argument("--write", action="store_true", help="also update the poll section of BENCHMARKS.md")
    args = parser.parse_args(argv)
    figures = measure(repos=args.repos, repeats=args.repeats, keep=args.keep)
    section = render(figures, command="python -m benchmarks.bench_poll " + " ".join(argv or sys.argv[1:]))
    print(section.markdown)
    if args.write:
        from benchmarks.run import write

        write([section])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
