"""Post-build variable substitution (``spec.postBuild``), as Flux does it; pure.

Variables come from ``substituteFrom`` (ConfigMaps and Secrets, in list order, later ones
overriding earlier ones) and then ``substitute`` (inline values win). Names must match Flux's
``^[_[:alpha:]][_[:alpha:][:digit:]]*$``. Substitution runs only when ``postBuild`` defines at
least one variable or one ``substituteFrom`` entry (Flux's rule), over the YAML text of each
object, skipping objects labelled or annotated ``kustomize.toolkit.fluxcd.io/substitute:
disabled``. The expression rules are :mod:`gitops_tasks.sync.envsubst`'s.

Where ``substituteFrom`` data is read from is the caller's choice (a ``Reader``; see
:mod:`gitops_tasks.sync.inputs`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from gitops_tasks.sync.envsubst import EnvsubstError, expand
from gitops_tasks.sync.errors import SubstituteError
from gitops_tasks.sync.manifests import Manifest, ManifestError, dump, load_one

#: Label or annotation that turns substitution off for one object (value ``disabled``).
SUBSTITUTE_KEY = "kustomize.toolkit.fluxcd.io/substitute"
#: Flux's rule for variable names.
VAR_NAME = re.compile(r"^[_a-zA-Z][_a-zA-Z0-9]*$")

#: ``(kind, name) → data`` of a ConfigMap or Secret, or ``None`` when it does not exist.
Reader = Callable[[str, str], Mapping[str, str] | None]


def enabled(spec: Mapping[str, Any]) -> bool:
    """True when ``spec.postBuild`` asks for substitution at all."""
    post = spec.get("postBuild") or {}
    return bool(post.get("substitute") or post.get("substituteFrom"))


def variables(spec: Mapping[str, Any], *, read: Reader, namespace: str) -> dict[str, str]:
    """The variables ``spec.postBuild`` defines. ``namespace`` only names sources in messages.

    Raises :class:`SubstituteError`: ``transient`` when a required (non-``optional``)
    ConfigMap or Secret does not exist, ``stalled`` for an invalid variable name.
    """
    post = spec.get("postBuild") or {}
    found: dict[str, str] = {}
    origin: dict[str, str] = {}
    for ref in post.get("substituteFrom") or []:
        kind, name = str(ref.get("kind", "")), str(ref.get("name", ""))
        data = read(kind, name)
        label = f"{kind} {namespace}/{name}"
        if data is None:
            if ref.get("optional"):
                continue
            raise SubstituteError(
                f"postBuild.substituteFrom: {label} not found (set optional: true to tolerate its absence)",
                result="transient",
            )
        for key, value in data.items():
            found[key], origin[key] = str(value), label
    for key, value in (post.get("substitute") or {}).items():
        found[str(key)], origin[str(key)] = str(value), "postBuild.substitute"
    for key in found:
        if not VAR_NAME.match(key):
            raise SubstituteError(
                f"{origin[key]}: variable name {key!r} is invalid: must match {VAR_NAME.pattern}"
            )
    return found


def disabled(obj: Mapping[str, Any]) -> bool:
    meta = obj.get("metadata") or {}
    return any(
        str((meta.get(field) or {}).get(SUBSTITUTE_KEY, "")).lower() == "disabled"
        for field in ("labels", "annotations")
    )


def substitute(
    manifests: list[Manifest], values: Mapping[str, str], *, strict: bool = False
) -> list[Manifest]:
    """``manifests`` with ``${...}`` expanded (new objects; the input is left as it was).

    Raises :class:`SubstituteError` naming the object and its origin when an expression is
    invalid, a variable is unset in ``strict`` mode, or the result is no longer a valid object.
    """
    out: list[Manifest] = []
    for manifest in manifests:
        if disabled(manifest.obj):
            out.append(manifest)
            continue
        text = dump(manifest.obj)
        if "${" not in text:
            out.append(manifest)
            continue
        meta = manifest.obj.get("metadata") or {}
        where = f"{manifest.origin}: {manifest.obj.get('kind')}/{meta.get('name')}"
        try:
            obj = load_one(expand(text, values, strict=strict), where)
        except EnvsubstError as exc:
            raise SubstituteError(f"{where}: variable substitution failed: {exc}") from None
        except ManifestError as exc:
            raise SubstituteError(f"after variable substitution, {exc}") from None
        out.append(Manifest(obj, manifest.origin))
    return out
