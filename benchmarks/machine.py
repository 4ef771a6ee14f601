"""Facts about the machine a benchmark ran on (CPU, cores, RAM, OS, tool versions)."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

from tests.procs import redis_binary


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    return out.strip().splitlines()[0] if out.strip() else "unavailable"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"') + f" (kernel {platform.release()})"
    except OSError:
        pass
    return platform.platform()


def facts() -> dict[str, str]:
    """Label → value, in the order they are printed."""
    return {
        "CPU": _cpu_model(),
        "Cores": str(os.cpu_count()),
        "RAM": _ram_gib(),
        "OS": _os_name(),
        "Python": platform.python_version(),
        "git": _first_line(["git", "--version"]),
        "Redis": _first_line([redis_binary(), "--version"]),
    }


def code_version() -> str:
    """``<short commit>`` of the working tree, plus a note when code outside benchmarks/ is modified."""
    root = Path(__file__).resolve().parent.parent
    sha = _first_line(["git", "-C", str(root), "rev-parse", "--short", "HEAD"])
    try:
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "gitops_tasks", "beat_schedule"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        status = ""
    return f"{sha} with uncommitted changes to gitops_tasks/ or beat_schedule/" if status.strip() else sha
