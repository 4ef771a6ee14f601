"""fluxctl's workload commands on a checkout: ``release``, ``automate``, ``deautomate``, ``lock``,
``unlock`` (Flux v1 semantics, byte-exact edits from :mod:`.v1edit`).

- ``release``: set every container of the workload whose image is the given repository to the
  given tag (or digest reference). A locked workload is refused unless ``force`` (fluxctl's
  ``--force``); a workload with no container of that repository is an error.
- ``automate`` / ``deautomate``: add ``fluxcd.io/automated: "true"`` / remove it (both prefixes).
- ``lock`` / ``unlock``: add ``fluxcd.io/locked: "true"`` with ``locked_msg`` and ``locked_user``
  when given / remove all three (both prefixes).

Each returns a :class:`WorkloadEdit` (an :class:`~.commit.Edit`), for :func:`~.commit.edit_and_push`.
I/O: reads and rewrites files under the checkout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gitops_tasks.automation.tree import resolve_update_path, write_atomically
from gitops_tasks.automation.v1 import (
    AUTOMATED,
    LEGACY_PREFIX,
    LOCKED,
    LOCKED_MSG,
    LOCKED_USER,
    PREFIX,
    Workload,
    canonical_repository,
    parse_workload_id,
    split_image,
    workloads_in_text,
)
from gitops_tasks.automation.v1edit import set_annotation, set_images
from gitops_tasks.automation.yamltext import YAMLTextError

ACTIONS = ("automate", "deautomate", "lock", "unlock")
_YAML = (".yaml", ".yml")


class ReleaseError(ValueError):
    """The command cannot be carried out (workload not found, locked, no such image...)."""


@dataclass
class WorkloadEdit:
    """What a command changed in the checkout."""

    workload: str
    description: str
    files: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.files)


def discover(
    root: Path, path: str | None = None
) -> tuple[list[tuple[Path, str, Workload]], list[tuple[str, str]]]:
    """Every workload declared in the YAML files under ``root``/``path``, with its file and text,
    and the files passed over (``(relative path, reason)``: not UTF-8, not YAML). Feed the
    workloads to :func:`~.v1.images_to_scan` and :func:`~.v1.automated_updates`.
    Raises :class:`~.tree.UpdatePathError`."""
    real_root = root.resolve()
    target = resolve_update_path(root, path)
    files = [target] if target.is_file() else sorted(p for p in target.rglob("*") if p.suffix in _YAML)
    found: list[tuple[Path, str, Workload]] = []
    skipped: list[tuple[str, str]] = []
    for file in files:
        rel = file.relative_to(real_root).as_posix()
        if ".git" in Path(rel).parts or file.is_symlink() or not file.is_file():
            continue
        try:
            text = file.read_bytes().decode("utf-8")
            found += [(file, text, w) for w in workloads_in_text(text, rel)]
        except UnicodeDecodeError:
            skipped.append((rel, "not UTF-8 text"))
        except YAMLTextError as exc:
            skipped.append((rel, f"not valid YAML ({exc})"))
    return found, skipped


def find_workload(root: Path, path: str | None, workload_id: str) -> tuple[Path, str, Workload]:
    """``(file, text, workload)`` for ``KIND/NS/NAME`` under ``root``/``path``.

    Files that do not parse are passed over. Raises :class:`ReleaseError` when the workload is
    declared nowhere or in more than one file.
    """
    kind, namespace, name = parse_workload_id(workload_id)
    found = [
        f
        for f in discover(root, path)[0]
        if (f[2].kind, f[2].namespace, f[2].name) == (kind, namespace, name)
    ]
    wanted = f"{kind}/{namespace}/{name}"
    if not found:
        raise ReleaseError(f"workload {wanted} is not declared under {path or '.'}")
    if len(found) > 1:
        raise ReleaseError(
            f"workload {wanted} is declared more than once: {', '.join(w.file for _, _, w in found)}"
        )
    return found[0]


def release(
    root: Path, workload_id: str, image: str, *, path: str | None = None, force: bool = False
) -> WorkloadEdit:
    """Set the workload's containers running ``image``'s repository to ``image``."""
    repository, tag, digest = split_image(image)
    if tag is None and digest is None:
        raise ReleaseError(f"--update-image {image!r}: expected IMAGE:TAG (or IMAGE@DIGEST)")
    file, text, workload = find_workload(root, path, workload_id)
    if workload.locked and not force:
        reason = workload.policy(LOCKED_MSG)
        raise ReleaseError(f"workload {workload.id} is locked{f' ({reason})' if reason else ''}; use --force")
    wanted = canonical_repository(repository)
    edits = []
    for container in workload.containers:
        current_repo = split_image(container.image)[0]
        if canonical_repository(current_repo) == wanted:
            edits.append((container, current_repo + image[len(repository) :]))
    if not edits:
        raise ReleaseError(f"no container of workload {workload.id} uses image {repository}")
    result = WorkloadEdit(workload.id, f"Release {image} to {workload.id}")
    new_text = set_images(text, edits)
    if new_text != text:
        write_atomically(file, new_text.encode("utf-8"))
        result.files.append(workload.file)
        result.details = [f"{c.name}: {c.image} -> {new}" for c, new in edits if c.image != new]
    return result


def set_policy(
    root: Path,
    workload_id: str,
    action: str,
    *,
    path: str | None = None,
    user: str | None = None,
    message: str | None = None,
) -> WorkloadEdit:
    """Apply ``automate``, ``deautomate``, ``lock`` or ``unlock`` to the workload's annotations."""
    if action not in ACTIONS:
        raise ReleaseError(f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}")
    file, text, workload = find_workload(root, path, workload_id)
    changes: list[tuple[str, str | None]]
    if action == "automate":
        changes = [(PREFIX + AUTOMATED, "true"), (LEGACY_PREFIX + AUTOMATED, None)]
    elif action == "deautomate":
        changes = [(PREFIX + AUTOMATED, None), (LEGACY_PREFIX + AUTOMATED, None)]
    elif action == "lock":
        changes = [(PREFIX + LOCKED, "true"), (LEGACY_PREFIX + LOCKED, None)]
        changes += [(PREFIX + LOCKED_MSG, message)] if message else []
        changes += [(PREFIX + LOCKED_USER, user)] if user else []
    else:
        changes = [
            (prefix + key, None)
            for key in (LOCKED, LOCKED_MSG, LOCKED_USER)
            for prefix in (PREFIX, LEGACY_PREFIX)
        ]
    result = WorkloadEdit(workload.id, f"{action.capitalize()} {workload.id}")
    new_text = text
    for key, value in changes:
        current = next(w for w in workloads_in_text(new_text) if w.doc_index == workload.doc_index)
        if current.annotations.get(key) == value:
            continue
        new_text = set_annotation(new_text, current, key, value)
        result.details.append(f"{key}: {value!r}" if value is not None else f"{key} removed")
    if new_text != text:
        write_atomically(file, new_text.encode("utf-8"))
        result.files.append(workload.file)
    return result
