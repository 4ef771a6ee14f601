"""Flux's setters strategy: rewrite the values marked ``# {"$imagepolicy": "NAMESPACE:POLICY"}``.

A marker is a line comment after a scalar value on the same line::

    image: ghcr.io/org/app:1.0.0 # {"$imagepolicy": "apps:app"}
    - image: "ghcr.io/org/app:1.0.0"  # {"$imagepolicy": "apps:app"}
    repository: ghcr.io/org/app # {"$imagepolicy": "apps:app:name"}
    tag: 1.0.0 # {"$imagepolicy": "apps:app:tag"}
    digest: sha256:... # {"$imagepolicy": "apps:app:digest"}

The setter ``NAMESPACE:POLICY`` writes the whole image (``name:tag``, plus ``@digest`` when the
policy reflected one, as Flux's ``latestRef.String()``); the ``:tag``, ``:name`` and ``:digest``
suffixes write that part only. As in Flux, setters exist only for the policies handed in (the
automation's own namespace, selected by ``spec.policySelector``), so a marker naming another
namespace or an unknown policy is left alone; with ``namespace`` given, markers naming any other
namespace are left alone even if such a policy was passed.

Only files containing the token ``"$imagepolicy"`` are parsed (Flux's screening: it keeps
Helm templates and other non-YAML out of the way); one that then fails to parse is skipped with a
reason and never rewritten. Edits replace only the marked scalar's source text, keeping its
quotes (see :func:`~.yamltext.render_scalar`); the result is re-parsed before it is accepted.

Pure: no I/O (the tree walk is in :mod:`.tree`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gitops_tasks.automation.yamltext import (
    Replacement,
    ValueScalar,
    YAMLTextError,
    apply_replacements,
    line_rest,
    render_scalar,
    value_scalars,
)

#: The screening token: files without it are not parsed at all (as Flux's ScreeningLocalReader).
MARKER_TOKEN = '"$imagepolicy"'  # noqa: S105 - a marker, not a password
#: Setter suffixes and the part of the policy's latest image each writes (None: the whole image).
FIELDS: dict[str, str | None] = {"": None, "tag": "tag", "name": "name", "digest": "digest"}
_COMMENT = re.compile(r"[ \t]+#[ \t]*(\{.*\})[ \t]*$")


@dataclass(frozen=True)
class PolicyImage:
    """What one ImagePolicy selected: ``latestRef`` (``name``, ``tag``, optional ``digest``)."""

    image: str
    tag: str
    digest: str | None = None

    def value(self, part: str | None) -> str | None:
        """The value a setter writes: the whole reference or one part (None: not available)."""
        if part is None:
            ref = f"{self.image}:{self.tag}"
            return f"{ref}@{self.digest}" if self.digest else ref
        if part == "name":
            return self.image
        if part == "tag":
            return self.tag
        return self.digest or None

    @classmethod
    def coerce(cls, value: PolicyImage | Mapping[str, Any]) -> PolicyImage:
        """Accept a :class:`PolicyImage` or a mapping with ``image`` (or ``name``), ``tag``, ``digest``."""
        if isinstance(value, PolicyImage):
            return value
        image = value.get("image") or value.get("name")
        if not image or not value.get("tag"):
            raise ValueError(f"policy value {dict(value)!r}: expected image and tag")
        return cls(str(image), str(value["tag"]), str(value["digest"]) if value.get("digest") else None)


@dataclass(frozen=True)
class Change:
    """One rewritten value (what Flux's template data calls a Change, plus where it was)."""

    file: str
    line: int
    old_value: str
    new_value: str
    #: The setter as written in the marker (``apps:app:tag``).
    setter: str
    #: The policy it names (``apps:app``).
    policy: str
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None
    api_version: str | None = None

    def describe(self) -> str:
        return f"{self.file}:{self.line}: {self.old_value} -> {self.new_value}"


@dataclass
class FileUpdate:
    """The result for one file: ``text`` is the new text (the old one when nothing changed)."""

    path: str
    text: str
    changes: list[Change] = field(default_factory=list)
    #: Why the file was not considered (not YAML, does not parse...); None when it was.
    skipped: str | None = None
    #: Markers seen but left alone, each with its line and why (unknown policy, other namespace...).
    ignored: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.changes)


@dataclass(frozen=True)
class Marker:
    """A parsed ``{"$imagepolicy": "NS:NAME[:FIELD]"}`` comment."""

    setter: str
    namespace: str
    name: str
    part: str | None

    @property
    def policy(self) -> str:
        return f"{self.namespace}:{self.name}"


def parse_marker(comment: str) -> Marker | None:
    """The marker in a comment's JSON text, or None when it is not one (or is malformed)."""
    try:
        data = json.loads(comment)
    except ValueError:
        return None
    setter = data.get("$imagepolicy") if isinstance(data, dict) else None
    if not isinstance(setter, str):
        return None
    parts = setter.split(":")
    if len(parts) not in (2, 3) or not all(parts[:2]):
        return None
    suffix = parts[2] if len(parts) == 3 else ""
    if suffix not in FIELDS:
        return None
    return Marker(setter, parts[0], parts[1], FIELDS[suffix])


def marker_after(text: str, scalar: ValueScalar) -> Marker | None:
    """The marker in the line comment right after ``scalar``, if any."""
    if scalar.node.style in ("|", ">") or scalar.start == scalar.end:
        return None
    match = _COMMENT.match(line_rest(text, scalar.end))
    return parse_marker(match.group(1)) if match else None


def update_text(
    text: str,
    policies: Mapping[str, PolicyImage | Mapping[str, Any]],
    *,
    path: str = "",
    namespace: str | None = None,
) -> FileUpdate:
    """Rewrite the marked values of one file's text.

    ``policies`` maps ``"NAMESPACE:POLICY"`` to what the policy selected. ``path`` only names the
    file in the result. Never raises for bad input: a file that does not parse comes back with
    ``skipped`` set and its text unchanged.
    """
    result = FileUpdate(path, text)
    if MARKER_TOKEN not in text:
        return result
    known = {key: PolicyImage.coerce(value) for key, value in policies.items()}
    try:
        scalars = list(value_scalars(text))
    except YAMLTextError as exc:
        result.skipped = f"not valid YAML ({exc})"
        return result
    replacements: list[Replacement] = []
    for scalar in scalars:
        marker = marker_after(text, scalar)
        if marker is None:
            continue
        new_value = _setter_value(marker, known, namespace, scalar, result)
        if new_value is None or new_value == scalar.node.value:
            continue
        source = render_scalar(new_value, scalar.node.style)
        replacements.append(Replacement(scalar.start, scalar.end, source, new_value))
        doc = scalar.document
        result.changes.append(
            Change(
                file=path,
                line=scalar.line,
                old_value=scalar.node.value,
                new_value=new_value,
                setter=marker.setter,
                policy=marker.policy,
                kind=doc.kind,
                name=doc.name,
                namespace=doc.namespace,
                api_version=doc.api_version,
            )
        )
    if replacements:
        try:
            result.text = apply_replacements(text, replacements)
        except YAMLTextError as exc:
            result.changes = []
            result.skipped = f"rewriting would not round-trip ({exc}); left unchanged"
    return result


def _setter_value(
    marker: Marker,
    known: Mapping[str, PolicyImage],
    namespace: str | None,
    scalar: ValueScalar,
    result: FileUpdate,
) -> str | None:
    where = f"line {scalar.line}"
    if namespace is not None and marker.namespace != namespace:
        result.ignored.append(f"{where}: {marker.setter} names namespace {marker.namespace}, not {namespace}")
        return None
    policy = known.get(marker.policy)
    if policy is None:
        result.ignored.append(f"{where}: no ready ImagePolicy {marker.policy}")
        return None
    value = policy.value(marker.part)
    if value is None:
        result.ignored.append(f"{where}: ImagePolicy {marker.policy} has no digest for {marker.setter}")
    return value
