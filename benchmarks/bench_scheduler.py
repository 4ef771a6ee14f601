"""Scheduler at scale: 10,000 GitRepository objects at a 60 s interval, one real beat process.

Instead of workers, a light drain consumer in this process pops the ``git`` queue (BRPOP, then
RPOP in batches), records each message's ``gt_due`` and ``gt_sent`` headers, and deletes the
object's enqueue guard as a starting worker does, so beat enqueues every object every interval.
Lateness is ``gt_sent − gt_due``: for the initial burst (all objects due at apply) and for the
steady state (every later send). Beat's CPU comes from ``/proc/<pid>/stat``, sampled every second.

``python -m benchmarks.bench_scheduler [--objects N] [--duration S] [--write]``
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from beat_schedule import entry_for
from benchmarks.report import Section
from benchmarks.stack import cpu_seconds, exit_cleanly_on_signals, gt_env, machine_cpu, settings_of
from gitops_tasks.objects.model import Object
from gitops_tasks.settings import DEFAULT_JITTER
from gitops_tasks.store import Catalog, Keys
from tests.procs import Proc, RedisServer, cli_argv, wait_for

#: GitRepository objects in the catalog.
DEFAULT_OBJECTS = 10_000
#: Their ``spec.interval`` (seconds).
DEFAULT_INTERVAL_S = 60
#: How long beat runs after the objects are applied (seconds): the burst plus two full intervals.
DEFAULT_DURATION_S = 185.0
#: How the objects are first due. ``all_due``: every one at the same instant (the brief's case, and
#: what beat finds after being down for an interval); ``apply``: as ``Catalog.apply`` schedules a
#: bulk apply; ``spread``: uniformly over one interval (as after a long uptime).
MODES = ("all_due", "apply", "spread")
DEFAULT_MODES = ("all_due", "apply")
#: Messages the drain pops per RPOP after a BRPOP wakes it.
DEFAULT_DRAIN_BATCH = 1000
#: Tasks published per variant when measuring the cost of one send.
DEFAULT_SEND_COST_COUNT = 3000
#: Target from the brief: p99 lateness in steady state (seconds).
TARGET_P99_S = 1.0


@dataclass
class Received:
    key: str
    due: float
    sent: float
    received: float


@dataclass
class Drain:
    """Pops the ``git`` list like a worker would, records headers, releases enqueue guards."""

    client: redis.Redis
    keys: Keys
    queue: str = "git"
    records: list[Received] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    errors: list[str] = field(default_factory=list)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                popped = self.client.brpop([self.queue], timeout=1)
            except redis.ConnectionError as exc:
                if self.stop.is_set():
                    return
                self.errors.append(f"{type(exc).__name__}: {exc}")
                time.sleep(0.1)
                continue
            if popped is None:
                continue
            raws = [popped[1], *(self.client.rpop(self.queue, DEFAULT_DRAIN_BATCH) or [])]
            now = time.time()
            keys = []
            for raw in raws:
                try:
                    message = json.loads(raw)
                    headers = message["headers"]
                    _args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
                    key = f"{kwargs['kind']}/{kwargs['namespace']}/{kwargs['name']}"
                    self.records.append(
                        Received(key, float(headers["gt_due"]), float(headers["gt_sent"]), now)
                    )
                    keys.append(key)
                except (KeyError, TypeError, ValueError) as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
            with self.client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.delete(self.keys.guard(key))
                pipe.execute()


def _objects(count: int) -> list[Object]:
    return [
        Object(
            api_version="source.toolkit.fluxcd.io/v1",
            kind="GitRepository",
            name=f"repo-{i:05d}",
            namespace="default",
            spec={"interval": f"{DEFAULT_INTERVAL_S}s", "url": f"git://127.0.0.1:9/bench/repo-{i:05d}.git"},
        )
        for i in range(count)
    ]


def _commandstats(client: redis.Redis) -> dict[str, int]:
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in client.info("commandstats").items()}


def _send_costs(redis_url: str, count: int) -> list[dict[str, Any]]:
    """Cost of one ``tasks.enqueue.send`` as shipped, and without the task-sent event.

    Each variant publishes ``count`` tasks through one producer, as beat does, to a queue nobody
    reads; measured in this process (CPU includes the result consumer's thread) against the
    private Redis, whose ``INFO commandstats`` gives the commands per send.
    """
    from gitops_tasks import tasknames
    from gitops_tasks.app import make_app
    from gitops_tasks.objects.model import ObjectRef
    from gitops_tasks.settings import Settings
    from gitops_tasks.tasks.enqueue import send

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    out = []
    variants = [
        ("as shipped: `tasks.enqueue.send`", True),
        ("the same with `task_send_sent_event=False` (no task-sent event per send)", False),
    ]
    for label, sent_event in variants:
        app = make_app(Settings(redis_url=redis_url, key_prefix="sendcost:"))
        app.conf.task_send_sent_event = sent_event
        refs = [ObjectRef("GitRepository", "default", f"repo-{i:05d}") for i in range(count)]
        client.delete("sendcost")
        calls0 = _commandstats(client)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        with app.producer_or_acquire() as producer:
            for ref in refs:
                send(
                    app,
                    ref,
                    task=tasknames.GIT_POLL,
                    queue="sendcost",
                    timeout_s=60.0,
                    reason="schedule",
                    due=time.time(),
                    producer=producer,
                )
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        calls1 = _commandstats(client)
        calls = {
            k: v - calls0.get(k, 0) for k, v in calls1.items() if v - calls0.get(k, 0) > 0 and k != "info"
        }
        out.append({"label": label, "count": count, "wall_s": wall, "cpu_s": cpu, "calls": calls})
        app.close()
    client.delete("sendcost")
    client.close()
    return out


def measure(
    *,
    objects: int = DEFAULT_OBJECTS,
    duration_s: float = DEFAULT_DURATION_S,
    modes: tuple[str, ...] = DEFAULT_MODES,
) -> dict[str, Any]:
    """Measure the cost of a send, then run beat once per start mode (see :data:`MODES`)."""
    base = Path(tempfile.mkdtemp(prefix="gt-bench-sched-"))
    server = RedisServer(base / "redis")
    try:
        figures: dict[str, Any] = {
            "send_costs": _send_costs(server.url(1), DEFAULT_SEND_COST_COUNT),
            "runs": {},
        }
        for db, mode in enumerate(modes, start=2):
            figures["runs"][mode] = _run_beat(
                server, base / mode, db=db, objects=objects, duration_s=duration_s, mode=mode
            )
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
    return figures


def _run_beat(
    server: RedisServer, base: Path, *, db: int, objects: int, duration_s: float, mode: str
) -> dict[str, Any]:
    """Run beat for ``duration_s`` after putting ``objects`` objects in the catalog; return the raw figures.

    ``mode`` says when the objects are first due (see :data:`MODES`).
    """
    env = gt_env(server.url(db), base)
    settings = settings_of(env)
    keys = Keys(settings.key_prefix)
    client = redis.Redis.from_url(server.url(db), decode_responses=True)
    drain = Drain(redis.Redis.from_url(server.url(db), decode_responses=True), keys)
    drainer = threading.Thread(target=drain.run, name="drain", daemon=True)
    beat: Proc | None = None
    cpu: list[tuple[float, float, float]] = []
    try:
        drainer.start()
        (base / "logs").mkdir(parents=True)
        beat = Proc("beat", cli_argv("beat"), env, base / "logs")
        wait_for(lambda: client.get(keys.beat_leader) is not None, timeout_s=60, what="beat to take the lead")
        batch = _objects(objects)
        apply_start = time.time()
        if mode == "apply":
            Catalog(client, keys).apply(batch, entry_for=entry_for, now=apply_start)
        else:
            # Apply with the first runs an hour away (beat ignores them), then set the due times.
            Catalog(client, keys).apply(batch, entry_for=entry_for, now=apply_start + 3600)
            apply_start = time.time()
            rng = random.Random(1)
            due = {
                o.ref.key: apply_start + (rng.uniform(0, DEFAULT_INTERVAL_S) if mode == "spread" else 0.0)
                for o in batch
            }
            client.zadd(keys.schedule, due, xx=True)
        committed = time.time()
        print(f"{mode}: {objects} objects in the schedule after {committed - apply_start:.2f}s", flush=True)
        calls0: dict[str, int] = {}
        calls_window: tuple[float, float] | None = None
        calls1: dict[str, int] = {}
        end = committed + duration_s
        steady_from = committed + (0 if mode == "spread" else DEFAULT_INTERVAL_S * (1 - DEFAULT_JITTER) - 2)
        while time.time() < end:
            cpu.append((time.time(), cpu_seconds(beat.pid), machine_cpu()[0]))
            if beat.proc.poll() is not None:
                raise RuntimeError(f"beat exited with {beat.proc.returncode}:\n{beat.log()[-3000:]}")
            if not calls0 and time.time() >= steady_from:
                calls0 = _commandstats(client)
                calls_window = (time.time(), 0.0)
            time.sleep(1.0)
        cpu.append((time.time(), cpu_seconds(beat.pid), machine_cpu()[0]))
        calls1 = _commandstats(client)
        calls_window = (calls_window[0] if calls_window else committed, time.time())
        time.sleep(1.5)  # let the drain take what was sent last
    finally:
        drain.stop.set()
        if beat is not None:
            beat.stop()
        drainer.join(timeout=5)
        client.close()
    calls = {k: v - calls0.get(k, 0) for k, v in calls1.items() if v - calls0.get(k, 0) > 0}
    return {
        "objects": objects,
        "mode": mode,
        "spread": mode == "spread",
        "duration_s": duration_s,
        "apply_start": apply_start,
        "committed": committed,
        "end": end,
        "records": drain.records,
        "errors": drain.errors,
        "cpu": cpu,
        "calls": calls,
        "calls_window": calls_window,
        "tick_s": settings.beat_tick_s,
    }


def render(figures: dict[str, Any], *, command: str) -> Section:
    """The ``scheduler`` section of BENCHMARKS.md (see :mod:`benchmarks.scheduler_report`)."""
    from benchmarks import scheduler_report

    return scheduler_report.render(figures, command=command)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=DEFAULT_OBJECTS)
    parser.add_argument("--duration", type=float, default=DEFAULT_DURATION_S, help="seconds per run")
    parser.add_argument(
        "--mode",
        action="append",
        choices=MODES,
        help=f"start mode (repeatable; default {', '.join(DEFAULT_MODES)})",
    )
    parser.add_argument(
        "--write", action="store_true", help="also update the scheduler section of BENCHMARKS.md"
    )
    args = parser.parse_args(argv)
    exit_cleanly_on_signals()
    figures = measure(objects=args.objects, duration_s=args.duration, modes=tuple(args.mode or DEFAULT_MODES))
    section = render(
        figures, command="python -m benchmarks.bench_scheduler " + " ".join(argv or sys.argv[1:])
    )
    print(section.markdown)
    if args.write:
        from benchmarks.run import write

        write([section])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
