"""Flux v1's annotation-driven automation: read workloads and their policies from YAML (pure).

Flux v1 (``fluxd``) automated workloads annotated in Git::

    metadata:
      annotations:
        fluxcd.io/automated: "true"         # update this workload's images
        fluxcd.io/tag.app: semver:~1.0      # tag filter for container "app"
        fluxcd.io/tag.init: glob:1.*        # ... glob (only '*' is special)
        fluxcd.io/tag.sidecar: regex:^v     # ... regex (Go RE2 syntax; 'regexp:' too), unanchored
        fluxcd.io/locked: "true"            # hold: neither automation nor release touches it

The legacy prefix ``flux.weave.works/`` is read too. A container without a ``tag.<name>``
annotation takes every tag (``glob:*``), as v1 did; ``latest`` is never chosen unless the
pattern names it (v1 did not support mutable tags).

One difference from v1, which ordered glob and regex candidates by image creation time from the
registry: the registry scan here lists tags only, so glob and regex pick the **greatest tag in
natural sort order** (digit runs compared as numbers: ``1.10`` > ``1.9``, ``build-20`` >
``build-9``). Semver picks the highest version in range (tags read leniently: ``v1.2``, ``1.2``).

Workloads: Deployment, StatefulSet, DaemonSet, ReplicaSet, Job (``spec.template``), CronJob
(``spec.jobTemplate.spec.template``) and Pod (``spec``); containers and initContainers.
Text edits are in :mod:`.v1edit`.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import yaml

from gitops_tasks.automation.yamltext import child_at, compose, content_start, document_id
from gitops_tasks.objects.regex import compile_regex
from gitops_tasks.objects.semver_range import SemverRange

PREFIX = "fluxcd.io/"
LEGACY_PREFIX = "flux.weave.works/"
AUTOMATED, LOCKED, LOCKED_MSG, LOCKED_USER, TAG = "automated", "locked", "locked_msg", "locked_user", "tag."
#: Where the pod spec sits in each workload kind.
POD_SPEC_PATH: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "Pod": ("spec",),
}
DEFAULT_NAMESPACE = "default"
_KINDS = {kind.lower(): kind for kind in POD_SPEC_PATH}


@dataclass(frozen=True)
class Container:
    name: str
    image: str
    init: bool
    #: The image scalar's source span and quoting, for byte-exact edits.
    start: int
    end: int
    style: str | None


@dataclass(frozen=True)
class Workload:
    file: str
    doc_index: int
    kind: str
    namespace: str
    name: str
    annotations: Mapping[str, str]
    containers: tuple[Container, ...] = field(default=())
    api_version: str = ""

    @property
    def id(self) -> str:
        """``KIND/NAMESPACE/NAME``."""
        return f"{self.kind}/{self.namespace}/{self.name}"

    def policy(self, name: str) -> str | None:
        """The value of ``fluxcd.io/<name>`` (or the legacy prefix)."""
        return self.annotations.get(PREFIX + name, self.annotations.get(LEGACY_PREFIX + name))

    @property
    def automated(self) -> bool:
        return self.policy(AUTOMATED) == "true"

    @property
    def locked(self) -> bool:
        return self.policy(LOCKED) == "true"

    def tag_pattern(self, container: str) -> TagPattern:
        return TagPattern.parse(self.policy(TAG + container) or "glob:*")


def parse_workload_id(text: str, default_namespace: str = DEFAULT_NAMESPACE) -> tuple[str, str, str]:
    """``(kind, namespace, name)`` from ``KIND/NAMESPACE/NAME``, ``KIND/NAME`` or fluxctl's
    ``NAMESPACE:kind/NAME``. Kind is case-insensitive. Raises ``ValueError``."""
    fluxctl = ":" in text
    namespace, _, rest = text.partition(":") if fluxctl else (default_namespace, "", text)
    parts = rest.split("/")
    if len(parts) == 3 and not fluxctl:
        kind, namespace, name = parts
    elif len(parts) == 2:
        kind, name = parts
    else:
        raise ValueError(f"workload {text!r}: expected KIND/NAMESPACE/NAME (or fluxctl's ns:kind/name)")
    canonical = _KINDS.get(kind.lower())
    if canonical is None or not namespace or not name:
        raise ValueError(f"workload {text!r}: kind must be one of {', '.join(POD_SPEC_PATH)}")
    return canonical, namespace, name


def _walk(node: yaml.Node | None, path: Iterable[str]) -> yaml.Node | None:
    for key in path:
        node = child_at(node, key)
    return node


def _containers(text: str, pod_spec: yaml.Node | None) -> list[Container]:
    out: list[Container] = []
    for key, init in (("initContainers", True), ("containers", False)):
        seq = child_at(pod_spec, key)
        for item in seq.value if isinstance(seq, yaml.SequenceNode) else []:
            name, image = child_at(item, "name"), child_at(item, "image")
            if isinstance(name, yaml.ScalarNode) and isinstance(image, yaml.ScalarNode):
                out.append(
                    Container(
                        name.value,
                        image.value,
                        init,
                        content_start(text, image),
                        image.end_mark.index,
                        image.style,
                    )
                )
    return out


def workloads_in_text(
    text: str, path: str = "", *, default_namespace: str = DEFAULT_NAMESPACE
) -> list[Workload]:
    """The workloads one file declares. Raises :class:`~.yamltext.YAMLTextError`."""
    found: list[Workload] = []
    for index, root in enumerate(compose(text)):
        ident = document_id(root)
        if ident.kind not in POD_SPEC_PATH or not ident.name:
            continue
        notes = child_at(child_at(root, "metadata"), "annotations")
        annotations = {
            k.value: v.value
            for k, v in (notes.value if isinstance(notes, yaml.MappingNode) else [])
            if isinstance(k, yaml.ScalarNode) and isinstance(v, yaml.ScalarNode)
        }
        pod_spec = _walk(root, POD_SPEC_PATH[ident.kind])
        found.append(
            Workload(
                path,
                index,
                ident.kind,
                ident.namespace or default_namespace,
                ident.name,
                annotations,
                tuple(_containers(text, pod_spec)),
                ident.api_version or "",
            )
        )
    return found


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """``(repository, tag, digest)`` of an image reference (``repo:tag@sha256:...``)."""
    rest, _, digest = image.partition("@")
    last_slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > last_slash:
        return rest[:colon], rest[colon + 1 :], digest or None
    return rest, None, digest or None


def canonical_repository(repository: str) -> str:
    """A repository name with Docker Hub's defaults spelled out the same way every time."""
    first, sep, rest = repository.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        host, path = ("docker.io" if first in ("index.docker.io", "registry-1.docker.io") else first), rest
    else:
        host, path = "docker.io", repository
    if host == "docker.io" and "/" not in path:
        path = f"library/{path}"
    return f"{host}/{path}"


def images_to_scan(workloads: Iterable[Workload]) -> list[str]:
    """Repositories the registry must scan for v1 automation: images of automated, unlocked
    workloads, as written in the files (sorted, without tags)."""
    return sorted(
        {split_image(c.image)[0] for w in workloads if w.automated and not w.locked for c in w.containers}
    )


def _natural(tag: str) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", tag) if p)


@dataclass(frozen=True)
class TagPattern:
    """A v1 tag filter: ``glob:``, ``semver:`` or ``regex:``/``regexp:`` (no prefix: glob)."""

    kind: str
    pattern: str

    @classmethod
    def parse(cls, text: str) -> TagPattern:
        """Raises ``ValueError`` for an invalid semver range or regular expression."""
        for prefix, kind in (("semver:", "semver"), ("regexp:", "regex"), ("regex:", "regex")):
            if text.startswith(prefix):
                pattern = text[len(prefix) :]
                try:
                    SemverRange.parse(pattern) if kind == "semver" else compile_regex(pattern)
                except ValueError as exc:
                    raise ValueError(f"tag filter {text!r}: {exc}") from None
                return cls(kind, pattern)
        return cls("glob", text.removeprefix("glob:"))

    def __str__(self) -> str:
        return f"{self.kind}:{self.pattern}"

    def matches(self, tag: str) -> bool:
        if self.kind == "semver":
            return SemverRange.parse(self.pattern).highest([tag]) is not None
        if self.kind == "regex":
            return compile_regex(self.pattern).matches(tag)
        escaped = self.pattern.replace("[", "[[]").replace("?", "[?]")
        return fnmatch.fnmatchcase(tag, escaped)

    def choose(self, tags: Iterable[str]) -> str | None:
        """The newest matching tag (see the module docstring for "newest"), or None."""
        candidates = [t for t in tags if t != "latest" or self.pattern == "latest"]
        if self.kind == "semver":
            return SemverRange.parse(self.pattern).highest(candidates)
        matching = [t for t in candidates if self.matches(t)]
        return max(matching, key=_natural) if matching else None


def automated_updates(
    workloads: Iterable[Workload], tags: Mapping[str, Iterable[str]]
) -> list[tuple[Workload, Container, str]]:
    """``(workload, container, new image)`` for every container of an automated, unlocked
    workload whose pattern selects a tag other than the current one. ``tags`` maps a repository
    (as written, see :func:`images_to_scan`) to its scanned tags; repositories absent are skipped."""
    out: list[tuple[Workload, Container, str]] = []
    for workload in workloads:
        if not workload.automated or workload.locked:
            continue
        for container in workload.containers:
            repository, current, _digest = split_image(container.image)
            if repository not in tags:
                continue
            chosen = workload.tag_pattern(container.name).choose(tags[repository])
            if chosen is not None and chosen != current:
                out.append((workload, container, f"{repository}:{chosen}"))
    return out
