"""The ``poll`` section of BENCHMARKS.md, from the figures :func:`benchmarks.bench_poll.measure` returns."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from benchmarks import machine, pyspy
from benchmarks.bench_poll import (
    DEFAULT_CONFIGS,
    TARGET_RATIO,
    TARGET_SPEEDUP,
    Baseline,
    Cycle,
    Variant,
)
from benchmarks.report import Section, median, percentile, table


def _f(x: float, digits: int = 2) -> str:
    return f"{x:.{digits}f}"


def _ms(seconds: float, repos: int) -> str:
    return _f(seconds / repos * 1000, 1)


def _median_cycle(cycles: list[Cycle]) -> Cycle:
    return sorted(cycles, key=lambda c: c.wall_s)[len(cycles) // 2]


def lower_bound_runs(data: dict[str, Any], v: Variant, conc: int) -> Baseline:
    """The lower bound a configuration is compared with: the runs made alternately with its cycles
    when there are any, else the standalone baseline at the same concurrency."""
    paired: Baseline | None = data.get("paired")
    return paired if paired is not None else v.baselines[f"ls_v0_{conc}"]


def lower_bound(data: dict[str, Any], v: Variant, conc: int) -> tuple[float, str]:
    """The median wall time of :func:`lower_bound_runs`, and its range."""
    base = lower_bound_runs(data, v, conc)
    return base.wall, f"{_f(min(base.walls))}–{_f(max(base.walls))}"


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
                "—",
                str(base.median_run().listen_overflows),
            ]
        )
    for (processes, threads), data in v.configs.items():
        cycles: list[Cycle] = data["cycles"]
        wall = median([c.wall_s for c in cycles])
        conc = processes * threads
        lower, lower_range = lower_bound(data, v, conc)
        speedup, ratio = seq / wall, wall / lower
        rows.append(
            [
                f"**gitops-tasks {processes} process{'es' if processes > 1 else ''} × {threads} threads**",
                f"**{_f(wall)}**",
                spread([c.wall_s for c in cycles]),
                _f(repos / wall, 0),
                f"**{_f(speedup)}**",
                _f(seq0 / wall),
                f"{_f(lower)} ({lower_range})",
                f"**{_f(ratio)}**",
                str(_median_cycle(cycles).counters.listen_overflows),
            ]
        )
        verdicts.append(
            f"- {processes}×{threads}: **{_f(speedup, 1)}×** the sequential fetch (target ≥ "
            f"{TARGET_SPEEDUP:.0f}×: "
            f"**{'met' if speedup >= TARGET_SPEEDUP else 'missed'}**); **{_f(ratio)}×** the ls-remote "
            "lower bound "
            f"at concurrency {conc} (target ≤ {TARGET_RATIO}×: "
            f"**{'met' if ratio <= TARGET_RATIO else 'missed'}**). "
            f"Against a sequential fetch that also uses protocol v0: {_f(seq0 / wall, 1)}×."
        )
    headers = [
        "",
        "median s",
        "range s",
        "polls/s",
        "speed-up vs sequential fetch (v2)",
        "speed-up vs sequential fetch (v0)",
        "lower bound run alternately with the cycles: median s (range)",
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
                _ms(c.bench_cpu_s, repos),
                _ms(c.other_cpu_s, repos),
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
                    _ms(c.bench_cpu_s, repos),
                    _ms(c.other_cpu_s, repos),
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
        "benchmark process ms/poll",
        "everything else ms/poll",
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
        "processes, redis-server, this benchmark process, everything else (the kernel's own threads "
        "and any other work on the machine: a large value means the run was disturbed), and the "
        "whole machine from `/proc/stat`; machine busy = whole-machine CPU ÷ (wall × cores)):\n",
        table(cpu_headers, cpu_rows),
        "**Redis commands per poll** (`INFO commandstats` over the median cycle, excluding the "
        "benchmark's own HMGET status checks and INFO; includes broker traffic and task events):\n",
        table(
            ["", "commands per poll", "by command, per poll", f"enqueue time of the {repos} tasks, s"],
            redis_rows,
        ),
    ]
    return "\n".join(md), verdicts


def _code(figures: dict[str, Any]) -> str:
    return str(figures.get("code") or machine.code_version())


def _when(figures: dict[str, Any]) -> str:
    return str(figures.get("measured_at", datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC"))


def render(figures: dict[str, Any], *, command: str) -> Section:
    """The ``poll`` section of BENCHMARKS.md."""
    repos = figures["repos"]
    parts = [
        f"## Poll cycle: {repos} unchanged repositories over `git daemon`\n",
        f"Run {_when(figures)} with `{command}`, code at commit {_code(figures)}.\n",
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
        f"{figures['repeats']} cycles are measured and the median is reported; before each cycle the "
        "lower bound at the same concurrency runs once (the workers idle meanwhile), and the ratio is "
        "taken against the median of those alternate runs, so both see the same state of the shared "
        "machine. Baselines over the same "
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
    from benchmarks import notes

    parts.append(notes.poll(figures))
    return Section("poll", "\n".join(p for p in parts if p))


WHATIF_LABELS = {
    "log_warning": "worker log level WARNING instead of INFO (no per-task log lines)",
    "no_events": "no Celery task events (no `-E`, `worker_send_task_events` off)",
    "no_renew_thread": "no renewal thread per run lock",
}


def _whatif_markdown(primary: Variant, whatifs: list[dict[str, Any]], repos: int) -> str:
    if not whatifs or DEFAULT_CONFIGS[0] not in primary.configs:
        return ""
    processes, threads = DEFAULT_CONFIGS[0]
    shipped = primary.configs[DEFAULT_CONFIGS[0]]
    seq = primary.baselines["seq_default"].wall
    shipped_wall = median([c.wall_s for c in shipped["cycles"]])
    rows = []
    for data in [shipped, *whatifs]:
        cycles: list[Cycle] = data["cycles"]
        wall = median([c.wall_s for c in cycles])
        lower, _range = lower_bound(data, primary, processes * threads)
        mid = _median_cycle(cycles).counters
        name = (
            "as shipped"
            if data["whatif"] is None
            else " + ".join(WHATIF_LABELS[c] for c in data["whatif"].split(","))
        )
        if data["whatif"] is not None and "," in data["whatif"]:
            name = "all together"
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
            f"One extra cycle ({_f(cycle.wall_s)} s under the profiler) sampled at "
            f"{pyspy.DEFAULT_RATE_HZ} Hz with "
            "`py-spy record --gil`: each sample is the Python stack of the thread holding the GIL, so this "
            f"splits the worker's Python time ({_f(gil_s)} s, i.e. {_f(gil_s / repos * 1000, 1)} ms per "
            "poll, "
            f"the GIL held {_f(100 * gil_s / cycle.wall_s, 0)} % of the cycle). "
            "Samples are put in the first bucket whose frame appears in the stack.\n",
            table(["bucket", "share of GIL-held samples", "ms per poll"], rows),
        ]
    )
