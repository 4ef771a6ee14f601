"""Create the local bare repositories the examples point at (so `make run` works offline).

Repositories land in /tmp/gitops-tasks-examples/<name>.git, fed by work trees in
/tmp/gitops-tasks-examples/work/<name> whose ``main`` tracks the bare repository, so a plain ``git commit``
and ``git push`` there publish a new revision (the work trees carry their own committer identity).
Safe to run again: existing repositories are kept, and work trees made by an earlier version of this
script get their upstream and identity set.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(os.environ.get("GITOPS_TASKS_EXAMPLES_DIR", "/tmp/gitops-tasks-examples"))
ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "gitops-tasks example",
    "GIT_AUTHOR_EMAIL": "example@gitops-tasks.invalid",
    "GIT_COMMITTER_NAME": "gitops-tasks example",
    "GIT_COMMITTER_EMAIL": "example@gitops-tasks.invalid",
}

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: default
spec:
  replicas: 2
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
        - name: {name}
          image: ghcr.io/example/{name}:{version} # {{"$imagepolicy": "default:{name}"}}
"""

REPOSITORIES = {
    "podinfo": ["1.0.0", "1.1.0", "1.2.0", "2.0.0-rc.1"],
    "platform": ["0.9.0", "1.0.0"],
    "billing": ["3.4.1"],
}


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=ENV, check=True, capture_output=True)


def prepare(name: str, versions: list[str]) -> None:
    bare = ROOT / f"{name}.git"
    work = ROOT / "work" / name
    if bare.exists():
        if (work / ".git").is_dir():
            track_remote(work)
        return
    work.mkdir(parents=True, exist_ok=True)
    git("init", "-q", "-b", "main", ".", cwd=work)
    track_remote(work)
    for version in versions:
        (work / "deploy").mkdir(exist_ok=True)
        (work / "deploy" / "deployment.yaml").write_text(DEPLOYMENT.format(name=name, version=version))
        git("add", "-A", cwd=work)
        git("commit", "-q", "-m", f"release {version}", cwd=work)
        git("tag", "-a", f"v{version}", "-m", f"v{version}", cwd=work)
    git("init", "-q", "--bare", "-b", "main", str(bare), cwd=ROOT)
    git("remote", "add", "origin", str(bare), cwd=work)
    git("push", "-q", "origin", "main", "--tags", cwd=work)


def track_remote(work: Path) -> None:
    """``main`` pushes to and pulls from ``origin``'s main; commits there need no global identity."""
    for key, value in (
        ("branch.main.remote", "origin"),
        ("branch.main.merge", "refs/heads/main"),
        ("user.name", ENV["GIT_AUTHOR_NAME"]),
        ("user.email", ENV["GIT_AUTHOR_EMAIL"]),
    ):
        git("config", key, value, cwd=work)


def main() -> None:
    ROOT.mkdir(parents=True, exist_ok=True)
    for name, versions in REPOSITORIES.items():
        prepare(name, versions)
    print(f"example repositories ready under {ROOT}")
    print(f"commit in {ROOT}/work/<name> and `git push` there to see new revisions")


if __name__ == "__main__":
    main()
