"""``gitops-tasks completion bash|zsh|fish``: the scripts load in the real shells and complete
commands, kinds, sub-commands and option values (the CLI and the shells run as processes)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.procs import REPO_ROOT

#: Sources the script the CLI prints (``source <(gitops-tasks completion bash)``), then completes
#: the words after ``--`` as if TAB were pressed after the last one.
BASH_COMPLETE = """\
source <("$1" -m gitops_tasks.cli completion bash)
declare -F _gitops_tasks > /dev/null || exit 1
shift
COMP_WORDS=(gitops-tasks "$@"); COMP_CWORD=$#
_gitops_tasks
printf '%s\\n' "${COMPREPLY[@]}"
"""

LOAD_AND_SHOW = 'source <("$1" -m gitops_tasks.cli completion bash) && complete -p gitops-tasks'

#: (typed words, the last one being completed) → what must be offered (and nothing else).
CASES = [
    (["ge"], ["get"]),
    (["get", "gitr"], ["gitrepository"]),
    (["get", "a"], ["alert", "all"]),
    (["get", "so"], ["sources"]),
    (["export", "a"], ["alert", "all"]),
    (["get", "-n", "apps", "kustom"], ["kustomization"]),
    (["reconcile", "image"], ["imagepolicy", "imagerepository", "imageupdateautomation"]),
    (["get", "-o", "y"], ["yaml"]),
    (["images", "u"], ["update"]),
    (["images", "update", "--dr"], ["--dry-run"]),
    (["completion", "z"], ["zsh"]),
    (["get", "gitrepository", "pod"], []),  # a NAME: not a kind again
]


def _run(*argv: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=60, check=False)


def _script(shell: str) -> str:
    done = _run(sys.executable, "-m", "gitops_tasks.cli", "completion", shell)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_bash_loads_the_script_and_registers_the_completion() -> None:
    loaded = _run("bash", "-c", LOAD_AND_SHOW, "_", sys.executable)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stderr == ""
    assert loaded.stdout.strip() == "complete -o default -F _gitops_tasks gitops-tasks"


@pytest.mark.parametrize(("words", "offered"), CASES, ids=[" ".join(w) for w, _ in CASES])
def test_bash_completes_commands_kinds_and_values(words: list[str], offered: list[str]) -> None:
    done = _run("bash", "-c", BASH_COMPLETE, "_", sys.executable, *words)
    assert done.returncode == 0, done.stderr
    assert sorted(line for line in done.stdout.splitlines() if line) == offered


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
@pytest.mark.parametrize(("words", "offered"), CASES, ids=[" ".join(w) for w, _ in CASES])
def test_fish_completes_commands_kinds_and_values(
    tmp_path: Path, words: list[str], offered: list[str]
) -> None:
    script = tmp_path / "gitops-tasks.fish"
    script.write_text(_script("fish"))
    line = " ".join(["gitops-tasks", *words])
    # run in an empty directory: no file names to offer
    done = _run("fish", "--no-config", "-c", f"source {script}; complete -C '{line}'", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(row.split("\t")[0] for row in done.stdout.splitlines() if row) == offered


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_loads_the_script_and_its_function_completes_kinds(tmp_path: Path) -> None:
    script = tmp_path / "_gitops-tasks"
    script.write_text(_script("zsh"))
    complete = (
        f"source {script} || exit 1; COMP_WORDS=(gitops-tasks get -n apps gitr); COMP_CWORD=4; "
        'COMPREPLY=(); _gitops_tasks; print -rl -- "${COMPREPLY[@]}"'
    )
    done = _run("zsh", "-fc", complete, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "gitrepository" in done.stdout.split()  # zsh's compadd narrows the rest to the prefix
    assert done.stderr == ""
