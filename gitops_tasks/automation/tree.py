"""Apply the setters to every file under ``spec.update.path`` of a checkout, and write the changes.

Which files, as Flux's ScreeningLocalReader: regular files named ``*.yaml``, ``*.yml`` or
``Kustomization``, found recursively, that contain the token ``"$imagepolicy"``. In addition we
never enter ``.git`` and never follow symbolic links (a link could lead out of the repository, and
writing through it would edit a file elsewhere); linked YAML files are reported as skipped.

``update.path`` is relative to the repository root (a leading ``/`` means the root, as Flux's
secure join reads it); a path that climbs out of the root (``../x``) is refused rather than
clamped, since it is almost certainly a mistake.

I/O: reads and (unless ``write=False``) rewrites files under ``root``; each write replaces the file
atomically and keeps its permission bits.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitops_tasks.automation.setters import MARKER_TOKEN, Change, FileUpdate, PolicyImage, update_text

#: File names and suffixes the setters look at (Flux's rule).
YAML_SUFFIXES = (".yaml", ".yml")
KUSTOMIZATION_FILE = "Kustomization"
#: Directories never entered.
SKIP_DIRS = frozenset({".git"})


class UpdatePathError(ValueError):
    """``spec.update.path`` cannot be used: ``missing`` (not in the checkout) or it escapes the root."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


@dataclass
class TreeResult:
    """What one pass over a tree did."""

    #: Files with at least one change (already written unless ``write=False``).
    files: list[FileUpdate] = field(default_factory=list)
    #: ``(relative path, reason)`` of files that were candidates but were skipped.
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: Markers left alone, as ``path: line N: why``.
    ignored: list[str] = field(default_factory=list)

    @property
    def changes(self) -> list[Change]:
        return [change for update in self.files for change in update.changes]

    @property
    def changed(self) -> bool:
        return bool(self.files)


def resolve_update_path(root: Path, path: str | None) -> Path:
    """The directory (or file) ``path`` names inside ``root``. Raises :class:`UpdatePathError`."""
    raw = (path or "").strip().replace("\\", "/")
    normal = posixpath.normpath(raw.lstrip("/")) if raw.strip("/") else "."
    if normal == ".." or normal.startswith("../"):
        raise UpdatePathError(f"spec.update.path {path!r} points outside the repository")
    real_root = root.resolve()
    target = (real_root / normal).resolve()
    if target != real_root and real_root not in target.parents:
        raise UpdatePathError(f"spec.update.path {path!r} leads outside the repository (through a link)")
    if not target.exists():
        raise UpdatePathError(f"spec.update.path {path!r} does not exist in the repository", missing=True)
    return target


def _candidate(name: str) -> bool:
    return name.endswith(YAML_SUFFIXES) or name == KUSTOMIZATION_FILE


def candidate_files(target: Path) -> list[Path]:
    """The candidate files under ``target`` (or ``target`` itself), sorted, never entering ``.git``
    or following directory links."""
    if target.is_file():
        return [target]
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(target, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        found.extend(Path(dirpath) / name for name in sorted(filenames) if _candidate(name))
    return found


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one rename, keeping its permission bits."""
    mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def update_tree(
    root: Path,
    path: str | None,
    policies: Mapping[str, PolicyImage | Mapping[str, Any]],
    *,
    namespace: str | None = None,
    write: bool = True,
) -> TreeResult:
    """Run the setters over the files under ``root``/``path`` and write the changed ones.

    ``policies`` and ``namespace`` are as in :func:`~.setters.update_text`. File names in the
    result are relative to ``root`` with ``/`` separators. Raises :class:`UpdatePathError`.
    """
    root = Path(root)
    real_root = root.resolve()
    target = resolve_update_path(root, path)
    known = {key: PolicyImage.coerce(value) for key, value in policies.items()}
    result = TreeResult()
    for file in candidate_files(target):
        rel = file.relative_to(real_root).as_posix()
        if file.is_symlink():
            result.skipped.append((rel, "symbolic link (not followed)"))
            continue
        data = file.read_bytes()
        if MARKER_TOKEN.encode() not in data:
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            result.skipped.append((rel, "not UTF-8 text"))
            continue
        update = update_text(text, known, path=rel, namespace=namespace)
        result.ignored.extend(f"{rel}: {note}" for note in update.ignored)
        if update.skipped:
            result.skipped.append((rel, update.skipped))
        elif update.changed:
            if write:
                write_atomically(file, update.text.encode("utf-8"))
            result.files.append(update)
    return result
