"""The registry rate limit is global: separate OS processes sharing one Redis stay under it together.

Each process records every grant as an interval ``[lo, hi]`` of wall-clock time (the clock Redis's
``TIME`` reads on this machine): ``lo`` just before the ``try_acquire`` that took the token, ``hi``
just after. The real grant happened inside it, so the checks below count only what is certain: a
window "contains" a grant only if it contains the whole interval. They cannot fail because a process
was descheduled, yet any real excess of the limit shows.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from gitops_tasks.ratelimit import RateLimited, RedisTokenBucket
from gitops_tasks.store.keys import Keys
from gitops_tasks.tasks.context import Context
from tests.procs import REPO_ROOT, wait_for

HOST = "registry.example.com"
RPS, BURST = 30, 5
PROCESSES = 4


def hammer(job: dict[str, Any]) -> None:
    """Child process: acquire tokens as fast as allowed from ``start_at`` for ``duration_s``."""
    import redis

    client = redis.Redis.from_url(job["url"], decode_responses=True)
    woke = [0.0]

    def sleep(seconds: float) -> None:
        time.sleep(seconds)
        woke[0] = time.time()

    bucket = RedisTokenBucket(
        client, Keys(job["prefix"]), rps=RPS, burst=BURST, recovery_quiet_s=600, sleep=sleep
    )
    client.ping()
    out = Path(job["out"])
    Path(f"{out}.ready").touch()
    go = Path(job["go"])
    while not go.exists():
        time.sleep(0.002)
    start_at = float(go.read_text())
    while time.time() < start_at:
        time.sleep(0.0005)
    end_at = start_at + job["duration_s"]
    throttle_at = start_at + job["throttle_after_s"] if job.get("throttle_after_s") is not None else None
    grants: list[tuple[float, float]] = []
    throttle: tuple[float, float] | None = None
    while (lo := time.time()) < end_at:
        if throttle_at is not None and throttle is None and lo >= throttle_at:
            bucket.throttled(HOST, retry_after_s=job["retry_after_s"])
            throttle = (lo, time.time())
            continue
        woke[0] = lo
        try:
            bucket.acquire(HOST, max_wait_s=2.0)
        except RateLimited:
            continue
        grants.append((woke[0], time.time()))
    out.write_text(json.dumps({"grants": grants, "throttle": throttle}))


def run_processes(ctx: Context, tmp_path: Path, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    go = tmp_path / "go"
    procs = []
    for i, job in enumerate(jobs):
        job |= {
            "url": ctx.settings.effective_redis_url(),
            "prefix": ctx.keys.prefix,
            "out": str(tmp_path / f"hammer-{i}.json"),
            "go": str(go),
        }
        code = "import json, sys; from tests.integration.test_ratelimit_processes import hammer; "
        code += "hammer(json.loads(sys.argv[1]))"
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", code, json.dumps(job)], cwd=REPO_ROOT, stdin=subprocess.DEVNULL
            )
        )
    try:
        wait_for(
            lambda: all(Path(f"{job['out']}.ready").exists() for job in jobs) or any(p.poll() for p in procs),
            timeout_s=60,
            what="hammer processes to connect",
        )
        staged = tmp_path / "go.tmp"
        staged.write_text(repr(time.time() + 0.2))
        staged.rename(go)  # atomic: a child never reads a half-written start time
        for proc in procs:
            assert proc.wait(60) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return [json.loads(Path(job["out"]).read_text()) for job in jobs]


def most_in_any_window(grants: list[tuple[float, float]], width_s: float) -> int:
    """The largest number of grants whose whole interval fits in one window of ``width_s``."""
    return max(sum(1 for lo, hi in grants if lo >= start and hi <= start + width_s) for start, _ in grants)


def test_processes_sharing_a_host_stay_under_one_global_limit(ctx: Context, tmp_path: Path) -> None:
    # Given 4 processes hammering the same host for 3 s at 30 rps, burst 5
    results = run_processes(ctx, tmp_path, [{"duration_s": 3.0} for _ in range(PROCESSES)])
    grants = sorted(g for result in results for g in result["grants"])
    span_s = max(hi for _, hi in grants) - min(lo for lo, _ in grants)
    # Then together they got what one bucket allows, not 4 times that
    assert len(grants) <= BURST + RPS * span_s + 1
    assert len(grants) >= 0.9 * RPS * 3.0
    assert all(result["grants"] for result in results), "every process got some tokens"
    # And no window of any width held more than the burst plus the rate
    for width_s in (0.5, 1.0, 2.0):
        assert most_in_any_window(grants, width_s) <= BURST + RPS * width_s + 1, width_s


def test_a_429_seen_by_one_process_blocks_the_others_then_halves_their_rate(
    ctx: Context, tmp_path: Path
) -> None:
    # Given 4 processes hammering one host; 1 s in, the first gets a 429 with Retry-After: 1
    jobs: list[dict[str, Any]] = [{"duration_s": 4.0} for _ in range(PROCESSES)]
    jobs[0] |= {"throttle_after_s": 1.0, "retry_after_s": 1.0}
    results = run_processes(ctx, tmp_path, jobs)
    throttled_lo, throttled_hi = results[0]["throttle"]
    blocked_until = throttled_lo + 1.0  # at the earliest
    grants = sorted(g for result in results for g in result["grants"])
    end = max(hi for _, hi in grants)
    after = [(lo, hi) for lo, hi in grants if lo > throttled_hi]
    # Then nobody got a token during the block: whatever was asked after the 429 came after it
    assert all(hi >= blocked_until for _, hi in after)
    # And after it, everyone together ran at half the rate: one at once, then 15 per second
    assert len(after) <= 1 + RPS / 2 * (end - blocked_until) + 1
    assert len(after) >= 0.8 * RPS / 2 * (end - blocked_until - 0.1)
    for width_s in (0.5, 1.0):
        assert most_in_any_window(after, width_s) <= 1 + RPS / 2 * width_s + 1, width_s
    assert any(lo > throttled_hi for result in results[1:] for lo, _ in result["grants"])
    # Before it, the full rate was available
    before = [(lo, hi) for lo, hi in grants if hi < throttled_lo]
    assert len(before) >= 0.9 * (BURST + RPS * 1.0) - 2
