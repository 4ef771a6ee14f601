"""How the CLI's output behaves in pipes and scripts, run as real processes against a real Redis."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import yaml

from tests.procs import cli_argv

#: Enough rows that the table is several times a pipe's buffer (64 KiB): the CLI is still writing
#: when ``head`` has its line and leaves.
MANY = 1500

REPO = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: {name}
  namespace: {namespace}
spec:
  interval: 10m
  url: https://git.example.test/org/{name}.git
"""


def _repositories(path: Path, count: int, *, namespace: str = "default") -> Path:
    names = (f"repository-with-a-long-name-to-widen-the-table-{i:05d}" for i in range(count))
    path.write_text("---\n".join(REPO.format(name=name, namespace=namespace) for name in names))
    return path


def test_get_piped_into_head_stops_quietly_when_head_leaves(cli, gt_env, tmp_path: Path) -> None:
    # Given a catalog whose table is far longer than a pipe holds
    applied = cli("apply", "-f", str(_repositories(tmp_path / "many.yaml", MANY)), timeout_s=110)
    assert applied.returncode == 0, applied.stderr

    # When it is listed into `head -1`, which exits after the first line
    get = subprocess.Popen(
        cli_argv("get", "gitrepository", "-A"), env=gt_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    with get:
        assert get.stdout is not None and get.stderr is not None
        with subprocess.Popen(["head", "-1"], stdin=get.stdout, stdout=subprocess.PIPE) as head:
            get.stdout.close()  # head alone holds the read end: its exit closes the pipe
            first_line, _ = head.communicate(timeout=60)
        errors = get.stderr.read().decode()
        get.wait(timeout=60)

    # Then head printed the header, and the CLI ended as a Unix filter does: by SIGPIPE, no traceback
    assert first_line.decode().split()[:3] == ["NAMESPACE", "NAME", "READY"]
    assert "Traceback" not in errors and "BrokenPipeError" not in errors, errors
    assert errors == ""
    assert get.returncode == -signal.SIGPIPE


def test_output_of_a_query_is_a_list_and_of_a_named_get_the_object(cli, tmp_path: Path) -> None:
    assert cli("apply", "-f", str(_repositories(tmp_path / "one.yaml", 1, namespace="apps"))).returncode == 0
    name = "repository-with-a-long-name-to-widen-the-table-00000"

    # A query matching one object is still a List (kubectl's shape), in JSON and YAML
    for output, parse in (("json", json.loads), ("yaml", yaml.safe_load)):
        listed = cli("get", "gitrepository", "-n", "apps", "-o", output)
        assert listed.returncode == 0, listed.stderr
        document = parse(listed.stdout)
        assert document["apiVersion"] == "v1" and document["kind"] == "List"
        assert [item["name"] for item in document["items"]] == [name]

    # A query matching nothing is an empty List, not an empty array or nothing
    empty = json.loads(cli("get", "gitrepository", "-n", "elsewhere", "-o", "json").stdout)
    assert empty == {"apiVersion": "v1", "kind": "List", "items": []}

    # A named get prints the object itself
    for output, parse in (("json", json.loads), ("yaml", yaml.safe_load)):
        named = parse(cli("get", "gitrepository", name, "-n", "apps", "-o", output).stdout)
        assert named["name"] == name and named["namespace"] == "apps"
        assert named["spec"]["url"] == f"https://git.example.test/org/{name}.git"
