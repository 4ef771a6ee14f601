"""Commit messages: ``spec.git.commit.messageTemplate`` rendered over Flux's template data.

The data has Flux's shape (image-automation-controller), so templates written for Flux work:

- ``.AutomationObject``: prints ``namespace/name``; fields ``.Name``, ``.Namespace``.
- ``.Changed`` (v1): ``.FileChanges`` (file → object → list of changes), ``.Changes`` (every
  distinct change), ``.Objects`` (object → changes). A change has ``.OldValue``, ``.NewValue``
  and ``.Setter``; an object ``.Kind``, ``.Name``, ``.Namespace``, ``.APIVersion``.
- ``.Changed.ImageResult`` (v1beta2, removed in Flux v1 but kept here) and ``.Updated`` (v1beta1):
  ``.Files`` (file → ``.Objects`` → images), ``.Images``, ``.Objects``; an image prints as
  ``name:tag`` and has ``.Repository``, ``.Registry``, ``.Name``, ``.Identifier``, ``.Policy``.
- ``.Values``: ``spec.git.commit.messageTemplateValues``.

Templates run in :mod:`.gotemplate` (a subset of Go's ``text/template`` plus Sprig's common
functions). :func:`render_message` never fails: when a template cannot be parsed or run it
returns :data:`DEFAULT_MESSAGE` together with the error, so an update is never held back by
its message. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gitops_tasks.automation.gotemplate import GoObject, TemplateError, render
from gitops_tasks.automation.setters import Change

#: Flux's default commit message.
DEFAULT_MESSAGE = "Update from image update automation"
#: Registry assumed for image names without one (as go-containerregistry does).
DEFAULT_REGISTRY = "index.docker.io"


class NamespacedName(GoObject):
    GO_FIELDS = ("Name", "Namespace")

    def __init__(self, namespace: str, name: str) -> None:
        self.Name, self.Namespace = name, namespace

    def go_string(self) -> str:
        return f"{self.Namespace}/{self.Name}"


class ObjectIdentifier(GoObject):
    GO_FIELDS = ("APIVersion", "Kind", "Name", "Namespace")

    def __init__(self, api_version: str, kind: str, name: str, namespace: str) -> None:
        self.APIVersion, self.Kind, self.Name, self.Namespace = api_version, kind, name, namespace

    def go_string(self) -> str:
        return f"{{{{{{{self.APIVersion} {self.Kind}}} {{{self.Name} {self.Namespace}}}}}}}"

    def key(self) -> tuple[str, str, str, str]:
        return (self.APIVersion, self.Kind, self.Name, self.Namespace)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObjectIdentifier) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())


class TemplateChange(GoObject):
    GO_FIELDS = ("OldValue", "NewValue", "Setter")

    def __init__(self, old: str, new: str, setter: str) -> None:
        self.OldValue, self.NewValue, self.Setter = old, new, setter

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TemplateChange) and self.go_string() == other.go_string()

    def __hash__(self) -> int:
        return hash(self.go_string())


class ImageRef(GoObject):
    """An updated image as Flux v1beta2 exposed it (``String()`` is ``name:tag``).

    Method names are Go's, since templates call them by those names.
    """

    GO_METHODS = ("String", "Name", "Identifier", "Repository", "Registry", "Policy")

    def __init__(self, image: str, tag: str, policy: NamespacedName) -> None:
        self._image, self._tag, self._policy = image, tag, policy

    def String(self) -> str:
        return f"{self._image}:{self._tag}"

    def Identifier(self) -> str:
        return self._tag

    def Registry(self) -> str:
        first, sep, _ = self._image.partition("/")
        if sep and ("." in first or ":" in first or first == "localhost"):
            return "index.docker.io" if first == "docker.io" else first
        return DEFAULT_REGISTRY

    def Repository(self) -> str:
        first, sep, rest = self._image.partition("/")
        repo = rest if sep and ("." in first or ":" in first or first == "localhost") else self._image
        return f"library/{repo}" if self.Registry() == DEFAULT_REGISTRY and "/" not in repo else repo

    def Name(self) -> str:
        return f"{self.Registry()}/{self.Repository()}:{self._tag}"

    def Policy(self) -> NamespacedName:
        return self._policy

    def go_string(self) -> str:
        return self.String()


class ImageResult(GoObject):
    GO_FIELDS = ("Files",)
    GO_METHODS = ("Images", "Objects")

    def __init__(self, files: dict[str, FileResult]) -> None:
        self.Files = files

    def Images(self) -> list[ImageRef]:
        seen: list[ImageRef] = []
        for file in self.Files.values():
            for refs in file.Objects.values():
                seen.extend(r for r in refs if r.String() not in {s.String() for s in seen})
        return seen

    def Objects(self) -> dict[ObjectIdentifier, list[ImageRef]]:
        out: dict[ObjectIdentifier, list[ImageRef]] = {}
        for file in self.Files.values():
            for obj, refs in file.Objects.items():
                out.setdefault(obj, []).extend(refs)
        return out


class FileResult(GoObject):
    GO_FIELDS = ("Objects",)

    def __init__(self) -> None:
        self.Objects: dict[ObjectIdentifier, list[ImageRef]] = {}


class Result(GoObject):
    GO_FIELDS = ("FileChanges", "ImageResult")
    GO_METHODS = ("Changes", "Objects")

    def __init__(self, file_changes: dict[str, dict[ObjectIdentifier, list[TemplateChange]]]) -> None:
        self.FileChanges = file_changes
        self.ImageResult = ImageResult({})

    def Changes(self) -> list[TemplateChange]:
        out: list[TemplateChange] = []
        for objects in self.FileChanges.values():
            for changes in objects.values():
                out.extend(c for c in changes if c not in out)
        return out

    def Objects(self) -> dict[ObjectIdentifier, list[TemplateChange]]:
        out: dict[ObjectIdentifier, list[TemplateChange]] = {}
        for objects in self.FileChanges.values():
            out.update(objects)
        return out


@dataclass(frozen=True)
class TemplateData(GoObject):
    """The value templates see as ``.``."""

    AutomationObject: NamespacedName
    Changed: Result
    Values: dict[str, str]
    GO_FIELDS = ("AutomationObject", "Changed", "Values", "Updated")

    @property
    def Updated(self) -> ImageResult:
        return self.Changed.ImageResult


def template_data(
    namespace: str,
    name: str,
    changes: Iterable[Change],
    *,
    images: Mapping[str, tuple[str, str]] | None = None,
    values: Mapping[str, str] | None = None,
) -> TemplateData:
    """Build Flux's template data from setter changes.

    ``images`` maps a policy (``ns:name``) to its ``(image, tag)`` for ``ImageResult``; without
    it the images are omitted.
    """
    files: dict[str, dict[ObjectIdentifier, list[TemplateChange]]] = {}
    image_files: dict[str, FileResult] = {}
    for change in changes:
        obj = ObjectIdentifier(
            change.api_version or "", change.kind or "", change.name or "", change.namespace or ""
        )
        files.setdefault(change.file, {}).setdefault(obj, []).append(
            TemplateChange(change.old_value, change.new_value, change.setter)
        )
        if images and change.policy in images:
            image, tag = images[change.policy]
            ns, _, policy_name = change.policy.partition(":")
            ref = ImageRef(image, tag, NamespacedName(ns, policy_name))
            refs = image_files.setdefault(change.file, FileResult()).Objects.setdefault(obj, [])
            if ref.String() not in {r.String() for r in refs}:
                refs.append(ref)
    result = Result(files)
    result.ImageResult = ImageResult(image_files)
    return TemplateData(NamespacedName(namespace, name), result, dict(values or {}))


def render_message(template: str | None, data: TemplateData) -> tuple[str, str | None]:
    """``(message, error)``: the rendered template, or :data:`DEFAULT_MESSAGE` and why not."""
    if not template:
        return DEFAULT_MESSAGE, None
    try:
        return render(template, data), None
    except TemplateError as exc:
        return DEFAULT_MESSAGE, f"spec.git.commit.messageTemplate: {exc}"
