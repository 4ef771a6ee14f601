"""The ``spec`` schema of each kind, with Flux's field names, enums and required fields.

Each schema is the union of the fields of the Flux versions we accept; fields Flux dropped in
its current version are listed in ``LEGACY_FIELDS`` and refused there. Sources: Flux's CRDs
(source-controller v1, image-reflector/automation v1, kustomize-controller v1,
notification-controller v1beta3 and v1).
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
    Regex,
    Str,
    compile_regex,
    exactly_one,
    ref,
)
from gitops_tasks.objects.yamlload import Path

_GIT_URL = re.compile(r"^(?:(?:https?|ssh|git)://[^/\s]+|file://\S+|[\w.~-]+@[\w.-]+:(?!//)\S+)")
_HTTP_URL = re.compile(r"^https?://\S+$")
_EXTRACT_REF = re.compile(r"\$(?:\{(\w+)\}|(\w+))")

#: Kinds an Alert's ``eventSources`` or a Receiver's ``resources`` may name (Flux's list).
FLUX_KINDS = (
    "Bucket", "GitRepository", "Kustomization", "HelmRelease", "HelmChart", "HelmRepository",
    "ImageRepository", "ImagePolicy", "ImageUpdateAutomation", "OCIRepository",
    "ArtifactGenerator", "ExternalArtifact", "FluxInstance", "ResourceSet",
    "ResourceSetInputProvider",
)  # fmt: skip


def _git_url(value: str) -> str | None:
    if _GIT_URL.match(value):
        return None
    return f"expected an http(s)://, ssh://, git://, file:// or scp-like user@host:path URL, got {value!r}"


def _http_url(value: str) -> str | None:
    return None if _HTTP_URL.match(value) else f"expected an http:// or https:// URL, got {value!r}"


def _image_name(value: str) -> str | None:
    if "://" in value or any(c.isspace() for c in value):
        return f"expected an image name such as ghcr.io/org/app (no scheme), got {value!r}"
    last = value.rsplit("/", 1)[-1]
    if ":" in last or "@" in value:
        return f"expected an image name without a tag or digest, got {value!r}"
    return None


def _interval_needs_always(spec: dict[str, Any], path: Path) -> list[FieldError]:
    if spec.get("digestReflectionPolicy") == "Always" and "interval" not in spec:
        return [FieldError((*path, "interval"), "required when digestReflectionPolicy is Always")]
    return []


def _extract_groups(filter_tags: dict[str, Any], path: Path) -> list[FieldError]:
    extract = filter_tags.get("extract")
    if not extract:
        return []
    pattern = compile_regex(filter_tags.get("pattern", ""))
    errors: list[FieldError] = []
    for match in _EXTRACT_REF.finditer(extract):
        group = match.group(1) or match.group(2)
        known = int(group) <= pattern.groups if group.isdigit() else group in pattern.groupindex
        if not known:
            errors.append(FieldError((*path, "extract"), f"refers to ${group}, a group the pattern lacks"))
    return errors


def _azure_service_account(spec: dict[str, Any], path: Path) -> list[FieldError]:
    if "serviceAccountName" in spec and spec.get("provider") != "azure":
        return [FieldError((*path, "serviceAccountName"), "only allowed when provider is azure")]
    return []


def _receiver_auth(spec: dict[str, Any], path: Path) -> list[FieldError]:
    oidc = spec.get("type") == "generic-oidc"
    if oidc and "secretRef" in spec:
        return [FieldError((*path, "secretRef"), "not allowed when type is generic-oidc")]
    if oidc and not spec.get("oidcProviders"):
        return [FieldError((*path, "oidcProviders"), "required when type is generic-oidc")]
    if not oidc and "oidcProviders" in spec:
        return [FieldError((*path, "oidcProviders"), "only allowed when type is generic-oidc")]
    if not oidc and "secretRef" not in spec:
        return [FieldError((*path, "secretRef"), "required field is missing")]
    return []


def _strs(*names: str) -> dict[str, Node]:
    return {name: Str() for name in names}


_GIT_REF = Obj(_strs("branch", "tag", "semver", "name", "commit"))
_ACCESS_FROM = Obj(
    {"namespaceSelectors": ListOf(Obj({"matchLabels": MapOfStr()}))}, required=["namespaceSelectors"]
)
_INTERVAL = Duration(positive=True)
_ORDER = Obj({"order": Enum("asc", "desc")})

GIT_REPOSITORY = Obj(
    {
        "url": Str(validate=_git_url),
        "secretRef": ref(),
        "provider": Enum("generic", "azure", "github"),
        "serviceAccountName": Str(),
        "interval": _INTERVAL,
        "timeout": Duration(positive=True),
        "ref": _GIT_REF,
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
        "accessFrom": _ACCESS_FROM,
    },
    required=["url", "interval"],
    rules=[_azure_service_account],
)

IMAGE_REPOSITORY = Obj(
    {
        "image": Str(min_len=1, validate=_image_name),
        "interval": _INTERVAL,
        "timeout": Duration(positive=True),
        "secretRef": ref(),
        "serviceAccountName": Str(max_len=253),
        "certSecretRef": ref(),
        "proxySecretRef": ref(),
        "accessFrom": _ACCESS_FROM,
        "exclusionList": ListOf(Regex(), max_items=25),
        "suspend": Bool(),
        "provider": Enum("generic", "aws", "azure", "gcp"),
        "insecure": Bool(),
    },
    required=["image", "interval"],
)

IMAGE_POLICY = Obj(
    {
        "imageRepositoryRef": ref(namespace=True),
        "policy": Obj(
            {
                "semver": Obj({"range": Str(min_len=1)}, required=["range"]),
                "alphabetical": _ORDER,
                "numerical": _ORDER,
            },
            rules=[exactly_one("semver", "alphabetical", "numerical")],
        ),
        "filterTags": Obj({"pattern": Regex(), "extract": Str()}, rules=[_extract_groups]),
        "digestReflectionPolicy": Enum("Always", "IfNotPresent", "Never"),
        "interval": _INTERVAL,
        "suspend": Bool(),
    },
    required=["imageRepositoryRef", "policy"],
    rules=[_interval_needs_always],
)

IMAGE_UPDATE_AUTOMATION = Obj(
    {
        "sourceRef": Obj(
            {"apiVersion": Str(), "kind": Enum("GitRepository"), "name": Str(min_len=1), "namespace": Str()},
            required=["name"],
        ),
        "git": Obj(
            {
                "checkout": Obj({"ref": _GIT_REF}, required=["ref"]),
                "commit": Obj(
                    {
                        "author": Obj(_strs("name", "email"), required=["email"]),
                        "signingKey": Obj(
                            {"secretRef": ref(), "type": Enum("gpg", "ssh")}, required=["secretRef"]
                        ),
                        "messageTemplate": Str(),
                        "messageTemplateValues": MapOfStr(),
                    },
                    required=["author"],
                ),
                "push": Obj({"branch": Str(), "refspec": Str(), "options": MapOfStr()}),
            },
            required=["commit"],
        ),
        "interval": _INTERVAL,
        "policySelector": Obj(
            {
                "matchLabels": MapOfStr(),
                "matchExpressions": ListOf(
                    Obj(
                        {
                            "key": Str(min_len=1),
                            "operator": Enum("In", "NotIn", "Exists", "DoesNotExist"),
                            "values": ListOf(Str()),
                        },
                        required=["key", "operator"],
                    )
                ),
            }
        ),
        "update": Obj({"path": Str(), "strategy": Enum("Setters")}),
        "suspend": Bool(),
    },
    required=["sourceRef", "interval"],
)

_PATCH_TARGET = Obj(
    _strs("group", "version", "kind", "name", "namespace", "annotationSelector", "labelSelector")
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
        "interval": _INTERVAL,
        "retryInterval": _INTERVAL,
        "timeout": Duration(positive=True),
        "prune": Bool(),
        "force": Bool(),
        "wait": Bool(),
        "healthChecks": ListOf(
            Obj(_strs("apiVersion", "kind", "name", "namespace"), required=["kind", "name"])
        ),
        "healthCheckExprs": ListOf(
            Obj(
                _strs("apiVersion", "kind", "current", "inProgress", "failed"),
                required=["apiVersion", "kind", "current"],
            )
        ),
        "targetNamespace": Str(min_len=1, max_len=63),
        "dependsOn": ListOf(Obj(_strs("name", "namespace", "readyExpr"), required=["name"])),
        "postBuild": Obj(
            {
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
            {"secretRef": Obj(_strs("name", "key"), required=["name"]), "configMapRef": ref()},
            rules=[exactly_one("secretRef", "configMapRef")],
        ),
        "serviceAccountName": Str(),
        "patches": ListOf(Obj({"patch": Str(), "target": _PATCH_TARGET}, required=["patch"])),
        "images": ListOf(Obj(_strs("name", "newName", "newTag", "digest"), required=["name"])),
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

PROVIDER = Obj(
    {
        "type": Enum(
            "slack", "discord", "msteams", "rocket", "generic", "generic-hmac", "github", "gitlab",
            "gitea", "giteapullrequestcomment", "bitbucketserver", "bitbucket", "azuredevops",
            "googlechat", "googlepubsub", "webex", "sentry", "azureeventhub", "telegram", "lark",
            "matrix", "opsgenie", "alertmanager", "grafana", "githubdispatch",
            "githubpullrequestcomment", "gitlabmergerequestcomment", "pagerduty", "datadog", "nats",
            "zulip", "otel",
        ),  # fmt: skip
        "interval": _INTERVAL,
        "channel": Str(max_len=2048),
        "username": Str(max_len=2048),
        "address": Str(max_len=2048),
        "timeout": Duration(positive=True),
        "proxy": Str(max_len=2048, validate=_http_url),
        "proxySecretRef": ref(),
        "secretRef": ref(),
        "certSecretRef": ref(),
        "serviceAccountName": Str(),
        "commitStatusExpr": Str(),
        "suspend": Bool(),
    },
    required=["type"],
)

ALERT = Obj(
    {
        "providerRef": ref(),
        "eventSeverity": Enum("info", "error"),
        "eventSources": ListOf(
            Obj(
                {
                    "apiVersion": Str(),
                    "kind": Enum(*FLUX_KINDS),
                    "name": Str(min_len=1, max_len=253),
                    "namespace": Str(min_len=1, max_len=253),
                    "matchLabels": MapOfStr(),
                },
                required=["kind", "name"],
            )
        ),
        "inclusionList": ListOf(Regex()),
        "exclusionList": ListOf(Regex()),
        "eventMetadata": MapOfStr(),
        "summary": Str(max_len=255),
        "suspend": Bool(),
    },
    required=["providerRef", "eventSources"],
)

_CEL_PAIR = ListOf(Obj(_strs("expression", "message"), required=["expression", "message"]), min_items=1)

RECEIVER = Obj(
    {
        "type": Enum(
            "generic", "generic-hmac", "generic-oidc", "github", "gitlab", "bitbucket", "harbor",
            "dockerhub", "quay", "gcr", "nexus", "acr", "cdevents",
        ),  # fmt: skip
        "interval": _INTERVAL,
        "events": ListOf(Str()),
        "resources": ListOf(
            Obj(
                {
                    "apiVersion": Str(),
                    "kind": Enum(*FLUX_KINDS),
                    "name": Str(min_len=1, max_len=253),
                    "namespace": Str(min_len=1, max_len=253),
                    "matchLabels": MapOfStr(),
                    "filter": Str(),
                },
                required=["kind", "name"],
            )
        ),
        "resourceFilter": Str(),
        "secretRef": ref(),
        "oidcProviders": ListOf(
            Obj(
                {
                    "issuerURL": Str(validate=_http_url),
                    "audience": Str(),
                    "validations": _CEL_PAIR,
                    "variables": ListOf(
                        Obj(_strs("name", "expression"), required=["name", "expression"])
                    ),
                },
                required=["issuerURL", "validations"],
            )
        ),
        "suspend": Bool(),
    },
    required=["type", "resources"],
    rules=[_receiver_auth],
)

#: Fields Flux removed from the current API version; accepted only with the older versions.
LEGACY_FIELDS: dict[str, frozenset[str]] = {
    "GitRepository": frozenset({"gitImplementation", "accessFrom"}),
    "Kustomization": frozenset({"validation", "patchesStrategicMerge", "patchesJson6902"}),
}
