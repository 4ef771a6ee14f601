"""Build the manifests of a Kustomization from a checked-out repository (filesystem only).

``spec.path`` holding a ``kustomization.yaml`` (``.yml``, ``Kustomization``) is built with
``kubectl kustomize``; any other directory is read as plain manifests: every ``*.yaml``/``*.yml``
below it, recursively, in name order, skipping hidden files and directories and directories with
a ``Chart.yaml`` (Flux v1), while a subdirectory with its own kustomization file is built as one
overlay (as Flux v2's generated kustomization does).

Nothing outside the repository is ever read: a path with ``..`` leading out, a symlink resolving
outside, or an overlay whose local ``resources``/``bases``/``components`` leave the repository is
refused with :class:`~gitops_tasks.sync.errors.PathError`. A leading ``/`` means the repository
root, as in Flux. Raises :class:`~gitops_tasks.sync.errors.BuildError` naming the file (and
document and line) of anything invalid, and the tool when ``kubectl`` is missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from gitops_tasks import children
from gitops_tasks.boundedyaml import describe, safe_load
from gitops_tasks.sync.errors import BuildError, PathError
from gitops_tasks.sync.manifests import Manifest, ManifestError, parse

if TYPE_CHECKING:
    from gitops_tasks.sync.decrypt import Decryptor

#: File names that make a directory a kustomize overlay, in kustomize's order of preference.
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
#: Longest a ``kubectl kustomize`` run may take (seconds) when the caller gives no budget.
DEFAULT_BUILD_TIMEOUT_S = 60.0
#: Most YAML one build reads (files, plus what ``kubectl kustomize`` prints). Parsed, YAML takes
#: about ten times its size in memory, so this keeps a worker's build near 350 MB at the worst;
#: a repository needing more splits ``spec.path`` over several Kustomizations.
DEFAULT_MAX_BUILD_BYTES = 32 * 2**20
#: Most error text read from one ``kubectl kustomize`` run (quoted in the status message).
MAX_KUSTOMIZE_STDERR_BYTES = 2**20
#: Environment variable naming the kubectl binary (a path or a name on ``PATH``).
KUBECTL_ENV = "KUBECTL"
_REMOTE_PREFIXES = ("git@", "github.com/", "gitlab.com/", "bitbucket.org/")


def _rel(path: Path, root: Path) -> str:
    try:
        rel = path.relative_to(root)
    except ValueError:
        return str(path)
    return "." if str(rel) == "." else rel.as_posix()


def _size(count: int) -> str:
    return f"{count // 2**20} MiB" if count >= 2**20 and count % 2**20 == 0 else f"{count} bytes"


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def resolve_path(root: Path, path: str | None) -> Path:
    """The directory ``spec.path`` names inside the checkout ``root`` (resolved, symlinks followed).

    Raises :class:`PathError` when it leads outside the repository, does not exist or is a file.
    """
    root = root.resolve()
    text = (path or "").strip() or "."
    candidate = root / text.lstrip("/")
    shown = f"spec.path {text!r}"
    if not _inside(Path(os.path.normpath(candidate)), root):
        raise PathError(f"{shown} leads outside the repository")
    resolved = candidate.resolve()
    if not _inside(resolved, root):
        raise PathError(f"{shown} resolves (through a symlink) outside the repository")
    if not resolved.exists():
        raise PathError(f"kustomization path not found: {shown} does not exist in the repository")
    if not resolved.is_dir():
        raise PathError(f"{shown} is a file; expected a directory")
    return resolved


def kustomization_file(directory: Path) -> Path | None:
    for name in KUSTOMIZATION_FILES:
        if (directory / name).is_file():
            return directory / name
    return None


def find_kubectl(env: Mapping[str, str] | None = None) -> str:
    """The kubectl binary: ``$KUBECTL`` (a path or a name) or ``kubectl`` on ``PATH``.

    Raises :class:`BuildError` naming the tool and how to provide it.
    """
    env = os.environ if env is None else env
    wanted = env.get(KUBECTL_ENV) or "kubectl"
    found = shutil.which(wanted, path=env.get("PATH"))
    if found is None:
        raise BuildError(
            f"kustomize overlays are built with kubectl (kubectl kustomize), and {wanted!r} was not "
            f"found: install kubectl or set {KUBECTL_ENV} to its path"
        )
    return found


def build(
    root: Path,
    path: str | None,
    *,
    kubectl: str | None = None,
    timeout_s: float = DEFAULT_BUILD_TIMEOUT_S,
) -> list[Manifest]:
    """The objects ``spec.path`` of the checkout at ``root`` declares, in a stable order."""
    return Builder(root, kubectl=kubectl, timeout_s=timeout_s).build(path)


class Builder:
    """Builds directories of one checkout; ``kubectl`` is looked up only when an overlay needs it."""

    def __init__(
        self,
        root: Path,
        *,
        kubectl: str | None = None,
        timeout_s: float = DEFAULT_BUILD_TIMEOUT_S,
        max_bytes: int = DEFAULT_MAX_BUILD_BYTES,
        decryptor: Decryptor | None = None,
    ) -> None:
        self.root = root.resolve()
        #: SOPS decryption of the files this builder reads (see :mod:`gitops_tasks.sync.decrypt`).
        self.decryptor = decryptor
        self.kubectl = kubectl
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        #: YAML read so far by this builder (all its builds).
        self.read_bytes = 0

    def _take(self, size: int, what: str) -> None:
        """Count ``size`` bytes of YAML about to be parsed; :class:`BuildError` past ``max_bytes``."""
        self.read_bytes += size
        if self.read_bytes > self.max_bytes:
            raise self._too_large(what)

    def _too_large(self, what: str) -> BuildError:
        return BuildError(
            f"{what}: the build reads more than {_size(self.max_bytes)} of YAML; "
            "split spec.path over several Kustomizations"
        )

    def build(self, path: str | None) -> list[Manifest]:
        """The objects of ``spec.path`` (see the module docstring for the rules)."""
        directory = resolve_path(self.root, path)
        if kustomization_file(directory) is not None:
            return self.kustomize(directory)
        return self.plain(directory, set())

    def plain(self, directory: Path, visited: set[Path]) -> list[Manifest]:
        real = directory.resolve()
        if not _inside(real, self.root):
            raise PathError(f"{_rel(directory, self.root)} is a symlink leading outside the repository")
        if real in visited or (directory / "Chart.yaml").exists():
            return []
        visited.add(real)
        out: list[Manifest] = []
        if self.decryptor is not None:
            self.decryptor.prefetch(
                [Path(e.path) for e in os.scandir(directory) if e.name.endswith((".yaml", ".yml"))], self.root
            )
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            item = Path(entry.path)
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=True):
                if kustomization_file(item) is not None:
                    out.extend(self.kustomize(item))
                else:
                    out.extend(self.plain(item, visited))
            elif entry.name.endswith((".yaml", ".yml")):
                out.extend(self._file(item))
        return out

    def _file(self, file: Path) -> list[Manifest]:
        rel = _rel(file, self.root)
        if not _inside(file.resolve(), self.root):
            raise PathError(f"{rel} is a symlink leading outside the repository")
        try:
            self._take(file.stat().st_size, rel)
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise BuildError(f"{rel}: cannot be read: {exc}") from None
        if self.decryptor is not None:
            text = self.decryptor.file_text(text, rel)
        try:
            return parse(text, rel)
        except ManifestError as exc:
            raise BuildError(str(exc)) from None

    def kustomize(self, directory: Path, *, check_refs: bool = True) -> list[Manifest]:
        """``kubectl kustomize directory``; ``check_refs=False`` for our own temporary overlays."""
        rel = _rel(directory, self.root)
        if check_refs:
            self._check_refs(directory, set())
        kubectl = self.kubectl or find_kubectl()
        budget = max(self.max_bytes - self.read_bytes, 0)
        sources = self.decryptor.sources(directory, self.root) if self.decryptor else contextlib.nullcontext()
        try:
            argv = [kubectl, "kustomize", str(directory)]
            with sources:
                proc = children.run(
                    argv,
                    cwd=directory,
                    timeout_s=self.timeout_s,
                    max_stdout_bytes=budget,
                    max_stderr_bytes=MAX_KUSTOMIZE_STDERR_BYTES,
                )
        except subprocess.TimeoutExpired:
            message = f"kustomize build of {rel} timed out after {self.timeout_s:g}s"
            raise BuildError(message, result="transient") from None
        except children.OutputTooLarge as exc:
            if exc.stream == "stderr":
                raise BuildError(
                    f"kustomize build of {rel} failed: it printed more than {_size(exc.limit)} of errors"
                ) from None
            self.read_bytes += exc.read_bytes
            raise self._too_large(f"kustomize build of {rel} (stopped at the limit)") from None
        except OSError as exc:
            raise BuildError(f"kustomize build of {rel}: cannot run {kubectl}: {exc}") from None
        stdout = proc.stdout.decode(errors="replace")
        if proc.returncode != 0:
            detail = (proc.stderr.decode(errors="replace") or stdout).strip().replace(f"{self.root}/", "")
            raise BuildError(f"kustomize build of {rel} failed: {detail}")
        self._take(len(proc.stdout), f"kustomize build of {rel}")
        try:
            return parse(stdout, f"kustomize build of {rel}", with_lines=False)
        except ManifestError as exc:
            raise BuildError(str(exc)) from None

    def _check_refs(self, directory: Path, seen: set[Path]) -> None:
        """Local ``resources``/``bases``/``components`` must stay inside the repository."""
        real = directory.resolve()
        if real in seen:
            return
        seen.add(real)
        file = kustomization_file(directory)
        if file is None:
            return
        try:
            data: Any = safe_load(file.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise BuildError(f"{_rel(file, self.root)}: invalid kustomization: {describe(exc)}") from None
        if not isinstance(data, dict):
            raise BuildError(f"{_rel(file, self.root)}: expected a mapping")
        for field in ("resources", "bases", "components"):
            for entry in data.get(field) or []:
                if not isinstance(entry, str) or "://" in entry or entry.startswith(_REMOTE_PREFIXES):
                    continue
                target = (directory / entry).resolve()
                if not _inside(target, self.root):
                    raise PathError(
                        f"{_rel(file, self.root)}: {field} entry {entry!r} leads outside the repository"
                    )
                if target.is_dir():
                    self._check_refs(target, seen)
