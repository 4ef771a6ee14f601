"""The README's examples work when pasted: another system enqueues work by task name."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.gitservers import FileRemotes
from tests.procs import REPO_ROOT, wait_for

README = (REPO_ROOT / "README.md").read_text()


def _declare(cli, tmp_path: Path, name: str) -> None:
    remotes = FileRemotes(tmp_path / "remotes").start()
    repo = remotes.new_repo(name, {"a.yaml": "a: 1\n"})
    objects = tmp_path / "objects"
    objects.mkdir()
    (objects / "repo.yaml").write_text(
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n"
        f"metadata:\n  name: {name}\n  namespace: default\nspec:\n  interval: 1h\n  url: {repo.url}\n"
    )
    assert cli("apply", "-f", str(objects)).returncode == 0


def test_readme_send_task_snippet_enqueues_a_reconcile(cli, ctx, procs, gt_env, tmp_path: Path) -> None:
    block = re.search(r"```bash\n(python - <<'EOF'\n.*?\nEOF)\n```", README, re.S)
    assert block, "README lost its send_task example"
    _declare(cli, tmp_path, "podinfo")
    worker = procs("worker", "-c", "2")
    env = {**gt_env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}

    result = subprocess.run(
        ["bash", "-c", block.group(1)], env=env, capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("queued ")
    wait_for(lambda: "GitRepository default/podinfo: success" in worker.log(), what="the reconcile to run")


def test_readme_celery_call_command_enqueues_a_reconcile(cli, ctx, procs, gt_env, tmp_path: Path) -> None:
    command = re.search(r"`(celery -A gitops_tasks\.app:app call gitops\.reconcile [^`]+)`", README)
    assert command, "README lost its celery call example"
    _declare(cli, tmp_path, "podinfo")
    worker = procs("worker", "-c", "2")
    argv = shlex.split(command.group(1))
    argv[0] = str(Path(sys.executable).parent / "celery")

    result = subprocess.run(argv, env=gt_env, capture_output=True, text=True, check=False, cwd=REPO_ROOT)

    assert result.returncode == 0, result.stderr
    wait_for(lambda: "GitRepository default/podinfo: success" in worker.log(), what="the reconcile to run")
