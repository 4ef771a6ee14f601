"""Spec schemas for ImageRepository, ImagePolicy and ImageUpdateAutomation.

Checked against Flux's image-reflector-controller and image-automation-controller v1 CRDs; the
v1beta2 and v1beta1 fields are a subset.
"""

from __future__ import annotations

import re
from typing import Any

from gitops_tasks.objects.regex import compile_regex
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
    exactly_one,
    ref,
)
from gitops_tasks.objects.specs import ACCESS_FROM, GIT_REF, INTERVAL, semver_range, strs
from gitops_tasks.objects.yamlload import Path

_EXTRACT_REF = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


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


_ORDER = Obj({"order": Enum("asc", "desc")})

IMAGE_REPOSITORY = Obj(
    {
        "image": Str(min_len=1, validate=_image_name),
        "interval": INTERVAL,
        "timeout": Duration(positive=True),
        "secretRef": ref(),
        "serviceAccountName": Str(max_len=253),
        "certSecretRef": ref(),
        "proxySecretRef": ref(),
        "accessFrom": ACCESS_FROM,
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
                "semver": Obj({"range": Str(min_len=1, validate=semver_range)}, required=["range"]),
                "alphabetical": _ORDER,
                "numerical": _ORDER,
            },
            rules=[exactly_one("semver", "alphabetical", "numerical")],
        ),
        "filterTags": Obj({"pattern": Regex(), "extract": Str()}, rules=[_extract_groups]),
        "digestReflectionPolicy": Enum("Always", "IfNotPresent", "Never"),
        "interval": INTERVAL,
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
                "checkout": Obj({"ref": GIT_REF}, required=["ref"]),
                "commit": Obj(
                    {
                        "author": Obj(strs("name", "email"), required=["email"]),
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
        "interval": INTERVAL,
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
