"""What the API server refuses with 422 Invalid: names, labels, a few required fields, immutable fields.

Only built-in kinds are checked beyond names and labels; custom resources are not validated against
their CRD schema. Pure: :func:`validate` returns ``(field, message)`` causes.
"""

from __future__ import annotations

import re
from typing import Any

from tests.kubeapi.errors import go_value
from tests.kubeapi.resources import ResourceType
from tests.kubeapi.selectors import valid_label_key, valid_label_value

Causes = list[tuple[str, str]]

_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_WORKLOADS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"})
_LABEL_NAMES = frozenset({"Namespace", "Service"})
_STATEFULSET_MUTABLE = frozenset(
    {
        "replicas",
        "ordinals",
        "template",
        "updateStrategy",
        "revisionHistoryLimit",
        "persistentVolumeClaimRetentionPolicy",
        "minReadySeconds",
    }
)
IMMUTABLE = "field is immutable"


def _get(obj: Any, *path: str) -> Any:
    for name in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(name)
    return obj


def _invalid(value: Any, why: str) -> str:
    return f"Invalid value: {go_value(value)}: {why}"


def validate_name(rt: ResourceType, name: Any) -> Causes:
    if not name:
        return [("metadata.name", "Required value: name or generateName is required")]
    if rt.kind in _LABEL_NAMES:
        if len(name) > 63 or not _LABEL.fullmatch(name):
            return [
                (
                    "metadata.name",
                    _invalid(
                        name,
                        "a lowercase RFC 1123 label must consist of lower case alphanumeric "
                        "characters or '-', and must start and end with an alphanumeric character",
                    ),
                )
            ]
    elif rt.kind not in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding") and (
        len(name) > 253 or not _SUBDOMAIN.fullmatch(name)
    ):
        return [
            (
                "metadata.name",
                _invalid(
                    name,
                    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                    "characters, '-' or '.', and must start and end with an alphanumeric character",
                ),
            )
        ]
    return []


def _metadata(obj: dict[str, Any]) -> Causes:
    causes: Causes = []
    for key, value in (_get(obj, "metadata", "labels") or {}).items():
        if not valid_label_key(key):
            causes.append(
                ("metadata.labels", _invalid(key, "name part must consist of alphanumeric characters"))
            )
        elif not isinstance(value, str) or not valid_label_value(value):
            causes.append(
                (
                    "metadata.labels",
                    _invalid(
                        value,
                        "a valid label must be an empty string or "
                        "consist of alphanumeric characters, '-', '_' or '.' (at most 63)",
                    ),
                )
            )
    for key, value in (_get(obj, "metadata", "annotations") or {}).items():
        if not isinstance(value, str):
            causes.append((f"metadata.annotations[{key}]", _invalid(value, "must be a string")))
    return causes


def _pod_template(obj: dict[str, Any], prefix: str) -> Causes:
    containers = _get(obj, *prefix.split("."), "spec", "containers")
    if not containers:
        return [(f"{prefix}.spec.containers", "Required value")]
    causes: Causes = []
    for index, container in enumerate(containers):
        if not isinstance(container, dict) or not container.get("name"):
            causes.append((f"{prefix}.spec.containers[{index}].name", "Required value"))
        elif not container.get("image"):
            causes.append((f"{prefix}.spec.containers[{index}].image", "Required value"))
    return causes


def _workload(obj: dict[str, Any], old: dict[str, Any] | None) -> Causes:
    selector = _get(obj, "spec", "selector")
    if not selector:
        return [("spec.selector", "Required value")]
    causes = _pod_template(obj, "spec.template")
    labels = _get(obj, "spec", "template", "metadata", "labels") or {}
    wanted = selector.get("matchLabels") or {}
    if any(labels.get(key) != value for key, value in wanted.items()):
        causes.append(
            ("spec.template.metadata.labels", _invalid(labels, "`selector` does not match template `labels`"))
        )
    if old is not None and _get(old, "spec", "selector") != selector:
        causes.append(("spec.selector", _invalid(selector, IMMUTABLE)))
    return causes


def _kind_rules(rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> Causes:
    kind, spec, old_spec = rt.kind, obj.get("spec") or {}, (old or {}).get("spec") or {}
    if kind in _WORKLOADS:
        causes = _workload(obj, old)
        if kind == "StatefulSet" and old is not None:
            changed = {k for k in set(spec) | set(old_spec) if spec.get(k) != old_spec.get(k)}
            if changed - _STATEFULSET_MUTABLE - {"selector"}:
                causes.append(
                    (
                        "spec",
                        "Forbidden: updates to statefulset spec for fields other than 'replicas', "
                        "'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', "
                        "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
                    )
                )
        return causes
    if kind == "Job":
        causes = _pod_template(obj, "spec.template")
        if old is not None:
            for field in ("template", "selector", "completionMode"):
                if field in old_spec and spec.get(field) != old_spec.get(field):
                    causes.append((f"spec.{field}", _invalid(spec.get(field), IMMUTABLE)))
        return causes
    if kind == "CronJob":
        return _pod_template(obj, "spec.jobTemplate.spec.template")
    if kind == "Pod":
        return [] if spec.get("containers") else [("spec.containers", "Required value")]
    if kind == "Service":
        causes = []
        if old is not None and old_spec.get("clusterIP") and spec.get("clusterIP") != old_spec["clusterIP"]:
            causes.append(("spec.clusterIP", _invalid(spec.get("clusterIP"), IMMUTABLE)))
        if (
            spec.get("type", "ClusterIP") != "ExternalName"
            and spec.get("clusterIP") != "None"
            and not spec.get("ports")
        ):
            causes.append(("spec.ports", "Required value"))
        return causes
    if kind in ("ConfigMap", "Secret") and old is not None and old.get("immutable") is True:
        causes = []
        if obj.get("immutable") is not True:
            causes.append(("immutable", "Forbidden: field is immutable when `immutable` is set"))
        for field in ("data", "binaryData"):
            if obj.get(field) != old.get(field):
                causes.append((field, "Forbidden: field is immutable when `immutable` is set"))
        return causes
    if kind == "PersistentVolumeClaim" and old is not None:
        strip = {k: v for k, v in spec.items() if k != "resources"}
        old_strip = {k: v for k, v in old_spec.items() if k != "resources"}
        if strip != old_strip:
            return [
                (
                    "spec",
                    "Forbidden: spec is immutable after creation except resources.requests and "
                    "volumeAttributesClassName for bound claims",
                )
            ]
        return []
    if (
        kind in ("RoleBinding", "ClusterRoleBinding")
        and old is not None
        and obj.get("roleRef") != old.get("roleRef")
    ):
        return [("roleRef", _invalid(obj.get("roleRef"), "cannot change roleRef"))]
    if kind == "CustomResourceDefinition":
        return _crd(obj, old)
    return []


def _crd(obj: dict[str, Any], old: dict[str, Any] | None) -> Causes:
    spec = obj.get("spec") or {}
    names = spec.get("names") or {}
    causes: Causes = []
    for field, value in (
        ("spec.group", spec.get("group")),
        ("spec.names.plural", names.get("plural")),
        ("spec.names.kind", names.get("kind")),
    ):
        if not value:
            causes.append((field, "Required value"))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(
            (
                "spec.scope",
                f"Unsupported value: {go_value(spec.get('scope'))}: supported values: "
                '"Cluster", "Namespaced"',
            )
        )
    versions = spec.get("versions") or []
    if not versions:
        causes.append(
            ("spec.versions", "Invalid value: []: must have exactly one version marked as storage version")
        )
    elif sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(
            ("spec.versions", _invalid(versions, "must have exactly one version marked as storage version"))
        )
    name = _get(obj, "metadata", "name")
    if not causes and name != f"{names['plural']}.{spec['group']}":
        causes.append(("metadata.name", _invalid(name, 'must be spec.names.plural+"."+spec.group')))
    if old is not None and (old.get("spec") or {}).get("scope") != spec.get("scope"):
        causes.append(("spec.scope", _invalid(spec.get("scope"), IMMUTABLE)))
    return causes


def validate(rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> Causes:
    causes = validate_name(rt, _get(obj, "metadata", "name")) + _metadata(obj)
    if not rt.crd:
        causes += _kind_rules(rt, obj, old)
    return causes
