"""Load and validate objects from YAML files: all of them or none.

Every problem in every document is collected before anything is returned, and each message names
``file:line``, the object and the field, so one run of ``apply`` shows everything to fix.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops_tasks.objects import specs
from gitops_tasks.objects.kinds import KIND_INFO, KINDS, KindInfo
from gitops_tasks.objects.model import Object
from gitops_tasks.objects.names import name_problem, namespace_problem
from gitops_tasks.objects.ownership import group_of, is_engine_group
from gitops_tasks.objects.schema import FieldError, MapOfStr, Str, validate
from gitops_tasks.objects.yamlload import Document, YAMLSyntaxError, load_documents

#: File name endings a directory walk picks up.
YAML_SUFFIXES = (".yaml", ".yml")

_TOP_FIELDS = ("apiVersion", "kind", "metadata", "spec")
#: Top-level fields besides apiVersion/kind/metadata/spec that are accepted and dropped.
_IGNORED_TOP = frozenset({"status"})


class LoadError(ValueError):
    """At least one document was invalid; ``errors`` holds one ``file:line: ...`` line each."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        noun = "error" if len(errors) == 1 else "errors"
        super().__init__(f"{len(errors)} {noun}, nothing loaded:\n" + "\n".join(errors))


_NAME = Str(min_len=1, validate=name_problem)
_NAMESPACE = Str(min_len=1, validate=namespace_problem)
_STRING_MAP = MapOfStr()


class _Loader:
    """Accumulates objects and errors across files; identity clashes are checked across all."""

    def __init__(self, default_namespace: str, *, skip_plain: bool = False) -> None:
        self.default_namespace = default_namespace
        self.objects: list[Object] = []
        self.errors: list[str] = []
        self.first_seen: dict[str, str] = {}
        #: With ``skip_plain``: documents of other API groups (cluster objects) are not errors but
        #: listed here (``Kind/name (where)``).
        self.skip_plain = skip_plain
        self.skipped: list[str] = []

    def add_text(self, text: str, filename: str) -> None:
        try:
            docs = load_documents(text, filename=filename)
        except YAMLSyntaxError as exc:
            self.errors.append(str(exc))
            return
        for doc in docs:
            self.add_document(doc)

    def add_document(self, doc: Document) -> None:
        self._add(doc, lambda line: f"{doc.filename}:{line}")

    def add_manifest(self, data: dict[str, Any], where: str) -> None:
        """Validate one built document (``where``: its origin, e.g. ``apps.yaml: document 2``)."""
        self._add(Document(filename=where, line=0, data=data), lambda _line: where)

    def _add(self, doc: Document, where_at: Callable[[int], str]) -> None:
        where = where_at(doc.line)
        data = doc.data
        if not isinstance(data, dict):
            got = "a list" if isinstance(data, list) else f"{type(data).__name__} {data!r}"
            self.errors.append(f"{where}: document is not a mapping (got {got}); expected an object")
            return
        problems: list[FieldError] = []
        kind, api_version = data.get("kind"), data.get("apiVersion")
        if self.skip_plain and _is_plain(api_version, kind):
            meta = data.get("metadata")
            name = meta.get("name") if isinstance(meta, dict) else None
            self.skipped.append(f"{kind}/{name or '<unnamed>'} ({where})")
            return
        spec: Any = data.get("spec")
        name, namespace, metadata = self._metadata(data.get("metadata"), problems)
        label = _label(kind, namespace, data.get("metadata"))
        for key in data:
            if key not in _TOP_FIELDS and key not in _IGNORED_TOP:
                problems.append(FieldError((key,), f"unknown field; expected {', '.join(_TOP_FIELDS)}"))
        info = _kind_info(kind, problems, api_version)
        if info is not None:
            _check_spec(info, api_version, spec, problems)
        messages = [(line, f"{label}: {text}") for line, text in doc.problems]
        messages += [(doc.line_of(p.path), f"{label}: {p}") for p in problems]
        if messages:
            messages.sort(key=lambda item: item[0])
            self.errors.extend(f"{where_at(line)}: {text}" for line, text in messages)
            return
        obj = Object(str(api_version), str(kind), str(name), namespace, spec, metadata, source=where)
        first = self.first_seen.setdefault(obj.ref.key, where)
        if first != where:
            self.errors.append(f"{where}: {label}: duplicate object; first declared at {first}")
            return
        self.objects.append(obj)

    def _metadata(self, meta: Any, problems: list[FieldError]) -> tuple[str | None, str, dict[str, Any]]:
        namespace = self.default_namespace
        if meta is None:
            problems.append(FieldError(("metadata",), "required field is missing (metadata.name)"))
            return None, namespace, {}
        if not isinstance(meta, dict):
            problems.append(FieldError(("metadata",), "expected a mapping with name and namespace"))
            return None, namespace, {}
        name = meta.get("name")
        if name is None:
            problems.append(FieldError(("metadata", "name"), "required field is missing"))
        else:
            start = len(problems)
            _NAME.check(name, ("metadata", "name"), problems)
            name = name if len(problems) == start else None
        if meta.get("namespace") is not None:
            start = len(problems)
            _NAMESPACE.check(meta["namespace"], ("metadata", "namespace"), problems)
            if len(problems) == start:
                namespace = meta["namespace"]
        kept: dict[str, Any] = {}
        for key in ("labels", "annotations"):
            if meta.get(key) is not None:
                _STRING_MAP.check(meta[key], ("metadata", key), problems)
                kept[key] = meta[key]
        return name, namespace, kept

    def result(self) -> list[Object]:
        if self.errors:
            raise LoadError(self.errors)
        return self.objects


def _is_plain(api_version: Any, kind: Any) -> bool:
    """A cluster object: an apiVersion and kind of a group that is not the engine's."""
    if not isinstance(api_version, str) or not api_version or not isinstance(kind, str) or not kind:
        return False
    return not is_engine_group(group_of(api_version))


def _label(kind: Any, namespace: str, meta: Any) -> str:
    """``Kind namespace/name`` as written, even when invalid, so the user can find the object."""
    raw = meta.get("name") if isinstance(meta, dict) else None
    name = raw if isinstance(raw, str) and raw else "<unnamed>"
    return f"{kind if isinstance(kind, str) and kind else 'object'} {namespace}/{name}"


def _kind_info(kind: Any, problems: list[FieldError], api_version: Any = None) -> KindInfo | None:
    info = KIND_INFO.get(kind) if isinstance(kind, str) else None
    if kind is None:
        problems.append(FieldError(("kind",), f"required field is missing; one of: {', '.join(KINDS)}"))
    elif info is None:
        group = f" of {group_of(api_version)}" if isinstance(api_version, str) and "/" in api_version else ""
        problems.append(
            FieldError(
                ("kind",),
                f"kind {kind}{group} is not one gitops-tasks reconciles; supported kinds: {', '.join(KINDS)}",
            )
        )
    return info


def _check_spec(info: KindInfo, api_version: Any, spec: Any, problems: list[FieldError]) -> None:
    if api_version is None:
        problems.append(FieldError(("apiVersion",), "required field is missing"))
    elif api_version not in info.api_versions:
        accepted = ", ".join(info.api_versions)
        message = f"unknown apiVersion {api_version!r} for {info.kind}; accepted: {accepted}"
        problems.append(FieldError(("apiVersion",), message))
    if spec is None:
        problems.append(FieldError(("spec",), "required field is missing"))
        return
    problems.extend(validate(info.spec, spec, ("spec",)))
    if api_version in info.api_versions and api_version not in info.legacy_versions:
        problems.extend(_legacy(info.kind, str(api_version), spec))


def _legacy(kind: str, api_version: str, spec: Any) -> list[FieldError]:
    legacy = specs.LEGACY_FIELDS.get(kind, frozenset())
    if not isinstance(spec, dict) or not legacy:
        return []
    return [
        FieldError(("spec", key), f"not supported in {api_version} (Flux removed it)")
        for key in spec
        if key in legacy
    ]


def load_manifests(
    manifests: Iterable[tuple[dict[str, Any], str]], *, default_namespace: str = "default"
) -> list[Object]:
    """Validate built documents ``(data, origin)`` of the engine's kinds exactly as ``apply``
    does. Raises :class:`LoadError` listing every problem, each prefixed with its origin."""
    loader = _Loader(default_namespace)
    for data, where in manifests:
        loader.add_manifest(data, where)
    return loader.result()


def load_text(text: str, *, filename: str = "<text>", default_namespace: str = "default") -> list[Object]:
    """Validate every document in ``text``. Raises :class:`LoadError` listing all problems."""
    loader = _Loader(default_namespace)
    loader.add_text(text, filename)
    return loader.result()


def load_paths(paths: Sequence[str | Path], *, default_namespace: str = "default") -> list[Object]:
    """Load files and directories (recursively: ``*.yaml``/``*.yml``, sorted, hidden dirs skipped).

    A file named explicitly is read whatever its suffix; a file reached twice is read once.
    Raises :class:`LoadError` if any path is missing or unreadable or any document is invalid,
    so the caller stores nothing.
    """
    loader = _Loader(default_namespace)
    for path in _files(paths, loader.errors):
        _read(loader, path)
    return loader.result()


#: Builds a kustomize overlay directory: ``(document, origin)`` for each object it renders.
Kustomize = Callable[[Path], "list[tuple[dict[str, Any], str]]"]


@dataclass
class Tree:
    """What :func:`load_tree` found: the engine's objects, and the cluster objects it skipped."""

    objects: list[Object]
    skipped: list[str]


def load_tree(
    paths: Sequence[str | Path],
    *,
    kustomize: Kustomize,
    is_overlay: Callable[[Path], bool],
    default_namespace: str = "default",
) -> Tree:
    """Load files and fleet directories the way a Kustomization's sync builds them: a directory
    that ``is_overlay`` (holds a kustomization file) is built with ``kustomize``; any other is read
    recursively (``*.yaml``/``*.yml``, sorted, hidden entries skipped). Documents of the engine's
    groups are validated as :func:`load_paths` does; cluster objects are skipped and listed.
    Raises :class:`LoadError` listing every problem (nothing is returned then)."""
    loader = _Loader(default_namespace, skip_plain=True)

    def walk(directory: Path) -> None:
        if is_overlay(directory):
            try:
                built = kustomize(directory)
            except ValueError as exc:
                loader.errors.append(str(exc))
                return
            for data, where in built:
                loader.add_manifest(data, where)
            return
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=True):
                walk(Path(entry.path))
            elif entry.name.endswith(YAML_SUFFIXES):
                _read(loader, Path(entry.path))

    for given in paths:
        path = Path(given)
        if path.is_dir():
            walk(path)
        elif path.is_file():
            _read(loader, path)
        else:
            loader.errors.append(f"{given}: no such file or directory")
    return Tree(loader.result(), loader.skipped)


def _read(loader: _Loader, path: Path) -> None:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        loader.errors.append(f"{path}: not UTF-8 text")
        return
    except OSError as exc:
        loader.errors.append(f"{path}: cannot read: {exc.strerror or exc}")
        return
    loader.add_text(text, str(path))


def _files(paths: Sequence[str | Path], errors: list[str]) -> list[Path]:
    out: list[Path] = []
    seen: set[Path] = set()
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = _walk(path)
        elif path.is_file():
            found = [path]
        else:
            errors.append(f"{given}: no such file or directory")
            continue
        for file in found:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                out.append(file)
    return out


def _walk(root: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found.extend(Path(dirpath, f) for f in filenames if f.endswith(YAML_SUFFIXES))
    return sorted(found, key=lambda p: p.parts)
