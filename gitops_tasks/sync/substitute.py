"""Post-build variable substitution (``spec.postBuild``), as Flux does it; pure.

Variables come from ``substituteFrom`` (ConfigMaps and Secrets, in list order, later ones
overriding earlier ones) and then ``substitute`` (inline values win). Every value loses its
newline characters (``\n``; a ``\r`` stays), from both sources, as Flux strips them: a value
read from a file that ends in a newline substitutes without it, and a multi-line value joins
into one line instead of breaking the YAML around ``${VAR}``. Names must match Flux's
``^[_[:alpha:]][_[:alpha:][:digit:]]*$``.

When it runs follows ``spec.postBuild.substituteStrategy`` (Flux's field): ``WithVariables``
(the default) substitutes only when at least one variable resolved, so a ``substituteFrom`` of
an absent optional or an empty ConfigMap alone substitutes nothing; ``Always`` substitutes even
with no variables, for manifests whose expressions all carry defaults (``${VAR:=default}``).
Substitution runs over the YAML text of each object, skipping objects labelled or annotated
``kustomize.toolkit.fluxcd.io/substitute: disabled``. The expression rules are
:mod:`gitops_tasks.sync.envsubst`'s.

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

#: ``spec.postBuild.substituteStrategy`` values (Flux's); the first is the default.
STRATEGIES = ("WithVariables", "Always")

#: ``(kind, name) → data`` of a ConfigMap or Secret, or ``None`` when it does not exist.
Reader = Callable[[str, str], Mapping[str, str] | None]


def strategy(spec: Mapping[str, Any]) -> str:
    """``spec.postBuild.substituteStrategy``, ``WithVariables`` when unset.

    Raises :class:`SubstituteError` (stalled) for any other value (the loader refuses those
    already; a spec from elsewhere fails the same way)."""
    value = (spec.get("postBuild") or {}).get("substituteStrategy") or STRATEGIES[0]
    if value not in STRATEGIES:
        raise SubstituteError(
            f"spec.postBuild.substituteStrategy: expected one of {', '.join(STRATEGIES)}, got {value!r}"
        )
    return str(value)


def _value(value: Any) -> str:
    return str(value).replace("\n", "")


def post_build(
    manifests: list[Manifest],
    spec: Mapping[str, Any],
    *,
    read: Reader,
    namespace: str,
    strict: bool = False,
) -> list[Manifest]:
    """``manifests`` after ``spec.postBuild`` (new objects where something was substituted).

    Nothing happens without ``postBuild``, nor with the ``WithVariables`` strategy when no
    variable resolved. Raises :class:`SubstituteError` as :func:`variables` and :func:`substitute`.
    """
    if spec.get("postBuild") is None:
        return manifests
    always = strategy(spec) == "Always"
    values = variables(spec, read=read, namespace=namespace)
    if not values and not always:
        return manifests
    return substitute(manifests, values, strict=strict)


def variables(spec: Mapping[str, Any], *, read: Reader, namespace: str) -> dict[str, str]:
    """The variables ``spec.postBuild`` defines, each without newlines. ``namespace`` only names
    sources in messages.

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
            found[key], origin[key] = _value(value), label
    for key, value in (post.get("substitute") or {}).items():
        found[str(key)], origin[str(key)] = _value(value), "postBuild.substitute"
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
