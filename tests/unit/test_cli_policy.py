"""``gitops-tasks policy latest`` run as a real process: output and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SEMVER = json.dumps({"policy": {"semver": {"range": "^1.0"}}})
TIMESTAMPS = json.dumps(
    {
        "policy": {"numerical": {"order": "asc"}},
        "filterTags": {"pattern": "^main-[a-f0-9]+-(?P<ts>[0-9]+)", "extract": "$ts"},
    }
)


def latest(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gitops_tasks.cli", "policy", "latest", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_prints_the_selected_tag_and_exits_0() -> None:
    done = latest("--spec", SEMVER, "1.0.0", "v1.4.2", "2.0.0", "1.0.0.1", "latest")
    assert (done.returncode, done.stdout, done.stderr) == (0, "v1.4.2\n", "")


def test_extract_orders_by_the_value_but_prints_the_original_tag() -> None:
    done = latest("--spec", TIMESTAMPS, "main-abc123-1700000000", "main-def456-1700000100", "dev-1-9")
    assert (done.returncode, done.stdout) == (0, "main-def456-1700000100\n")


def test_reads_tags_from_a_file_and_from_stdin(tmp_path: Path) -> None:
    tags = tmp_path / "tags.txt"
    tags.write_text("1.0.0\n\n  1.3.0  \n2.0.0\n", encoding="utf-8")
    assert latest("--spec", SEMVER, "--tags-file", str(tags)).stdout == "1.3.0\n"
    done = latest("--spec", SEMVER, "--tags-file", "-", "1.5.0", stdin="1.2.0\n1.9.0\n")
    assert (done.returncode, done.stdout) == (0, "1.9.0\n")


def test_no_matching_tag_exits_1_with_the_reason() -> None:
    done = latest("--spec", SEMVER, "2.0.0", "latest")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.startswith("error: no tag matches the policy: 2 tags considered; ")


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        (
            {"policy": {"semver": {"range": "latest"}}},
            "spec.policy.semver.range: semver range 'latest'",
        ),
        ({"policy": {"alphabetical": {"order": "up"}}}, "spec.policy.alphabetical.order"),
        ({"policy": {}}, "spec.policy: set exactly one of semver, alphabetical, numerical"),
        ({"policy": {"numerical": {}}, "filterTags": {"pattern": "(a)", "extract": "$2"}}, "$2"),
        ({"policy": {"numerical": {}}, "filterTagz": {}}, "spec.filterTagz: unknown field"),
    ],
)
def test_invalid_spec_exits_1_naming_the_field(spec: dict[str, Any], fragment: str) -> None:
    done = latest("--spec", json.dumps(spec), "1.0.0")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.startswith("error: ")
    assert fragment in done.stderr


def test_spec_that_is_not_json_exits_1() -> None:
    done = latest("--spec", "{policy: semver", "1.0.0")
    assert done.returncode == 1
    assert "--spec is not valid JSON" in done.stderr


def test_unreadable_tags_file_exits_1(tmp_path: Path) -> None:
    done = latest("--spec", SEMVER, "--tags-file", str(tmp_path / "missing.txt"))
    assert done.returncode == 1
    assert "cannot read --tags-file" in done.stderr


def test_no_tags_is_a_usage_error() -> None:
    done = latest("--spec", SEMVER)
    assert (done.returncode, done.stdout) == (2, "")
    assert "give TAG arguments or --tags-file" in done.stderr
