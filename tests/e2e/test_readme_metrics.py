"""The README's Metrics and Health snippets work when pasted from the repository root (Redis URL and
ports replaced by the test's own, background jobs stopped at the end)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.e2e.test_readme import README, _bash, _declare
from tests.procs import free_port


def _block(after: str, starts: str) -> str:
    section = README.split(after, 1)[1]
    found = re.search(r"```bash\n(" + re.escape(starts) + r".*?)\n```", section, re.S)
    assert found, f"README lost its {after} snippet"
    return found.group(1)


def _run(script: str, env: dict[str, str], ports: dict[str, int]) -> subprocess.CompletedProcess[str]:
    script = script.replace("redis://127.0.0.1:6379/0", env["GITOPS_TASKS_REDIS_URL"])
    for old, new in ports.items():
        script = script.replace(old, str(new))
    return _bash(f"trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT\n{script}\n", env)


def test_readme_metrics_snippet_scrapes_a_worker_beat_and_the_collector(cli, gt_env, tmp_path: Path) -> None:
    _declare(cli, tmp_path, "podinfo")
    script = _block("## Metrics\n", "export GITOPS_TASKS_REDIS_URL")
    ports = {p: free_port() for p in ("9811", "9812", "9813")}

    result = _run(script, gt_env, ports)

    assert result.returncode == 0, result.stderr[-3000:]
    assert (
        'gotk_reconcile_duration_seconds_count{kind="GitRepository",name="podinfo",namespace="default"}'
        in (result.stdout)
    )
    assert re.search(r'^gotk_resource_info\{.*name="podinfo".*ready="True"', result.stdout, re.M), (
        result.stdout
    )
    assert 'gitops_tasks_queue_length{queue="git"}' in result.stdout
    assert '"role": "leader"' in result.stdout


def test_readme_heartbeat_file_snippet_passes_while_the_worker_runs(gt_env, tmp_path: Path) -> None:
    script = _block("## Health and autoscaling\n", "GITOPS_TASKS_HEARTBEAT_FILE=")
    script = script.replace("/tmp/worker.heartbeat", str(tmp_path / "worker.heartbeat"))

    result = _run(script, gt_env, {"9814": free_port()})

    assert result.returncode == 0, result.stderr[-3000:]
    assert '"alive": true' in result.stdout
