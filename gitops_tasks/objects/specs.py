"""Spec schemas for GitRepository and Kustomization, and the pieces the other kinds share.

Each schema has Flux's field names, enums and required fields, and is the union of the Flux
versions we accept; fields Flux dropped from its current version are in ``LEGACY_FIELDS`` and
refused there. Checked against Flux's CRDs (source-controller v1, kustomize-controller v1).
"""

from __future__ import annotations

import re
from typing import Any

from gitops_tasks.objects.schema import (
    AnyValue,
    Bool,
    Duration,
    Enum,
    FieldError,
    ListOf,
    MapOfStr,
    Node,
    Obj,
    Str,
    exactly_one,
    ref,
)
from gitops_tasks.objects.semver_range import SemverRange
from gitops_tasks.objects.yamlload import Path

_GIT_URL = re.compile(r"^(?:(?:https?|ssh|git)://[^/\s]+|file://\S+|[\w.~-]+@[\w.-]+:(?!//)\S+)")
_HTTP_URL = re.compile(r"^https?://\S+$")


def _git_url(value: str) -> str | None:
    if _GIT_URL.match(value):
        return None
    return f"expected an http(s)://, ssh://, git://, file:// or scp-like user@host:path URL, got {value!r}"


def http_url(value: str) -> str | None:
    """``Str(validate=...)`` check for proxy and OIDC issuer addresses."""
    return None if _HTTP_URL.match(value) else f"expected an http:// or https:// URL, got {value!r}"


def semver_range(value: str) -> str | None:
    """``Str(validate=...)`` check for a Masterminds semver range (``ref.semver``, policy ranges).

    An empty ``ref.semver`` means unset, as in Flux."""
    if not value:
        return None
    try:
        SemverRange.parse(value)
    except ValueError as exc:
        return str(exc)
    return None


def _azure_service_account(spec: dict[str, Any], path: Path) -> list[FieldError]:
    if "serviceAccountName" in spec and spec.get("provider") != "azure":
        return [FieldError((*path, "serviceAccountName"), "only allowed when provider is azure")]
    return []


def strs(*names: str) -> dict[str, Node]:
    """Plain string fields, for the many ``{name, namespace, ...}`` shapes."""
    return {name: Str() for name in names}


GIT_REF = Obj({**strs("branch", "tag", "name", "commit"), "semver": Str(validate=semver_range)})
ACCESS_FROM = Obj(
    {"namespaceSelectors": ListOf(Obj({"matchLabels": MapOfStr()}))}, required=["namespaceSelectors"]
)
INTERVAL = Duration(positive=True)

GIT_REPOSITORY = Obj(
    {
        "url": Str(validate=_git_url),
        "secretRef": ref(),
        "provider": Enum("generic", "azure", "github"),
        "serviceAccountName": Str(),
        "interval": INTERVAL,
        "timeout": Duration(positive=True),
        "ref": GIT_REF,
        "verify": Obj(
            {"mode": Enum("head", "HEAD", "Tag", "TagAndHEAD"), "secretRef": ref()}, required=["secretRef"]
        ),
        "proxySecretRef": ref(),
        "ignore": Str(),
        "suspend": Bool(),
        "recurseSubmodules": Bool(),
        "include": ListOf(
            Obj({"repository": ref(), "fromPath": Str(), "toPath": Str()}, required=["repository"])
        ),
        "sparseCheckout": ListOf(Str(min_len=1)),
        # v1beta2 and older only:
        "gitImplementation": Enum("go-git", "libgit2"),
        "accessFrom": ACCESS_FROM,
    },
    required=["url", "interval"],
    rules=[_azure_service_account],
)

_PATCH_TARGET = Obj(
    strs("group", "version", "kind", "name", "namespace", "annotationSelector", "labelSelector")
)

KUSTOMIZATION = Obj(
    {
        "sourceRef": Obj(
            {
                "apiVersion": Str(),
                "kind": Enum("GitRepository", "OCIRepository", "Bucket", "ExternalArtifact"),
                "name": Str(min_len=1),
                "namespace": Str(),
            },
            required=["kind", "name"],
        ),
        "path": Str(),
        "interval": INTERVAL,
        "retryInterval": INTERVAL,
        "timeout": Duration(positive=True),
        "prune": Bool(),
        "force": Bool(),
        "wait": Bool(),
        "healthChecks": ListOf(
            Obj(strs("apiVersion", "kind", "name", "namespace"), required=["kind", "name"])
        ),
        "healthCheckExprs": ListOf(
            Obj(
                strs("apiVersion", "kind", "current", "inProgress", "failed"),
                required=["apiVersion", "kind", "current"],
            )
        ),
        "targetNamespace": Str(min_len=1, max_len=63),
        "dependsOn": ListOf(Obj(strs("name", "namespace", "readyExpr"), required=["name"])),
        "postBuild": Obj(
            {
                "substituteStrategy": Enum("WithVariables", "Always"),
                "substitute": MapOfStr(),
                "substituteFrom": ListOf(
                    Obj(
                        {
                            "kind": Enum("Secret", "ConfigMap"),
                            "name": Str(min_len=1, max_len=253),
                            "optional": Bool(),
                        },
                        required=["kind", "name"],
                    )
                ),
            }
        ),
        "suspend": Bool(),
        "kubeConfig": Obj(
            {"secretRef": Obj(strs("name", "key"), required=["name"]), "configMapRef": ref()},
            rules=[exactly_one("secretRef", "configMapRef")],
        ),
        "serviceAccountName": Str(),
        "patches": ListOf(Obj({"patch": Str(), "target": _PATCH_TARGET}, required=["patch"])),
        "images": ListOf(Obj(strs("name", "newName", "newTag", "digest"), required=["name"])),
        "components": ListOf(Str()),
        "ignoreMissingComponents": Bool(),
        "commonMetadata": Obj({"labels": MapOfStr(), "annotations": MapOfStr()}),
        "namePrefix": Str(min_len=1, max_len=200),
        "nameSuffix": Str(min_len=1, max_len=200),
        "decryption": Obj(
            {"provider": Enum("sops"), "secretRef": ref(), "serviceAccountName": Str()},
            required=["provider"],
        ),
        "deletionPolicy": Enum("MirrorPrune", "Delete", "WaitForTermination", "Orphan"),
        # v1beta2 only:
        "validation": Enum("none", "client", "server"),
        "patchesStrategicMerge": ListOf(AnyValue()),
        "patchesJson6902": ListOf(
            Obj({"patch": ListOf(AnyValue()), "target": _PATCH_TARGET}, required=["patch", "target"])
        ),
    },
    required=["sourceRef", "interval", "prune"],
)

#: Fields Flux removed from the current API version; accepted only with the older versions.
LEGACY_FIELDS: dict[str, frozenset[str]] = {
    "GitRepository": frozenset({"gitImplementation", "accessFrom"}),
    "Kustomization": frozenset({"validation", "patchesStrategicMerge", "patchesJson6902"}),
}
