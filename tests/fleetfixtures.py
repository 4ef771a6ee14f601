"""A Flux-style fleet repository for the tests and benchmarks: ``clusters/staging`` with the
``flux-system`` sync objects, an ``infrastructure`` and an ``apps`` Kustomization, and their
plain manifests."""

from __future__ import annotations

from typing import Any

import yaml


def dump(*objects: dict[str, Any]) -> str:
    return "---\n".join(yaml.safe_dump(o, sort_keys=False) for o in objects)


def git_repository(
    name: str, url: str, *, namespace: str = "flux-system", interval: str = "1m"
) -> dict[str, Any]:
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"interval": interval, "ref": {"branch": "main"}, "url": url},
    }


def kustomization(
    name: str,
    path: str,
    *,
    namespace: str = "flux-system",
    source: str = "flux-system",
    depends_on: tuple[str, ...] = (),
    interval: str = "10m",
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "interval": interval,
        "path": path,
        "prune": True,
        "sourceRef": {"kind": "GitRepository", "name": source},
        **spec,
    }
    if depends_on:
        body["dependsOn"] = [{"name": d} for d in depends_on]
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def configmap(name: str, ns: str, data: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": data or {"k": "v"},
    }


def gotk_sync(url: str, path: str = "./clusters/staging", **spec: Any) -> str:
    """Flux's ``gotk-sync.yaml`` for ``url`` (``spec``: more fields of the Kustomization)."""
    return dump(git_repository("flux-system", url), kustomization("flux-system", path, **spec))


def fleet_files(url: str, ns: str) -> dict[str, str]:
    """The three-level fleet: flux-system → infrastructure + apps (after it) → plain objects in ``ns``."""
    return {
        "clusters/staging/flux-system/gotk-sync.yaml": gotk_sync(url),
        "clusters/staging/flux-system/kustomization.yaml": (
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- gotk-sync.yaml\n"
        ),
        "clusters/staging/infrastructure.yaml": dump(
            kustomization("infrastructure", "./infrastructure", wait=True)
        ),
        "clusters/staging/apps.yaml": dump(kustomization("apps", "./apps", depends_on=("infrastructure",))),
        "infrastructure/namespace.yaml": dump(namespace(ns)),
        "apps/web.yaml": dump(configmap("web", ns)),
    }
