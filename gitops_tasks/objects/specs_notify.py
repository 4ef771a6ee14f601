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


#: Receiver ``spec.type`` values this engine verifies (Flux's v1 types but ``generic-oidc`` and
#: ``cdevents``, which are refused at apply); ``receivers.verify.VERIFIED_TYPES`` checks each.
RECEIVER_TYPES = (
    "generic", "generic-hmac", "github", "gitlab", "bitbucket", "harbor", "dockerhub", "quay",
    "nexus", "acr",
)  # fmt: skip

#: Receiver fields Flux has that this engine does not act on: refused rather than ignored.
_RECEIVER_UNSUPPORTED = {
    "resourceFilter": "CEL resource filters are not supported by this engine",
    "oidcProviders": "the generic-oidc type is not supported by this engine",
}


def _receiver_auth(spec: dict[str, Any], path: Path) -> list[FieldError]:
    errors = [FieldError((*path, f), why) for f, why in _RECEIVER_UNSUPPORTED.items() if f in spec]
    kind = spec.get("type")
    if kind not in RECEIVER_TYPES:
        got = f"type {kind!r} is" if isinstance(kind, str) else "this type is"
        why = f"{got} not verified by this engine; expected one of {', '.join(RECEIVER_TYPES)}"
        errors.append(FieldError((*path, "type"), why))
    if "secretRef" not in spec:
        errors.append(FieldError((*path, "secretRef"), "required field is missing"))
    for i, resource in enumerate(spec.get("resources") or []):
        if not isinstance(resource, dict):
            continue
        where = (*path, "resources", i)
        if "filter" in resource:
            errors.append(FieldError((*where, "filter"), "CEL filters are not supported by this engine"))
        if resource.get("name") == "*" and not resource.get("matchLabels"):
            errors.append(FieldError((*where, "matchLabels"), "required when name is '*'"))
    return errors


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
        "type": Str(),
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
