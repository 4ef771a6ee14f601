"""The ``scheduler`` section of BENCHMARKS.md, from :func:`benchmarks.bench_scheduler.measure`'s figures."""

from __future__ import annotations

import os
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from benchmarks import machine
from benchmarks.bench_scheduler import DEFAULT_DRAIN_BATCH, DEFAULT_INTERVAL_S, TARGET_P99_S, Received
from benchmarks.report import Section, median, percentile, table
from gitops_tasks.settings import DEFAULT_JITTER


def _first_run_policy(n: int) -> str:
    """What ``Catalog.apply`` does with the first runs of a bulk apply, as far as this code can tell."""
    from gitops_tasks.store import catalog

    rate = getattr(catalog, "DEFAULT_FIRST_RUN_RATE", None)
    if rate is None:
        return "Every new object is due at the start of the apply."
    window = min(n / rate, DEFAULT_INTERVAL_S)
    return (
        f"`Catalog.apply` spreads the first runs of new objects at `DEFAULT_FIRST_RUN_RATE` = {rate:g}/s, "
        f"never beyond the interval: {n:,} objects are due over the {window:.0f} s after the apply."
    )


def cpu_between(
    cpu: list[tuple[float, float, float]], start: float, end: float
) -> tuple[float, float, float]:
    """(beat CPU s, wall s, whole-machine busy CPU s) between the samples nearest ``start`` and ``end``."""
    inside = [s for s in cpu if start - 0.5 <= s[0] <= end + 0.5]
    if len(inside) < 2:
        inside = cpu
    first, last = inside[0], inside[-1]
    return last[1] - first[1], max(last[0] - first[0], 1e-9), last[2] - first[2]


def _row(label: str, recs: list[Received], cpu: list[tuple[float, float, float]]) -> list[str]:
    """One table row: messages, lateness p50/p99/max, send rate, beat CPU, machine busy."""
    if not recs:
        return [label, "0", "—", "—", "—", "—", "—", "—"]
    late = [r.sent - r.due for r in recs]
    first, last = min(r.sent for r in recs), max(r.sent for r in recs)
    beat_cpu, wall, machine = cpu_between(cpu, first, last)
    cores = os.cpu_count() or 1
    return [
        label,
        f"{len(recs):,}",
        f"{percentile(late, 50):.3f}",
        f"{percentile(late, 99):.3f}",
        f"{max(late):.3f}",
        f"{len(recs) / max(last - first, 1e-9):.0f}",
        f"{100 * beat_cpu / wall:.0f} %",
        f"{100 * machine / (wall * cores):.0f} %",
    ]


def _rounds(records: list[Received]) -> dict[int, list[Received]]:
    """Round number (1 = an object's first send) → the sends of that round."""
    by_object: dict[str, list[Received]] = defaultdict(list)
    for r in records:
        by_object[r.key].append(r)
    rounds: dict[int, list[Received]] = defaultdict(list)
    for sends in by_object.values():
        for n, r in enumerate(sorted(sends, key=lambda r: r.sent), start=1):
            rounds[n].append(r)
    return dict(sorted(rounds.items()))


HEADERS = [
    "phase",
    "messages",
    "lateness p50 s",
    "p99 s",
    "max s",
    "tasks sent / s",
    "beat CPU (% of one core)",
    "whole machine busy",
]


def analyse(run: dict[str, Any]) -> dict[str, Any]:
    records: list[Received] = run["records"]
    n = run["objects"]
    rounds = _rounds(records)
    burst = [] if run["spread"] else rounds.get(1, [])
    steady = [r for k, recs in rounds.items() if run["spread"] or k > 1 for r in recs]
    per_object: dict[str, list[float]] = defaultdict(list)
    for r in records:
        per_object[r.key].append(r.sent)
    gaps = [
        b - a for sends in per_object.values() for a, b in zip(sorted(sends), sorted(sends)[1:], strict=False)
    ]
    per_second: dict[int, int] = defaultdict(int)
    for r in records:
        per_second[int(r.sent)] += 1
    window = run["calls_window"]
    sent_in_window = sum(1 for r in records if window[0] <= r.sent <= window[1])
    per_send = sorted(
        (
            (k, v / max(sent_in_window, 1))
            for k, v in run["calls"].items()
            if k not in {"brpop", "rpop", "del", "info"}
        ),
        key=lambda kv: -kv[1],
    )
    sends_hist: dict[int, int] = defaultdict(int)
    for sends in per_object.values():
        sends_hist[len(sends)] += 1
    return {
        "burst": burst,
        "steady": steady,
        "rounds": rounds,
        "gaps": gaps,
        "sends_hist": dict(sorted(sends_hist.items())),
        "never": n - len(per_object),
        "peak_rate": max(per_second.values(), default=0),
        "drain_lag": [r.received - r.sent for r in records],
        "per_send": per_send,
        "sent_in_window": sent_in_window,
        "steady_p99": percentile([r.sent - r.due for r in steady], 99),
    }


def _round_rows(
    a: dict[str, Any], cpu: list[tuple[float, float, float]], end: float, interval_s: float
) -> list[list[str]]:
    rows = []
    for n, recs in a["rounds"].items():
        partial = max(r.due for r in recs) + interval_s * (1 + DEFAULT_JITTER) > end and n == max(a["rounds"])
        rows.append(_row(f"round {n}{' (cut short by the end of the run)' if partial else ''}", recs, cpu))
    return rows


MODE_TITLES = {
    "all_due": "A. All objects due at the same instant (the brief's case; also after beat was down)",
    "apply": "B. Objects written by `Catalog.apply` (its own first-run spreading)",
    "spread": "C. First due times spread uniformly over one interval (as after a long uptime)",
}


def _mode_setup(run: dict[str, Any], first_due_span: float) -> str:
    n = run["objects"]
    if run["mode"] == "apply":
        return (
            f"{_first_run_policy(n)} In this run the first due times spanned {first_due_span:.1f} s "
            "after the start of the apply."
        )
    if run["mode"] == "all_due":
        return (
            "The objects were applied with their first run an hour away, then every schedule score was set "
            "to the same instant, so all of them are due at once (the apply's own spreading is bypassed)."
        )
    return (
        "The objects were applied, then each schedule score was set to a random point of the next interval."
    )


def _run_markdown(run: dict[str, Any]) -> tuple[list[str], float]:
    """The table and checks of one run, and its steady-state p99."""
    a = analyse(run)
    committed = run["committed"]
    first_round = a["rounds"].get(1, [])
    first_due_span = max((r.due for r in first_round), default=committed) - min(
        (r.due for r in first_round), default=committed
    )
    burst_end = max((r.sent for r in first_round), default=committed)
    if run["spread"]:
        rows = [_row("all sends", a["steady"], run["cpu"])]
    else:
        rows = [
            _row("first round (each object's first send)", a["burst"], run["cpu"]),
            _row("steady state (every later send)", a["steady"], run["cpu"]),
        ]
    skip_first = 0 if run["spread"] else 1
    rows += _round_rows(a, run["cpu"], run["end"], DEFAULT_INTERVAL_S)[skip_first:]
    gaps = a["gaps"]
    missed = sum(1 for g in gaps if g > 1.5 * DEFAULT_INTERVAL_S)
    p99 = a["steady_p99"]
    md = [
        f"### {MODE_TITLES[run['mode']]}\n",
        f"{_mode_setup(run, first_due_span)} Beat ran {run['duration_s']:.0f} s after that.\n",
        table(HEADERS, rows),
        f"**Target** p99 ≤ {TARGET_P99_S:.0f} s in steady state: "
        f"**{'met' if p99 <= TARGET_P99_S else 'missed'}** (p99 {p99:.3f} s).\n",
        f"- First round: the last first send came {burst_end - committed:.2f} s after the objects were in "
        f"place; the busiest second of the run saw {a['peak_rate']:,} sends.",
        f"- Sends per object: {', '.join(f'{k}: {v:,} objects' for k, v in a['sends_hist'].items())}; "
        f"objects never sent: {a['never']:,}.",
        f"- Gaps between consecutive sends of one object: median {median(gaps):.2f} s, min "
        f"{min(gaps, default=0):.2f} s, max {max(gaps, default=0):.2f} s (interval {DEFAULT_INTERVAL_S} s "
        f"±{DEFAULT_JITTER:.0%}); gaps over 1.5 × interval (a missed round): {missed}.",
        f"- Drain lag (received − sent): p50 {percentile(a['drain_lag'], 50) * 1000:.0f} ms, p99 "
        f"{percentile(a['drain_lag'], 99) * 1000:.0f} ms (the drain kept up, so guards were released "
        f"promptly); messages the drain could not parse: {len(run['errors'])}.",
        f"- Redis commands per task sent after the first round (`INFO commandstats`, {a['sent_in_window']:,} "
        "sends; the drain's BRPOP/RPOP/DEL left out; commands inside Lua scripts counted): "
        + ", ".join(f"{k} {v:.2f}" for k, v in a["per_send"][:12])
        + ".\n",
    ]
    return md, p99


def _code(figures: dict[str, Any]) -> str:
    return str(figures.get("code") or machine.code_version())


def _when(figures: dict[str, Any]) -> str:
    return str(figures.get("measured_at", datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC"))


def render(figures: dict[str, Any], *, command: str) -> Section:
    """The ``scheduler`` section of BENCHMARKS.md."""
    runs = figures["runs"]
    any_run = next(iter(runs.values()))
    n = any_run["objects"]
    md = [
        f"## Scheduler: {n:,} GitRepository objects at a {DEFAULT_INTERVAL_S} s interval\n",
        f"Run {_when(figures)} with `{command}`, code at commit {_code(figures)}.\n",
        "**What is measured.** How late the real beat process (`python -m gitops_tasks.cli beat`, "
        "`beat_schedule.scheduler.CatalogScheduler`) sends each due object, as `gt_sent − gt_due` from "
        "the headers of every message it published, for the first round (each object's first send) and "
        "the steady state (every later send, also shown round by round: round *k* is every object's "
        "*k*-th send); how many tasks it sends per second; and its CPU (utime + stime from "
        "`/proc/<pid>/stat`, sampled every second, ÷ wall time, as % of one core). Rates and CPU of a "
        "phase are taken between its first and last send.\n",
        f"**Setup.** A private redis-server (one database per run); beat started first with default "
        f"settings (tick {any_run['tick_s']} s, jitter ±{DEFAULT_JITTER:.0%}) and given the lead; then "
        f"{n:,} objects (`interval: {DEFAULT_INTERVAL_S}s`, URLs nobody polls) written in one transaction "
        "with `Catalog.apply(..., entry_for=beat_schedule.entry_for)`. No workers: a drain thread in the "
        f"benchmark process pops the `git` list (BRPOP, then RPOP up to {DEFAULT_DRAIN_BATCH}), records "
        "the headers and deletes each object's guard key as a starting worker does. 'whole machine busy' "
        "is all CPU use on the machine (beat, Redis, the drain, and anything else running) ÷ cores.\n",
    ]
    verdicts = []
    for mode, run in runs.items():
        text, p99 = _run_markdown(run)
        md += text
        verdicts.append(f"{MODE_TITLES[mode].split(' (')[0]}: p99 {p99:.3f} s")
    cost_rows = []
    for v in figures["send_costs"]:
        per = {k: x / v["count"] for k, x in v["calls"].items() if x / v["count"] >= 0.05}
        cost_rows.append(
            [
                v["label"],
                f"{v['wall_s'] / v['count'] * 1000:.2f}",
                f"{v['cpu_s'] / v['count'] * 1000:.2f}",
                f"{sum(per.values()):.1f}",
                ", ".join(f"{k} {x:.1f}" for k, x in sorted(per.items(), key=lambda kv: -kv[1])),
            ]
        )
    md += [
        "### Cost of one send\n",
        "What beat does per due object (`tasks.enqueue.send`), measured in the benchmark process before "
        f"beat starts: {figures['send_costs'][0]['count']:,} sends per row through one producer to a queue "
        "nobody reads.\n",
        table(["send", "wall ms / send", "CPU ms / send", "Redis commands / send", "by command"], cost_rows),
    ]
    from benchmarks import notes

    md.append(notes.scheduler(figures))
    return Section("scheduler", "\n".join(md))
