"""A worker killed with SIGKILL takes the processes it started with it (git and its helpers).

Real Redis, a real worker process and a real git server that holds every request, so the worker's
git processes are in the middle of a poll when the worker dies. Only the worker process is killed,
as the OOM killer or ``kill -9 PID`` does: nothing else is signalled by the test.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.procs import alive, descendants, wait_for

#: Far longer than the test may wait: without the watchdog the git processes outlive the test.
HELD_S = 600.0


def test_the_git_processes_of_a_killed_worker_die_with_it(cli, procs, slow_http, tmp_path: Path) -> None:
    # Given a worker polling a repository whose server holds the request (spec.timeout 10 minutes)
    repo = slow_http.new_repo("held", {"a.yaml": "a: 1\n"})
    (tmp_path / "repo.yaml").write_text(
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n"
        "metadata: {name: held, namespace: default}\n"
        f"spec: {{interval: 1h, timeout: 10m, url: '{repo.url}'}}\n"
    )
    assert cli("apply", "-f", str(tmp_path / "repo.yaml")).returncode == 0
    worker = procs("worker", "-c", "2")
    wait_for(lambda: " ready." in worker.log(), timeout_s=60, what="the worker to be ready")
    slow_http.delay_s = HELD_S
    assert cli("reconcile", "gitrepository", "held").returncode == 0
    wait_for(lambda: slow_http.in_flight > 0, timeout_s=30, what="the poll to reach the server")
    gits = wait_for(
        lambda: {pid: name for pid, name in descendants(worker.pid).items() if name.startswith("git")},
        what="the worker's git processes",
    )

    # When the worker process alone is killed (its git runs in sessions of its own)
    os.kill(worker.pid, signal.SIGKILL)
    worker.proc.wait(10)

    # Then its git processes are gone shortly after, long before the server would answer
    wait_for(lambda: not any(alive(pid) for pid in gits), timeout_s=30, what=f"git processes {gits} to end")
    # and the worker's log says so (the watchdog writes it once nothing marked is left)
    wait_for(lambda: "ended; killed the" in worker.log(), timeout_s=30, what="the watchdog's line")
    assert all(f"[{pid}]" in worker.log() for pid in gits), worker.log()[-2000:]
