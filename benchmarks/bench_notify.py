"""Notifications under load: a storm to a rate-limited provider, 10,000 events to an unlimited one,
the Redis memory of a backlog, and a 60 s provider outage.

Events are emitted through ``EventLog.emit`` as a worker emits them (each queues a dispatch); one
gitops-tasks worker (threads) routes and sends them to the tests' own webhook server
(:class:`tests.notifyserver.NotifyServer`), which records when each request arrived.

``python -m benchmarks.bench_notify [--objects N] [--window S] [--events N] [--outage S]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.report import Section, percentile, table
from benchmarks.stack import exit_cleanly_on_signals, gt_env, settings_of, start_worker
from gitops_tasks.objects import load_text
from gitops_tasks.objects.model import ObjectRef
from gitops_tasks.tasks.context import Context
from tests.notifyserver import NotifyServer
from tests.procs import RedisServer, wait_for

#: Objects failing at once in the storm, and failure events each emits (retries with new messages).
DEFAULT_OBJECTS = 1000
DEFAULT_FAILURES_EACH = 3
#: The limited provider's rate (messages per second) and how long the storm is watched.
LIMIT_RPS = 1.0
DEFAULT_WINDOW_S = 60.0
#: Events sent to the unlimited provider, over how many objects, at what steady rate (events/s).
DEFAULT_EVENTS = 10_000
EVENT_OBJECTS = 1000
DEFAULT_EVENT_RATE = 100.0
#: The provider outage, in seconds.
DEFAULT_OUTAGE_S = 60.0
#: Worker threads.
THREADS = 4
TARGET_P95_S = 1.0


def _objects(ns: str, address: str, *, transitions: bool) -> str:
    note = "\n  annotations: {gitops-tasks.io/notify: transitions}" if transitions else ""
    return f"""apiVersion: notification.toolkit.fluxcd.io/v1beta3
kind: Provider
metadata: {{name: hook, namespace: {ns}}}
spec: {{type: generic, address: "{address}"}}
---
apiVersion: notification.toolkit.fluxcd.io/v1beta3
kind: Alert
metadata:
  name: all
  namespace: {ns}{note}
spec:
  providerRef: {{name: hook}}
  eventSources: [{{kind: Kustomization, name: "*"}}]
"""


class Run:
    """One Redis database, one worker and one webhook server."""

    def __init__(
        self, redis: RedisServer, base: Path, db: int, name: str, *, limit_rps: float | None
    ) -> None:
        self.hooks = NotifyServer()
        extra: dict[str, str] = {"GITOPS_TASKS_LOG_LEVEL": "WARNING"}
        if limit_rps is not None:
            config = base / f"{name}.yaml"
            config.write_text(
                f"notify_hosts: {{'127.0.0.1:{self.hooks.port}': {{rps: {limit_rps}, burst: 1}}}}\n"
            )
            extra["GITOPS_TASKS_CONFIG"] = str(config)
        self.env = gt_env(redis.url(db), base / name, **extra)
        (base / name).mkdir(parents=True, exist_ok=True)
        import redis as redis_lib

        redis_lib.Redis.from_url(redis.url(db)).flushdb()
        self.ctx = Context(settings_of(self.env), notify_on_emit=True)
        self.worker = start_worker(name, self.env, base / name, "-c", str(THREADS))

    def apply(self, text: str) -> None:
        from beat_schedule import entry_for

        self.ctx.catalog.apply(load_text(text, filename="bench.yaml"), entry_for=entry_for)

    def emit(self, name: str, message: str, severity: str = "error") -> float:
        at = time.time()
        self.ctx.events.emit(
            ObjectRef("Kustomization", "bench", name), severity=severity, reason="Bench", message=message
        )
        return at

    def pending(self) -> int:
        return int(self.ctx.client.hget(self.ctx.keys.notify_stats("Alert/bench/all"), "pending") or 0)

    def routed(self) -> bool:
        return int(self.ctx.client.xlen(self.ctx.keys.notify_inbox)) == 0

    def close(self) -> None:
        self.worker.stop()
        self.hooks.stop()
        self.ctx.client.close()


def _storm(
    redis: RedisServer, base: Path, db: int, *, objects: int, window_s: float, transitions: bool
) -> dict[str, Any]:
    run = Run(redis, base, db, f"storm-{'on' if transitions else 'off'}", limit_rps=LIMIT_RPS)
    try:
        run.apply(_objects("bench", run.hooks.url("/storm"), transitions=transitions))
        start = time.time()
        for attempt in range(DEFAULT_FAILURES_EACH):
            for i in range(objects):
                run.emit(f"app-{i}", f"health check failed (attempt {attempt + 1})")
        emitted_s = time.time() - start
        wait_for(run.routed, timeout_s=120, what="the storm to be routed")
        time.sleep(max(0.0, window_s - (time.time() - start)))
        got = run.hooks.delivered("/storm")
        pending = run.pending()
        arrivals = [r.at for r in got]
        span = (max(arrivals) - min(arrivals)) if len(arrivals) > 1 else 0.0
        expected = objects * (1 if transitions else DEFAULT_FAILURES_EACH)
        return {
            "transitions": transitions,
            "events": objects * DEFAULT_FAILURES_EACH,
            "emitted_s": emitted_s,
            "expected": expected,
            "delivered": len(got),
            "pending": pending,
            "rate": (len(got) - 1) / span if span else 0.0,
            "refused": sum(1 for r in run.hooks.received("/storm") if r.status != 200),
            "window_s": window_s,
        }
    finally:
        run.close()


def _unlimited(redis: RedisServer, base: Path, db: int, *, events: int, rate: float) -> dict[str, Any]:
    run = Run(redis, base, db, "unlimited", limit_rps=None)
    try:
        run.apply(_objects("bench", run.hooks.url("/fast"), transitions=False))
        sent_at: dict[str, float] = {}
        start = time.time()
        for i in range(events):
            message = f"event {i}"
            time.sleep(max(0.0, start + i / rate - time.time()))
            sent_at[message] = run.emit(f"app-{i % EVENT_OBJECTS}", message)
        emitted_s = time.time() - start
        wait_for(lambda: len(run.hooks.delivered("/fast")) >= events, timeout_s=600, what="all deliveries")
        got = run.hooks.delivered("/fast")
        latency = [r.at - sent_at[r.json()["message"]] for r in got]
        done = max(r.at for r in got)
        return {
            "events": events,
            "emit_rate": rate,
            "emitted_s": emitted_s,
            "delivered": len(got),
            "unique": len({r.json()["message"] for r in got}),
            "p50": percentile(latency, 50),
            "p95": percentile(latency, 95),
            "rate": len(got) / (done - start),
        }
    finally:
        run.close()


def _outage(redis: RedisServer, base: Path, db: int, *, events: int, outage_s: float) -> dict[str, Any]:
    run = Run(redis, base, db, "outage", limit_rps=None)
    try:
        run.hooks.set("/down", status=503)
        run.apply(_objects("bench", run.hooks.url("/down"), transitions=False))
        before = int(run.ctx.client.info("memory")["used_memory"])
        start = time.time()
        for i in range(events):
            run.emit(f"app-{i % EVENT_OBJECTS}", f"event {i}")
        wait_for(run.routed, timeout_s=300, what="the backlog to be routed")
        backlog = run.pending()
        memory = int(run.ctx.client.info("memory")["used_memory"]) - before
        time.sleep(max(0.0, outage_s - (time.time() - start)))
        run.hooks.set("/down", status=200)
        back = time.time()
        wait_for(lambda: run.pending() == 0, timeout_s=900, interval_s=0.5, what="the backlog to drain")
        got = run.hooks.delivered("/down")
        return {
            "events": events,
            "backlog": backlog,
            "memory_bytes": memory,
            "outage_s": back - start,
            "failed_attempts": sum(1 for r in run.hooks.received("/down") if r.status != 200),
            "delivered": len({r.json()["message"] for r in got}),
            "duplicates": len(got) - len({r.json()["message"] for r in got}),
            "drain_s": max(r.at for r in got) - back,
            "drain_rate": len(got)
            / max(1e-9, max(r.at for r in got) - min(r.at for r in got if r.at >= back)),
        }
    finally:
        run.close()


def measure(
    *,
    objects: int = DEFAULT_OBJECTS,
    window_s: float = DEFAULT_WINDOW_S,
    events: int = DEFAULT_EVENTS,
    outage_s: float = DEFAULT_OUTAGE_S,
    event_rate: float = DEFAULT_EVENT_RATE,
) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix="gt-bench-notify-"))
    redis = RedisServer(base / "redis")
    try:
        return {
            "storm": [
                _storm(redis, base, 1, objects=objects, window_s=window_s, transitions=False),
                _storm(redis, base, 2, objects=objects, window_s=window_s, transitions=True),
            ],
            "unlimited": _unlimited(redis, base, 3, events=events, rate=event_rate),
            "outage": _outage(redis, base, 4, events=events, outage_s=outage_s),
        }
    finally:
        redis.stop()


def render(figures: dict[str, Any], *, command: str) -> Section:
    when = figures.get("measured_at")
    stamp = when.strftime("%Y-%m-%d %H:%M UTC") if when else "?"
    storm_rows = [
        [
            "on" if s["transitions"] else "off",
            f"{s['events']:,}",
            f"{s['expected']:,}",
            f"{s['delivered']:,}",
            f"{s['pending']:,}",
            f"{s['expected'] - s['delivered'] - s['pending']:,}",
            f"{s['rate']:.2f} (limit {LIMIT_RPS:g})",
            f"{s['refused']}",
        ]
        for s in figures["storm"]
    ]
    u, o = figures["unlimited"], figures["outage"]
    unlimited_row = [
        f"{u['delivered']:,}",
        f"{u['unique']:,}",
        f"{u['p50']:.3f}",
        f"{u['p95']:.3f}",
        f"{u['rate']:.0f}",
    ]
    memory = (
        f"{o['memory_bytes'] / 1024 / 1024:.1f} MiB ({o['memory_bytes'] / max(o['backlog'], 1):.0f} B/record)"
    )
    outage_row = [
        f"{o['backlog']:,}",
        memory,
        f"{o['failed_attempts']:,}",
        f"{o['delivered']:,} of {o['events']:,}",
        f"{o['duplicates']}",
        f"{o['drain_s']:.1f}",
        f"{o['drain_rate']:.0f}",
    ]
    window = figures["storm"][0]["window_s"]
    verdict = "meets" if u["p95"] <= TARGET_P95_S else "misses"
    lines = [
        "## Notifications",
        "",
        f"Measured {stamp} with `{command}` at {figures.get('code', '?')}. One worker ({THREADS} threads), "
        "one Redis, the tests' own webhook server, all on this machine; events emitted through "
        "`EventLog.emit` as a worker emits them.",
        "",
        f"**Storm**: {figures['storm'][0]['events'] // DEFAULT_FAILURES_EACH:,} objects fail at once, each "
        f"emitting {DEFAULT_FAILURES_EACH} failure events with new messages (as retries do), under one Alert "
        f"to one `generic` provider whose host is limited to {LIMIT_RPS:g} message/s "
        f"(`notify_hosts`), watched for {window:.0f} s. *Lost* = expected − delivered − still pending "
        "(target 0): what is not sent yet waits in the outbox at the provider's rate.",
        "",
        table(
            ["transitions", "events", "messages due", "delivered", "pending", "lost", "sends/s", "non-2xx"],
            storm_rows,
        ),
        f"**Unlimited**: {u['events']:,} events over {EVENT_OBJECTS:,} objects emitted at a steady "
        f"{u['emit_rate']:g}/s ({u['emitted_s']:.1f} s) to a `generic` provider with no limit.",
        "",
        table(
            ["delivered", "distinct", "event → request p50 (s)", "p95 (s)", "sends/s"],
            [unlimited_row],
        ),
        f"p95 {verdict} the {TARGET_P95_S:g} s target.",
        "",
        f"**Outage**: the provider answers 503 while {o['events']:,} events are emitted, for "
        f"{o['outage_s']:.0f} s in all, then recovers. The drain time and its sends/s run from the "
        "recovery to the last delivery: the lanes' backoff (at most `GITOPS_TASKS_NOTIFY_BACKOFF_MAX_S`, "
        "60 s) dominates them, not the send rate.",
        "",
        table(
            ["backlog records", "Redis memory of it", "failed attempts", "delivered after", "duplicates",
             "drained in (s)", "sends/s"],
            [outage_row],
        ),
    ]  # fmt: skip
    return Section("notify", "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=DEFAULT_OBJECTS, help="objects failing in the storm")
    parser.add_argument("--window", type=float, default=DEFAULT_WINDOW_S, help="seconds the storm is watched")
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS, help="events to the unlimited provider")
    parser.add_argument(
        "--rate", type=float, default=DEFAULT_EVENT_RATE, help="events/s to the unlimited one"
    )
    parser.add_argument("--outage", type=float, default=DEFAULT_OUTAGE_S, help="seconds the provider is down")
    parser.add_argument(
        "--write", action="store_true", help="also update the notify section of BENCHMARKS.md"
    )
    args = parser.parse_args(argv)
    exit_cleanly_on_signals()
    from datetime import UTC, datetime

    from benchmarks import machine

    figures = measure(
        objects=args.objects,
        window_s=args.window,
        events=args.events,
        outage_s=args.outage,
        event_rate=args.rate,
    )
    figures["measured_at"] = datetime.now(UTC)
    figures["code"] = machine.code_version()
    section = render(figures, command="python -m benchmarks.bench_notify " + " ".join(argv or sys.argv[1:]))
    print(section.markdown)
    if args.write:
        from benchmarks.run import write

        write([section])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
