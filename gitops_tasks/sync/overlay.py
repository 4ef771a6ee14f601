"""The Kustomization spec fields that change the built objects, applied after the build.

``patches``, ``images``, ``namePrefix``, ``nameSuffix`` and ``components`` (and the v1beta2
``patchesStrategicMerge``/``patchesJson6902``) are kustomize features: the built objects are
written to a private temporary overlay with those fields and built again with ``kubectl
kustomize``, which is what Flux achieves by editing the overlay's kustomization.yaml.
``commonMetadata`` is set on each object directly (labels and annotations of ``metadata`` only,
overriding equal keys, as Flux does). Components are relative to ``spec.path`` and must stay inside
the repository; a missing one is an error unless ``spec.ignoreMissingComponents``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from gitops_tasks.sync.errors import BuildError, PathError
from gitops_tasks.sync.manifests import Manifest, dump

#: Spec fields that need a kustomize pass over the built objects.
KUSTOMIZE_FIELDS = (
    "patches",
    "images",
    "namePrefix",
    "nameSuffix",
    "components",
    "patchesStrategicMerge",
    "patchesJson6902",
)

Kustomize = Callable[[Path], list[Manifest]]


def needs_kustomize(spec: dict[str, Any]) -> bool:
    return any(spec.get(field) for field in KUSTOMIZE_FIELDS)


def kustomization_for(spec: dict[str, Any], *, root: Path, directory: Path, base: Path) -> dict[str, Any]:
    """The kustomization.yaml (as data) of an overlay in ``base`` for ``spec``; components become
    paths relative to ``base`` (kustomize refuses absolute ones)."""
    out: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["resources.yaml"],
    }
    for field in ("namePrefix", "nameSuffix", "images"):
        if spec.get(field):
            out[field] = spec[field]
    patches = [dict(p) for p in spec.get("patches") or []]
    patches += [
        {"patch": dump(p) if isinstance(p, dict) else str(p)} for p in spec.get("patchesStrategicMerge") or []
    ]
    patches += [
        {"patch": yaml.safe_dump(p.get("patch") or []), "target": p.get("target") or {}}
        for p in spec.get("patchesJson6902") or []
    ]
    if patches:
        out["patches"] = patches
    components = []
    for entry in spec.get("components") or []:
        target = (directory / entry).resolve()
        if target != root and root not in target.parents:
            raise PathError(f"spec.components entry {entry!r} leads outside the repository")
        if not target.is_dir():
            if spec.get("ignoreMissingComponents"):
                continue
            raise BuildError(f"spec.components entry {entry!r}: no such directory below spec.path")
        components.append(os.path.relpath(target, base))
    if components:
        out["components"] = components
    return out


def apply_kustomize_fields(
    manifests: list[Manifest], spec: dict[str, Any], *, root: Path, directory: Path, kustomize: Kustomize
) -> list[Manifest]:
    """``manifests`` rebuilt through an overlay made of ``spec``'s kustomize fields (if any)."""
    if not needs_kustomize(spec):
        return manifests
    root = root.resolve()
    # Inside the checkout, so that components are reachable by a relative path.
    with tempfile.TemporaryDirectory(prefix=".gitops-tasks-overlay-", dir=root) as tmp:
        base = Path(tmp)
        kustomization = kustomization_for(spec, root=root, directory=directory, base=base)
        (base / "resources.yaml").write_text("---\n".join(dump(m.obj) for m in manifests))
        (base / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False))
        built = kustomize(base)
    for manifest in built:
        manifest.origin = manifest.origin.replace(
            f"kustomize build of {base}", "spec overlay (patches, images...)"
        )
    return built


def apply_common_metadata(manifests: list[Manifest], spec: dict[str, Any]) -> None:
    """Set ``spec.commonMetadata`` labels and annotations on every object (in place)."""
    common = spec.get("commonMetadata") or {}
    for manifest in manifests:
        meta = manifest.obj.setdefault("metadata", {})
        for field in ("labels", "annotations"):
            if common.get(field):
                meta[field] = {**(meta.get(field) or {}), **common[field]}
