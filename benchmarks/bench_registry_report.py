"""The ``registry`` section of BENCHMARKS.md, from the figures :func:`bench_registry.measure` returns."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from benchmarks import bench_registry as b
from benchmarks import pyspy
from benchmarks.report import Section, median, percentile, table

MIB = 1024 * 1024

WHATIF_LABELS = {
    "policy_index": "ImagePolicies found by one indexed read instead of an HSCAN of the catalog",
    "no_renew_thread": "run lock not kept alive (not registered with the per-process renewer)",
    "no_events": "no Celery task events",
    "log_warning": "worker log level WARNING instead of INFO",
}


#: Bucket names of earlier versions of the profile buckets (pickled figures keep them).
_RENAMED = {
    "rate limiter (one EVALSHA per request)": "rate limiter (its EVALSHA calls)",
    "run-lock renewal thread start/stop": "run lock: keep-alive registration, release",
    "run-lock renewal threads": "run-lock renewer thread",
}


def _bucket_name(name: str) -> str:
    return _RENAMED.get(name, name)


def _f(x: float, digits: int = 2) -> str:
    return f"{x:.{digits}f}"


def _met(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def _per_scan_ms(seconds: float, scans: int) -> str:
    return _f(seconds / max(scans, 1) * 1000, 1)


def _median_cycle(cycles: list[b.Cycle]) -> b.Cycle:
    return sorted(cycles, key=lambda c: c.wall_s)[len(cycles) // 2]


def render(figures: dict[str, Any], *, command: str) -> Section:
    started = figures["started"].strftime("%Y-%m-%d %H:%M UTC")
    busy = 100 * figures["machine_busy"]
    parts = [
        "## Registry scanning: the global rate limit, scan throughput, tag-list memory\n",
        f"Run {started} with `{command}`, code at commit {figures['code']}. Everything ran on this "
        f"2-core machine: over the whole run it was {busy:.0f} % busy, counting our own processes. The "
        "CPU tables show how much of the machine other work took (the 'other' columns); other work "
        "makes throughput figures noisy and lengthens the path between a rate-limit slot and the "
        "request reaching the registry (see 1).\n",
        *[note + "\n" for note in figures.get("notes", [])],
        "**Setup.** A private redis-server; a registry of our own that follows the distribution spec "
        f"(`tests.registryservers.SpecRegistry` with {b.DEFAULT_REPOS} repositories `bench/img-N`, "
        f"{b.DEFAULT_TAGS} tags each, one page) in a process of its own; in front of it, in another "
        "process, a counting proxy (`benchmarks/bench_registry_servers.py`) that forwards every request "
        "over kept-alive connections, can add a fixed delay, and records when each request arrived. "
        f"{b.DEFAULT_REPOS} ImageRepository objects (`interval: 1h`, `insecure: true`) name "
        "`127.0.0.1:<proxy port>/bench/img-N`. Workers: `python -m gitops_tasks.cli worker -c 4 -P "
        "threads -Q registry`, default settings otherwise (log level INFO, task events on), limit set "
        "with `GITOPS_TASKS_REGISTRY_RPS` / `GITOPS_TASKS_REGISTRY_BURST`. A cycle: a fresh token per "
        "object in the `requests` hash, one `gitops.registry.scan` per object (`tasks.enqueue.send`, one "
        "producer), done when every status has `lastHandledReconcileAt` equal to its token (checked "
        "every 20 ms); enqueueing is inside the measured time. No beat runs.\n",
    ]
    if "limit" in figures:
        parts.append(_limit(figures["limit"], (figures.get("throughput") or {}).get("configs") or []))
    if "throughput" in figures:
        parts.append(_throughput(figures["throughput"], figures.get("throughput_invocations", 1)))
    if "lookups" in figures:
        parts.append(_lookups(figures["lookups"]))
    if "memory" in figures:
        parts.append(_memory(figures["memory"]))
    parts.append(_changes(figures))
    return Section(b.SECTION, "\n".join(p for p in parts if p))


# ------------------------------------------------------------------------------ 1


def _limit(runs: list[b.LimitRun], configs: list[b.ThroughputConfig]) -> str:
    plain = [r for r in runs if r.plain]
    logged = [r for r in runs if r.grants]
    # Of several grant-log runs, show the one whose arrivals went furthest over the envelope.
    graded = max(logged, key=lambda r: max(r.windows()[w] - b.envelope(w) for w in b.WINDOWS_S), default=None)
    profiled = next((r for r in runs if r.profile), None)
    headers = ["window w (s)", f"envelope {b.LIMIT_BURST} + {b.LIMIT_RPS}·w"]
    headers += [f"run {i + 1}: most requests in any window" for i in range(len(plain))]
    if graded is not None:
        headers += ["grant-log run: at the proxy", "grant-log run: tokens granted (Redis clock)"]
    rows = []
    worst_over = 0.0
    for w in b.WINDOWS_S:
        env = b.envelope(w)
        row: list[object] = [_f(w, 2).rstrip("0").rstrip("."), _f(env, 1)]
        for r in plain:
            seen = r.windows()[w]
            worst_over = max(worst_over, seen - env)
            row.append(f"**{seen}**" if seen > env else str(seen))
        if graded is not None:
            at_proxy, granted = graded.windows()[w], graded.grant_windows()[w]
            row += [f"**{at_proxy}**" if at_proxy > env else str(at_proxy)]
            row += [f"**{granted}**" if granted > env else str(granted)]
        rows.append(row)
    means = [r.mean_rps for r in plain]
    mid = median(means)
    calls: Counter[str] = Counter()
    requests = scans = rate_limited = 0
    for r in plain:
        calls.update(r.redis_calls)
        requests += len(r.times)
        scans += r.scans
        rate_limited += r.rate_limited
    # One EVALSHA per scan is the ImagePolicy index lookup (Catalog.image_policies_of); the rest is
    # the limiter's.
    limiter_calls = calls.get("evalsha", 0) - scans
    run_rows = [
        [
            f"run {i + 1}",
            str(len(r.times)),
            _f(r.span_s, 1),
            f"**{_f(r.mean_rps)}**",
            f"{_f(100 * r.mean_rps / b.LIMIT_RPS, 1)} %",
            _f(r.rps_between(0, b.DEFAULT_REPOS), 1),
            _f(r.rps_between(b.DEFAULT_REPOS, len(r.times)), 1),
            _f(r.longest_silence_s(), 2),
            str(r.rate_limited),
            _f(r.enqueue_s, 2),
            f"{_f(r.counters.workers_cpu_s / r.span_s, 2)} "
            f"({_f(r.counters.workers_cpu_s / r.scans * 1000, 1)})",
            _f(r.counters.redis_cpu_s / r.span_s, 2),
            _f(r.counters.other_cpu_s / r.span_s, 2),
        ]
        for i, r in enumerate(plain)
    ]
    run_headers = [
        "",
        "requests",
        "first → last request s",
        "mean rps",
        "of the limit",
        f"rps, first {b.DEFAULT_REPOS} requests (first scans)",
        "rps, the rest",
        "longest silence s",
        "scans `RateLimited`",
        "queueing s (before the workers start)",
        "workers: cores used (CPU ms per scan)",
        "redis-server: cores used",
        "rest of the machine: cores used",
    ]
    grants_note = ""
    if graded is not None and graded.grants:
        over_proxy = max(graded.windows()[w] - b.envelope(w) for w in b.WINDOWS_S)
        over_grants = max(graded.grant_windows()[w] - b.envelope(w) for w in b.WINDOWS_S)
        grants_note = (
            f"The grant-log run ({len(logged)} such run(s), the one furthest over the envelope at the "
            f"proxy shown: {len(graded.times)} requests, with workers that also "
            "append the Redis time of every token granted to a list: `bench_registry_whatif "
            "record_grants`) checks the limit where it is enforced as well as where requests arrive: "
            f"the most over the envelope in any window is {over_grants:+.0f} request(s) at the limiter "
            f"and {over_proxy:+.0f} at the proxy (the path between them, a few ms on a busy machine, "
            "can bunch requests a little). "
        )
    verdict_limit = worst_over <= 0
    verdict_mean = mid >= b.TARGET_MEAN_FRACTION * b.LIMIT_RPS
    short = [r for r in plain if r.span_s < b.LIMIT_MIN_TRAFFIC_S]
    first = [r.rps_between(0, b.DEFAULT_REPOS) for r in plain]
    rest = [r.rps_between(b.DEFAULT_REPOS, len(r.times)) for r in plain]
    at_limit_ms = median([r.counters.workers_cpu_s / r.scans * 1000 for r in plain])
    four = next((c for c in configs if c.processes == b.LIMIT_PROCESSES), None)
    free_ms = median([c.counters.workers_cpu_s / len(c.run_s) * 1000 for c in four.cycles]) if four else None
    why = (
        f"Where the rate fell short: the first {b.DEFAULT_REPOS} requests of a run (every object's "
        "first scan, which also looks up its dependents) came at "
        f"{_f(min(first), 0)}–{_f(max(first), 0)} rps, the rest at "
        f"{_f(min(rest), 1)}–{_f(max(rest), 1)} rps: in the runs where other work took most of the "
        "machine, the first scans were CPU-bound below the limit. At the limit the "
        f"workers spent {_f(at_limit_ms, 1)} ms of CPU per scan"
        + (f", against {_f(free_ms, 1)} at full speed without a limit (section 2)" if free_ms else "")
        + "."
    )
    profile_md = ""
    if profiled is not None and profiled.profile:
        total = sum(profiled.profile.values())
        per_scan = 1000 / pyspy.DEFAULT_RATE_HZ / profiled.scans
        limiter = sum(v for k, v in profiled.profile.items() if k.startswith("rate limiter"))
        rank = 1 + sum(1 for v in profiled.profile.values() if v > limiter)
        why += (
            f" In the profiled run below, the limiter took {100 * limiter / total:.0f} % of the "
            f"workers' Python time, {_f(limiter * per_scan, 1)} ms per scan, the #{rank} item."
        )
        profile_md = "\n".join(
            [
                f"**Profile of the workers at the limit** (one more run of shipped workers, "
                f"{len(profiled.times)} requests at {_f(profiled.mean_rps, 1)} rps, under py-spy at "
                f"{pyspy.DEFAULT_RATE_HZ} Hz with `--gil`; not counted against the targets; "
                f"{_f(total * per_scan, 1)} ms of GIL time per scan over the four processes):\n",
                table(
                    ["bucket", "share", "ms per scan"],
                    [
                        [_bucket_name(name), f"{100 * n / total:.0f} %", _f(n * per_scan, 2)]
                        for name, n in profiled.profile.most_common()
                    ],
                ),
            ]
        )
    why += "\n"
    return "\n".join(
        [
            f"### 1. The limit holds across {b.LIMIT_PROCESSES} worker processes "
            f"({b.LIMIT_RPS} rps, burst {b.LIMIT_BURST})\n",
            f"{b.LIMIT_PROCESSES} worker processes × {b.DEFAULT_THREADS} threads, limit "
            f"`GITOPS_TASKS_REGISTRY_RPS={b.LIMIT_RPS}` / `GITOPS_TASKS_REGISTRY_BURST={b.LIMIT_BURST}`. "
            f"A run starts the workers on standby (consuming a queue nobody sends to), queues "
            f"{b.LIMIT_CYCLES} full cycles ({b.LIMIT_CYCLES} × {b.DEFAULT_REPOS} scans, one request each: "
            f"{b.LIMIT_CYCLES * b.DEFAULT_REPOS / b.LIMIT_RPS:.0f} s of traffic at the limit) with one "
            "fresh request token per object, then makes every worker consume the `registry` queue at "
            "once (Celery's `add_consumer`), and ends when the queue is empty, nothing is "
            "unacknowledged and every status carries its token. That keeps two things of the "
            "benchmark's own out of the traffic, both seen in earlier versions on this shared machine: "
            "a producer queueing cycle after cycle (publishing 500 tasks took 0.3 to 13 s while 16 "
            "threads polled the limiter, and the workers idled for want of tasks), and workers starting "
            "one after the other (a few CPU-seconds each, which held back the ones already consuming: "
            "30 to 47 rps for the first 14 s). The demand (16 concurrent scans of a few ms) is far "
            f"above the limit. {len(plain)} runs, each with fresh workers and a fresh bucket, plus "
            "grant-log and profiled runs (below). 'Most requests in any window' is the largest number "
            "of request arrivals at the proxy inside any interval of w seconds, both ends included "
            "(`tests.registryservers.max_in_window`).\n",
            table(headers, rows),
            table(run_headers, run_rows),
            f"Redis `EVALSHA` calls by the limiter per request sent: "
            f"{_f(limiter_calls / max(requests, 1), 1)} (a thread reserves its slot in one call and "
            "sleeps until it; one that waited then reads the host's last throttle time with one `HGET` "
            "to check that no 429 voided its slot). "
            + (
                f"{rate_limited} of {scans} scans could not get a token within the 2 s a task may wait "
                "(`transport.DEFAULT_MAX_WAIT_S`) and ended `waiting/RateLimited`, to be run again by "
                "the schedule (no beat ran here, so they were not).\n"
                if rate_limited
                else "\n"
            ),
            grants_note + "\n",
            why,
            profile_md,
            "**Targets:** never above the envelope: "
            + _met(verdict_limit)
            + (f" (worst: {worst_over:+.0f} request over it, at the proxy)" if worst_over > 0 else "")
            + f"; mean rate ≥ {b.TARGET_MEAN_FRACTION:.0%} of {b.LIMIT_RPS} rps: {_met(verdict_mean)} "
            f"(median {_f(mid)} rps, which counts the initial burst of {b.LIMIT_BURST}); at least "
            f"{b.LIMIT_MIN_TRAFFIC_S:.0f} s of traffic: " + _met(not short) + ".\n",
        ]
    )


# ------------------------------------------------------------------------------ 2


def _own_ms(c: b.Counters, scans: int) -> float:
    """Our own processes' CPU per scan (workers, redis-server, proxy, registry, benchmark)."""
    own = c.workers_cpu_s + c.redis_cpu_s + c.proxy_cpu_s + c.registry_cpu_s + c.bench_cpu_s
    return own / max(scans, 1) * 1000


def ceiling(config: b.ThroughputConfig) -> tuple[float, str]:
    """Scans/s the workers could reach at their measured CPU cost on this machine left to itself:
    the least of the latency bound (width ÷ latency), the interpreter-lock bound (one core per
    process) and the machine bound (cores ÷ our own CPU per scan); and which one binds."""
    mid = _median_cycle(config.cycles)
    n = len(mid.run_s)
    bounds = {
        "latency": config.concurrency / (b.THROUGHPUT_LATENCY_MS / 1000),
        "one core per process": config.processes * 1000 / (mid.counters.workers_cpu_s / n * 1000),
        f"{os.cpu_count()} cores": (os.cpu_count() or 1) * 1000 / _own_ms(mid.counters, n),
    }
    name = min(bounds, key=lambda k: bounds[k])
    return bounds[name], name


def _throughput(data: dict[str, Any], invocations: int) -> str:
    configs: list[b.ThroughputConfig] = data["configs"]
    rounds = len(configs[0].cycles) if configs else 0
    rows = []
    verdicts = []
    for c in configs:
        per_s = [len(x.run_s) / x.wall_s for x in c.cycles]
        loop_per_s = [len(r.times) / r.wall_s for r in c.loops]
        quiet = min(c.cycles, key=lambda x: x.counters.other_cpu_s / x.wall_s)
        limit_s, binding = ceiling(c)
        rows.append(
            [
                f"**{c.processes} process{'es' if c.processes > 1 else ''} × {c.threads} threads**",
                f"**{_f(c.scans_per_s, 0)}**",
                f"{_f(min(per_s), 0)}–{_f(max(per_s), 0)}",
                f"{_f(len(quiet.run_s) / quiet.wall_s, 0)} "
                f"({_f(quiet.counters.other_cpu_s / quiet.wall_s, 2)})",
                f"{_f(c.loop_per_s, 0)} ({_f(min(loop_per_s), 0)}–{_f(max(loop_per_s), 0)})",
                f"**{_f(c.ratio)}**",
                f"{_f(limit_s, 0)} ({binding}) → {_f(limit_s / c.loop_per_s)}",
            ]
        )
        verdicts.append(
            f"- {c.processes}×{c.threads}: **{_f(c.ratio)}** of the loop of {c.concurrency} threads "
            f"(target ≥ {b.TARGET_RATIO}: {_met(c.ratio >= b.TARGET_RATIO)})."
        )
    headers = [
        "",
        "scans/s (median cycle)",
        "range",
        "quietest cycle: scans/s (cores used by other work)",
        "loop of the same width: requests/s (range)",
        "ratio",
        "ceiling at this CPU cost: scans/s (bound) → ratio",
    ]
    cpu_rows = []
    for c in configs:
        mid = _median_cycle(c.cycles)
        k, n = mid.counters, len(mid.run_s)
        calls = sum(mid.redis_calls.values())
        cpu_rows.append(
            [
                f"gitops-tasks {c.processes}×{c.threads}",
                _f(mid.wall_s),
                _per_scan_ms(k.workers_cpu_s, n),
                _per_scan_ms(k.redis_cpu_s, n),
                _per_scan_ms(k.proxy_cpu_s + k.registry_cpu_s, n),
                _per_scan_ms(k.bench_cpu_s, n),
                _per_scan_ms(k.idle_workers_cpu_s, n),
                _per_scan_ms(k.other_cpu_s, n),
                _per_scan_ms(k.machine_busy_s, n),
                _f(calls / n, 1),
                f"{_f(median(mid.run_s) * 1000, 0)} / {_f(percentile(mid.run_s, 99) * 1000, 0)}",
            ]
        )
        loop = sorted(c.loops, key=lambda r: r.wall_s)[len(c.loops) // 2]
        k = loop.counters
        n = len(loop.times)
        cpu_rows.append(
            [
                f"loop ×{c.concurrency}",
                _f(loop.wall_s),
                "—",
                "—",
                _per_scan_ms(k.proxy_cpu_s + k.registry_cpu_s, n),
                _per_scan_ms(k.bench_cpu_s, n),
                _per_scan_ms(k.idle_workers_cpu_s, n),
                _per_scan_ms(k.other_cpu_s, n),
                _per_scan_ms(k.machine_busy_s, n),
                "—",
                "—",
            ]
        )
    cpu_headers = [
        "",
        "wall s",
        "workers ms/scan",
        "redis-server ms/scan",
        "proxy + registry ms/scan",
        "benchmark process ms/scan",
        "idle worker sets ms/scan",
        "other (rest of the machine) ms/scan",
        "whole machine ms/scan",
        "Redis commands/scan (commandstats: Lua scripts' and the benchmark's own included)",
        "task run p50 / p99 ms",
    ]
    parts = [
        f"### 2. Throughput without a limit (+{b.THROUGHPUT_LATENCY_MS:.0f} ms per request)\n",
        f"The proxy holds every request {b.THROUGHPUT_LATENCY_MS:.0f} ms before forwarding it; the "
        f"limit is {b.UNLIMITED} rps / burst {b.UNLIMITED}, so every request still takes a token "
        "(one `EVALSHA`) but never waits. Lower bound: a thread pool as wide as the workers' total "
        "concurrency, one kept-alive `requests.Session` per thread, sending the same "
        f"{b.DEFAULT_REPOS} tag-list requests through the same proxy and parsing the JSON, nothing else. "
        "Every worker set (1, 2 and 4 processes, and the what-if sets below) is started at once, each"
        " idle on a queue of its own (`-Q registry-<set>`; same worker otherwise) with its own key "
        "prefix, and warmed up by one cycle (the first scan of an object costs more: see 'dependents "
        f"lookup' below). Then {rounds} rounds ({invocations} invocation(s) of the benchmark): per "
        "width the loop, then the workers, then each what-if set; medians over all rounds. Taking "
        "turns spreads the load of other work on the machine over every configuration. 'Quietest "
        "cycle' is the cycle during which the rest of the machine used the least CPU. 'Ceiling' is "
        "the scans/s the workers could reach at their measured CPU per scan on this machine left to "
        "itself: the least of width ÷ 20 ms, one core per worker process (the interpreter lock), and "
        "2 cores ÷ the CPU per scan of all our processes (workers, redis-server, proxy, registry, "
        "benchmark); it is an estimate, and optimistic (it ignores contention between our own "
        "processes).\n",
        table(headers, rows),
        "**Targets:**\n",
        *verdicts,
        "",
        "**Where the CPU goes** (median cycle; CPU from `/proc`, per scan; 'other' is everything on the "
        "machine not listed, including other engineers' work):\n",
        table(cpu_headers, cpu_rows),
    ]
    parts += _profiles(configs)
    parts += _whatifs(configs, data.get("whatif") or [])
    return "\n".join(parts)


def _profiles(configs: list[b.ThroughputConfig]) -> list[str]:
    out: list[str] = []
    for c in configs:
        if not c.profile or c.profiled is None:
            continue
        total = sum(c.profile.values())
        scans = len(c.profiled.run_s)
        gil_s = total / pyspy.DEFAULT_RATE_HZ
        rows = [
            [_bucket_name(name), f"{100 * n / total:.0f} %", _f(n / pyspy.DEFAULT_RATE_HZ / scans * 1000, 2)]
            for name, n in c.profile.most_common()
        ]
        out += [
            f"**Profile of the {c.processes}×{c.threads} workers** (one extra cycle of "
            f"{_f(c.profiled.wall_s)} s under py-spy at {pyspy.DEFAULT_RATE_HZ} Hz, `--gil`: only the "
            f"thread holding the interpreter lock is sampled, i.e. each process's Python CPU; "
            f"{_f(gil_s, 1)} s of GIL time over {c.processes} process(es), "
            f"{_f(gil_s / scans * 1000, 1)} ms per scan):\n",
            table(["bucket", "share", "ms per scan"], rows),
        ]
    return out


def _whatifs(configs: list[b.ThroughputConfig], variants: list[b.WhatIf]) -> list[str]:
    if not variants:
        return []
    rows = []
    for processes in sorted({v.processes for v in variants}):
        shipped = next((c for c in configs if c.processes == processes), None)
        if shipped is None:
            continue
        base = shipped.scans_per_s
        loop = shipped.loop_per_s
        mid = _median_cycle(shipped.cycles)
        rows.append(
            [
                f"{processes}×{b.DEFAULT_THREADS} as shipped",
                _f(base, 0),
                _per_scan_ms(mid.counters.workers_cpu_s, len(mid.run_s)),
                "—",
                _f(base / loop),
            ]
        )
        for v in (v for v in variants if v.processes == processes):
            mid = _median_cycle(v.cycles)
            name = "all four together" if "," in v.change else WHATIF_LABELS[v.change]
            rows.append(
                [
                    f"{processes}×{b.DEFAULT_THREADS} {name}",
                    _f(v.scans_per_s, 0),
                    _per_scan_ms(mid.counters.workers_cpu_s, len(mid.run_s)),
                    f"{100 * (v.scans_per_s - base) / base:+.0f} %",
                    _f(v.scans_per_s / loop),
                ]
            )
    return [
        "**What-if workers** (`benchmarks/bench_registry_whatif.py` patches the worker at start-up; "
        "gitops_tasks/ is unchanged; same cycles, same loop as above):\n",
        table(["worker", "scans/s", "worker CPU ms/scan", "vs shipped", "ratio to the loop"], rows),
    ]


def _lookups(lookups: list[b.Lookup]) -> str:
    def ms(pair: tuple[float, float]) -> str:
        return f"{_f(pair[0] * 1000, 2)} / {_f(pair[1] * 1000, 2)}"

    rows = [
        [
            f"{x.objects:,} ImageRepositories, {x.objects:,} ImagePolicies",
            ms(x.policy_lookup),
            ms(x.dependents_lookup),
            ms(x.dependents_scan),
        ]
        for x in lookups
    ]
    return "\n".join(
        [
            "#### What a scan spends looking through the catalog\n",
            "After every successful scan the worker reads the repository's ImagePolicies with "
            "`Catalog.image_policies_of` (tasks/registry.py), and after a scan whose tags changed (every "
            "object's first scan, and any new tag) the runner reads its dependents with "
            "`Catalog.dependents_of` (tasks/runner.py). Both go through the catalog's dependents index "
            "(a set per object, kept by `Catalog.apply` and `delete`): one script call that returns "
            "only the objects named there. The last column is the dependents lookup without the index "
            "(every ImagePolicy, ImageUpdateAutomation and Kustomization read and parsed), what a "
            "catalog written by an earlier version costs until its next apply builds the index. "
            f"Measured alone (best of {b.LOOKUP_TRIES}; wall / CPU of the calling process, which leaves "
            "out redis-server's share):\n",
            table(
                [
                    "catalog",
                    "ImagePolicy lookup, every scan: ms wall / CPU",
                    "dependents lookup, changed scans: ms wall / CPU",
                    "dependents by reading the kinds (no index): ms wall / CPU",
                ],
                rows,
            ),
        ]
    )


# ------------------------------------------------------------------------------ 3


def _memory(runs: list[b.MemoryRun]) -> str:
    rows = []
    for r in runs:
        rows.append(
            [
                f"seed {r.seed}",
                f"{r.images:,}",
                f"{r.tags:,}",
                str(r.popular),
                _f(r.raw_bytes / MIB, 1),
                _f(r.payload_bytes / MIB, 1),
                f"**{_f(r.usage_bytes / MIB, 1)}**",
                f"**{_f(r.used_memory_delta / MIB, 1)}**",
                _f(r.usage_bytes / r.tags, 2),
                _f(r.store_s, 1),
            ]
        )
    usage = median([r.usage_bytes / MIB for r in runs])
    used = median([r.used_memory_delta / MIB for r in runs])
    worst = max(max(r.usage_bytes, r.used_memory_delta) / MIB for r in runs)
    headers = [
        "",
        "images",
        "tags",
        "images with ≥ 4,000 tags",
        "tags as text (newline-joined) MiB",
        "stored values MiB",
        "MEMORY USAGE sum MiB",
        "used_memory delta MiB",
        "bytes/tag (MEMORY USAGE)",
        "store s",
    ]
    return "\n".join(
        [
            f"### 3. Memory: {b.MEMORY_IMAGES:,} images, {b.MEMORY_TAGS:,} tags\n",
            "Tag lists from `tests.registryservers.realistic_tags` (semver with variants such as "
            "`-alpine` or `-debian-12-r4`, release candidates, CI builds `main-<sha7>-<unix time>`, "
            "40-hex and `sha-` tags, date builds), counts from `tag_counts` (3 % popular images with "
            "4,500, 6,000 or 8,000 tags, the rest exponentially distributed), stored one "
            "`RedisTagStore.put` each into a private, empty redis-server (`ImageRepository/team-N/"
            "image-NNNNN` keys). 'MEMORY USAGE sum' adds `MEMORY USAGE key SAMPLES 0` over the keys; "
            "'used_memory delta' is `INFO memory` after minus before. One run per seed (the figures "
            "are deterministic for a seed).\n",
            table(headers, rows),
            f"**Target:** ≤ {b.TARGET_MEMORY_MIB:.0f} MiB (the brief quotes {b.FLUX_MEMORY_MIB} MiB for "
            f"Flux's image-reflector at this size): {_met(worst <= b.TARGET_MEMORY_MIB)}, median MEMORY "
            f"USAGE {_f(usage, 1)} MiB, median used_memory delta {_f(used, 1)} MiB.\n",
            _codec(runs),
        ]
    )


def _codec(runs: list[b.MemoryRun]) -> str:
    """The tag-list codec's CPU, from the memory runs (empty for runs made before it was timed)."""
    runs = [r for r in runs if r.encode9_cpu_s > 0]
    if not runs:
        return ""
    rows = [
        [
            f"seed {r.seed}",
            f"{_f(r.encode9_cpu_s, 1)} s ({_f(r.encode9_cpu_s / r.images * 1000, 2)} ms/list)",
            f"{_f(r.encode6_cpu_s, 1)} s ({_f(r.encode6_cpu_s / r.images * 1000, 2)} ms/list)",
            f"{100 * (r.payload6_bytes - r.payload_bytes) / r.payload_bytes:+.2f} %",
            f"{r.largest_tags:,}",
            _f(r.largest_sort_ms, 1),
            _f(r.largest_scan_path_ms, 1),
        ]
        for r in runs
    ]
    return "\n".join(
        [
            "The codec's CPU on the same lists (this process, `time.process_time`), and the Python work a "
            "scan does on the largest list before its `SET` (exclusionList filter, the sort in `scan`, "
            "then `RedisTagStore.put`: sort again, `tags_revision` sorts again and hashes, `encode_tags` "
            "sorts again and compresses), with the list shuffled as a registry may send it:\n",
            table(
                [
                    "",
                    "zlib level 9 (stored), all lists",
                    "zlib level 6, all lists",
                    "size at level 6 vs 9",
                    "largest list, tags",
                    "one `sorted_tags` ms",
                    "scan + put path ms",
                ],
                rows,
            ),
        ]
    )


# ------------------------------------------------------------------------------ what to change


def _bucket_ms(config: b.ThroughputConfig | None, prefix: str) -> tuple[float, float]:
    """(share %, ms per scan) of the profile buckets whose name starts with ``prefix``."""
    if config is None or not config.profile or config.profiled is None:
        return float("nan"), float("nan")
    total = sum(config.profile.values())
    n = sum(v for k, v in config.profile.items() if k.startswith(prefix))
    return 100 * n / total, n / pyspy.DEFAULT_RATE_HZ / len(config.profiled.run_s) * 1000


def _changes(figures: dict[str, Any]) -> str:
    """What changed in gitops_tasks/ since the first measurement, and what the figures say is left."""
    data = figures.get("throughput") or {"configs": [], "whatif": []}
    configs: list[b.ThroughputConfig] = data["configs"]
    four = next((c for c in configs if c.processes == max(b.THROUGHPUT_PROCESSES)), None)
    items = [
        "The first measurement (1×4: 76 scans/s, 0.48 of the loop, 8.4 ms of worker CPU per scan; the "
        "limit +1 request over the envelope at the proxy, 13 limiter calls per request) led to these "
        "changes, all shipped:\n",
        "1. **ImagePolicies and dependents through an index** (`Catalog.image_policies_of` and "
        "`Catalog.dependents_of`: a set per object kept by `Catalog.apply`/`delete`), instead of "
        "reading every ImagePolicy on every scan and every dependent kind after every changed scan.",
        "2. **A reserving limiter** (GCRA): one `EVALSHA` per request, waiters served in order, a 429 "
        "voids the reservations made before it; and a **2 % margin plus one burst token kept back** "
        "(`GITOPS_TASKS_REGISTRY_MARGIN`), which absorbs the varying delay between a slot and the "
        "request reaching the registry.",
        "3. **Task events in batches** (`gitops_tasks/consumer.py`: one flush per 0.2 s instead of a "
        "wake-up and a publish per event; they were about a quarter of the worker's CPU per scan) and "
        "**one Redis client per broker channel** (`gitops_tasks/broker.py`).",
        "4. **Less per scan**: docker config, credential-helper answers and cluster pull secrets "
        "cached per process; anonymous hosts skip the token cache; tag lists sorted once and an "
        "unchanged set not rewritten; `Reconciling` written only for runs over 1 s; unchanged runs "
        "logged at DEBUG.\n",
        "Left:",
    ]
    if four is not None:
        mid = _median_cycle(four.cycles)
        loop = sorted(four.loops, key=lambda r: r.wall_s)[len(four.loops) // 2]
        loop_ms = (
            loop.counters.proxy_cpu_s + loop.counters.registry_cpu_s + loop.counters.bench_cpu_s
        ) / len(loop.times)
        need = (os.cpu_count() or 1) * 1000 / (b.TARGET_RATIO * four.loop_per_s)
        items.append(
            f"- **More processes than cores**: the loop of {four.concurrency} threads is bound by latency "
            f"and needs {loop_ms * 1000:.1f} ms of CPU per request (proxy, registry and its own threads); "
            f"at {b.TARGET_RATIO} × {four.loop_per_s:.0f}/s everything (workers, redis-server, proxy, "
            f"registry, the producer) would have {need:.1f} ms of both cores per scan, and the workers "
            f"alone use {_own_ms(mid.counters, len(mid.run_s)):.1f} ms. A Celery task per scan (receive, "
            "acknowledge, three task events, the reconcile's two Redis round trips) costs more than that "
            "on its own, so on 2 cores the wider configurations cannot reach the ratio; on a machine "
            "with a core per worker process they scale as the 1-process row does."
        )
    items.append(
        "- `registry/transport.py` sends through `requests` (request preparation, cookies, setting "
        "merges: about 0.4 ms per scan in the profile); urllib3 directly would save most of it."
    )
    return "\n".join(["### What changed, and what is left\n", "\n".join(items) + "\n"])
