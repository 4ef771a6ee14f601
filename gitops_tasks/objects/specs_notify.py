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


#: Provider ``spec.type`` values this engine sends (equal to ``notify.providers.SUPPORTED``, which
#: objects/ cannot import; a unit test keeps them equal).
PROVIDER_TYPES = (
    "alertmanager", "azuredevops", "bitbucket", "bitbucketserver", "discord", "generic",
    "generic-hmac", "gitea", "github", "githubdispatch", "gitlab", "googlechat", "grafana", "lark",
    "matrix", "msteams", "opsgenie", "pagerduty", "rocket", "slack", "telegram", "webex", "zulip",
)  # fmt: skip

#: Flux's other Provider types (notification-controller v1beta3): refused at apply, by name.
FLUX_ONLY_PROVIDER_TYPES = (
    "giteapullrequestcomment", "googlepubsub", "sentry", "azureeventhub",
    "githubpullrequestcomment", "gitlabmergerequestcomment", "datadog", "nats", "otel", "zoom",
    "incident.io",
)  # fmt: skip


class ProviderType(Enum):
    """``spec.type``: one of :data:`PROVIDER_TYPES`; a Flux type this engine does not send is
    refused with that said, never accepted and silently ignored."""

    def __init__(self) -> None:
        super().__init__(*PROVIDER_TYPES)

    def check(self, value: Any, path: Path, errors: list[FieldError]) -> None:
        if value in FLUX_ONLY_PROVIDER_TYPES:
            supported = ", ".join(self.values)
            errors.append(
                FieldError(path, f"Flux's type {value} is not sent by this engine; supported: {supported}")
            )
        else:
            super().check(value, path, errors)


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
        "type": ProviderType(),
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
