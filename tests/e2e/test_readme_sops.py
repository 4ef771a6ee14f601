"""The README's SOPS example works when pasted: age-keygen, sops and ``gitops-tasks build``, run
exactly as written, and its Kustomization loads."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gitops_tasks.objects import load_text
from tests.procs import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
SECTION = README[README.index("#### SOPS: encrypted Secrets in Git") :]


@pytest.mark.skipif(shutil.which("age-keygen") is None, reason="age-keygen (Debian age) is not installed")
def test_readme_sops_snippet_encrypts_and_builds_with_the_key(tmp_path: Path, gt_env: dict[str, str]) -> None:
    block = re.search(r"```bash\n(.*?)\n```", SECTION, re.S)
    assert block, "README lost its SOPS example"
    env = {
        **gt_env,
        "HOME": str(tmp_path),
        "PATH": f"{REPO_ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
    }
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.group(1)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "password: '***'" in result.stdout and "hunter2" not in result.stdout
    committed = (tmp_path / "apps" / "db.yaml").read_text()
    assert "password: ENC[" in committed and "hunter2" not in committed
    identity = Path(gt_env["GITOPS_TASKS_SECRETS_DIR"]) / "flux-system" / "sops-age" / "identity.agekey"
    assert "AGE-SECRET-KEY-" in identity.read_text()


def test_readme_sops_kustomization_loads() -> None:
    block = re.search(r"```yaml\n(.*?)\n```", SECTION, re.S)
    assert block, "README lost its SOPS Kustomization"
    (obj,) = load_text(block.group(1), filename="README.md")
    assert obj.spec["decryption"] == {"provider": "sops", "secretRef": {"name": "sops-age"}}
