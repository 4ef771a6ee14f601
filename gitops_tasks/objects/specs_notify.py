"""Spec schemas for Provider, Alert (v1beta3) and Receiver (v1), from Flux's notification-controller."""

from __future__ import annotations

from typing import Any

from gitops_tasks.objects.schema import (
    Bool,
    Duration,
    Enum,
    FieldError,
    ListOf,
    MapOfStr,
    Obj,
    Regex,
    Str,
    ref,
)
from gitops_tasks.objects.specs import INTERVAL, http_url, strs
from gitops_tasks.objects.yamlload import Path

#: Kinds an Alert's ``eventSources`` or a Receiver's ``resources`` may name (Flux's list).
FLUX_KINDS = (
    "Bucket", "GitRepository", "Kustomization", "HelmRelease", "HelmChart", "HelmRepository",
    "ImageRepository", "ImagePolicy", "ImageUpdateAutomation", "OCIRepository",
    "ArtifactGenerator", "ExternalArtifact", "FluxInstance", "ResourceSet",
    "ResourceSetInputProvider",
)  # fmt: skip


#: Provider ``spec.type`` values (notification-controller v1beta3).
PROVIDER_TYPES = (
    "slack", "discord", "msteams", "rocket", "generic", "generic-hmac", "github", "gitlab", "gitea",
    "giteapullrequestcomment", "bitbucketserver", "bitbucket", "azuredevops", "googlechat",
    "googlepubsub", "webex", "sentry", "azureeventhub", "telegram", "lark", "matrix", "opsgenie",
    "alertmanager", "grafana", "githubdispatch", "githubpullrequestcomment",
    "gitlabmergerequestcomment", "pagerduty", "datadog", "nats", "zulip", "otel",
)  # fmt: skip

#: Receiver ``spec.type`` values (notification-controller v1).
RECEIVER_TYPES = (
    "generic", "generic-hmac", "generic-oidc", "github", "gitlab", "bitbucket", "harbor",
    "dockerhub", "quay", "gcr", "nexus", "acr", "cdevents",
)  # fmt: skip


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


PROVIDER = Obj(
    {
        "type": Enum(*PROVIDER_TYPES),
        "interval": INTERVAL,
        "channel": Str(max_len=2048),
        "username": Str(max_len=2048),
        "address": Str(max_len=2048),
        "timeout": Duration(positive=True),
        "proxy": Str(max_len=2048, validate=http_url),
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

_CEL_PAIR = ListOf(Obj(strs("expression", "message"), required=["expression", "message"]), min_items=1)

RECEIVER = Obj(
    {
        "type": Enum(*RECEIVER_TYPES),
        "interval": INTERVAL,
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
                    "issuerURL": Str(validate=http_url),
                    "audience": Str(),
                    "validations": _CEL_PAIR,
                    "variables": ListOf(Obj(strs("name", "expression"), required=["name", "expression"])),
                },
                required=["issuerURL", "validations"],
            )
        ),
        "suspend": Bool(),
    },
    required=["type", "resources"],
    rules=[_receiver_auth],
)
