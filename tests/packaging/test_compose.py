"""compose.yaml: valid for docker-compose 1.29 and the Compose Specification, and runs the whole stack.

The validators are external tools; a check whose tool is missing is skipped with the tool's name.
The Helm chart is checked by ``make chart`` (scripts/check-packaging.sh), not here: it needs 255 MB.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
CORE_SERVICES = {"redis", "worker", "beat", "flower", "receiver"}
GITOPS_TASKS_SERVICES = CORE_SERVICES - {"redis"}
#: Longest a validator may take; both answer in about a second.
DEFAULT_TOOL_TIMEOUT_S = 60


def _tool(name: str) -> str:
    """The tool from this interpreter's virtualenv first, then PATH; skips the test when absent."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed")
    return found


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=DEFAULT_TOOL_TIMEOUT_S, check=False
    )


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


@pytest.mark.parametrize("profile", [None, "rabbitmq"])
def test_compose_file_is_accepted_by_docker_compose_1_29(profile: str | None) -> None:
    argv = [_tool("docker-compose"), "-f", str(COMPOSE)]
    if profile:
        argv += ["--profile", profile]
    result = _run(*argv, "config", "-q")
    assert result.returncode == 0, result.stderr


def test_compose_file_matches_the_compose_specification_schema() -> None:
    result = _run(_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_redis_worker_beat_flower_and_the_receiver_by_default(services: dict[str, Any]) -> None:
    default = {name for name, spec in services.items() if not spec.get("profiles")}
    assert default == CORE_SERVICES


def test_every_default_service_has_a_healthcheck(services: dict[str, Any]) -> None:
    for name in CORE_SERVICES:
        assert services[name].get("healthcheck", {}).get("test"), f"service {name} has no healthcheck"


def test_gitops_tasks_services_share_redis_and_wait_for_it(services: dict[str, Any]) -> None:
    for name in GITOPS_TASKS_SERVICES:
        spec = services[name]
        assert spec["environment"]["GITOPS_TASKS_REDIS_URL"] == "redis://redis:6379/0", name
        assert spec["depends_on"]["redis"]["condition"] == "service_healthy", name


def test_worker_healthcheck_pings_the_node_name_the_worker_is_given(services: dict[str, Any]) -> None:
    worker = services["worker"]
    command = worker["command"]
    node_name = command[command.index("-n") + 1]
    assert node_name == "gitops@%h"
    ping = worker["healthcheck"]["test"][-1]
    hostname = "$$(python -c 'import socket; print(socket.gethostname())')"  # what %h expands to
    assert "inspect ping" in ping and f'-d "gitops@{hostname}"' in ping, ping


def test_flower_is_published_on_loopback_only(services: dict[str, Any]) -> None:
    assert services["flower"]["ports"] == ["127.0.0.1:5555:5555"]
    assert services["flower"]["command"][:3] == ["flower", "--address", "0.0.0.0"]
