"""Flux v1 automation inside an ImageUpdateAutomation run: update automated workloads' images.

Which files: the YAML files under ``spec.update.path`` (walked as :mod:`.tree` walks them, never
through a symbolic link) that contain an ``automated`` annotation key (``fluxcd.io/automated`` or
``flux.weave.works/automated``). The screening keeps every other manifest unparsed; a screened
file that does not parse is skipped with a reason and never rewritten.

Which containers: those (init containers too) of workloads annotated ``automated: "true"`` and not
``locked: "true"``, except a container whose image line carries a ``$imagepolicy`` marker: the
setters own that value. The tags of the container's repository come from ``tags_for`` (``None``:
not scanned yet, so the container is left alone this run); its ``tag.<container>`` filter picks
one (:meth:`.v1.TagPattern.choose`: semver range, or the greatest glob/regex match in natural sort
order, never ``latest`` unless named). An invalid filter skips that container with a reason.

Each update is a :class:`~.setters.Change` with setter :data:`V1_SETTER` and the filter as its
policy, so commit-message templates list it with the setter changes.

I/O: reads and (unless ``write=False``) rewrites files under the checkout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitops_tasks.automation.setters import MARKER_TOKEN, Change
from gitops_tasks.automation.tree import candidate_files, resolve_update_path, write_atomically
from gitops_tasks.automation.v1 import AUTOMATED, LEGACY_PREFIX, PREFIX, split_image, workloads_in_text
from gitops_tasks.automation.v1edit import EditError, set_images
from gitops_tasks.automation.yamltext import YAMLTextError, line_rest

#: The tags scanned for an image repository (as written in the workload, without tag), or None
#: when it has not been scanned yet.
TagsFor = Callable[[str], "list[str] | None"]
#: The setter name v1 changes carry in commit-message template data.
V1_SETTER = PREFIX + AUTOMATED
_SCREEN = tuple((prefix + AUTOMATED).encode() for prefix in (PREFIX, LEGACY_PREFIX))


@dataclass
class V1Result:
    """What one pass over the workloads under a path found and did."""

    #: Files rewritten (relative to the checkout root).
    files: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    #: ``(relative path, reason)``: files not read, containers passed over for a bad filter.
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: ``KIND/NAMESPACE/NAME`` of automated workloads that are not locked, and of locked ones.
    workloads: list[str] = field(default_factory=list)
    locked: list[str] = field(default_factory=list)
    #: Repositories (as written) whose tags the automated containers need, and those without tags.
    images: list[str] = field(default_factory=list)
    unscanned: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.files)

    def facts(self) -> dict[str, Any]:
        """The ``v1`` status fact of an ImageUpdateAutomation."""
        return {
            "workloads": len(self.workloads),
            "lockedWorkloads": len(self.locked),
            "images": list(self.images),
            "unscannedImages": list(self.unscanned),
        }


def _line(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def update_workload_text(text: str, path: str, tags_for: TagsFor, result: V1Result) -> str:
    """``text`` with the automated containers' images updated; findings are added to ``result``
    (``images`` and ``unscanned`` unsorted, possibly repeated). Raises
    :class:`~.yamltext.YAMLTextError` when the text does not parse and :class:`~.v1edit.EditError`
    when the edit would not read back."""
    edits = []
    for workload in workloads_in_text(text, path):
        if not workload.automated:
            continue
        if workload.locked:
            result.locked.append(workload.id)
            continue
        result.workloads.append(workload.id)
        for container in workload.containers:
            if MARKER_TOKEN in line_rest(text, container.end):
                continue
            try:
                pattern = workload.tag_pattern(container.name)
            except ValueError as exc:
                result.skipped.append((path, f"{workload.id} container {container.name}: {exc}"))
                continue
            repository, current, _digest = split_image(container.image)
            result.images.append(repository)
            tags = tags_for(repository)
            if tags is None:
                result.unscanned.append(repository)
                continue
            chosen = pattern.choose(tags)
            if chosen is None or chosen == current:
                continue
            new_image = f"{repository}:{chosen}"
            edits.append((container, new_image))
            result.changes.append(
                Change(
                    file=path,
                    line=_line(text, container.start),
                    old_value=container.image,
                    new_value=new_image,
                    setter=V1_SETTER,
                    policy=str(pattern),
                    kind=workload.kind,
                    name=workload.name,
                    namespace=workload.namespace,
                    api_version=workload.api_version,
                )
            )
    return set_images(text, edits)


def update_workloads(root: Path, path: str | None, tags_for: TagsFor, *, write: bool = True) -> V1Result:
    """Update the automated workloads under ``root``/``path`` (see the module docstring).

    ``tags_for`` is called at most once per repository. Raises :class:`~.tree.UpdatePathError`.
    """
    root = Path(root)
    real_root = root.resolve()
    target = resolve_update_path(root, path)
    known: dict[str, list[str] | None] = {}

    def cached(repository: str) -> list[str] | None:
        if repository not in known:
            known[repository] = tags_for(repository)
        return known[repository]

    result = V1Result()
    for file in candidate_files(target):
        if file.is_symlink():
            continue  # the setters' pass reports it
        data = file.read_bytes()
        if not any(token in data for token in _SCREEN):
            continue
        rel = file.relative_to(real_root).as_posix()
        before = len(result.changes)
        try:
            text = data.decode("utf-8")
            new_text = update_workload_text(text, rel, cached, result)
        except UnicodeDecodeError:
            result.skipped.append((rel, "not UTF-8 text"))
            continue
        except YAMLTextError as exc:
            result.skipped.append((rel, f"not valid YAML ({exc})"))
            continue
        except EditError as exc:
            del result.changes[before:]
            result.skipped.append((rel, f"{exc}; left unchanged"))
            continue
        if new_text != text:
            if write:
                write_atomically(file, new_text.encode("utf-8"))
            result.files.append(rel)
    result.images = sorted(set(result.images))
    result.unscanned = sorted(set(result.unscanned))
    return result
