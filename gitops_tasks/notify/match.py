"""Which Alerts an event goes to, and what is sent (Flux's matching rules; pure, no I/O).

Follows notification-controller's event server: a suspended Alert matches nothing; an event source
matches when its kind and namespace (the Alert's own when unset) equal the event's, its name is the
event's or ``*``, and every ``matchLabels`` pair is among the object's labels; ``eventSeverity:
error`` takes error events only (``info``, the default, takes all); a non-empty ``inclusionList``
needs one of its patterns found in the message and any ``exclusionList`` pattern found drops it.
Patterns are RE2 (Go's ``regexp``), compiled by :mod:`gitops_tasks.objects.regex`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from gitops_tasks.objects.kinds import API_VERSIONS
from gitops_tasks.objects.model import Object
from gitops_tasks.objects.regex import RegexError, compile_regex

#: The Alert annotation that turns on the transitions mode (only state changes are sent).
MODE_ANNOTATION = "gitops-tasks.io/notify"
#: Its value for that mode.
MODE_TRANSITIONS = "transitions"

#: Flux's reporting controller per kind (the ``Gotk-Component`` a generic webhook sees).
CONTROLLER_BY_KIND: dict[str, str] = {
    "GitRepository": "source-controller",
    "OCIRepository": "source-controller",
    "HelmRepository": "source-controller",
    "HelmChart": "source-controller",
    "Bucket": "source-controller",
    "Kustomization": "kustomize-controller",
    "HelmRelease": "helm-controller",
    "ImageRepository": "image-reflector-controller",
    "ImagePolicy": "image-reflector-controller",
    "ImageUpdateAutomation": "image-automation-controller",
}

#: Labels of the event's object, looked up only when a source has ``matchLabels``; None: the
#: object is not in the catalog (Flux: the source does not match).
LabelsOf = Callable[[str, str, str], Mapping[str, str] | None]


def source_matches(
    source: Mapping[str, Any], alert: Object, event: Mapping[str, str], labels_of: LabelsOf
) -> bool:
    """Whether one ``spec.eventSources`` entry of ``alert`` takes ``event``."""
    namespace = source.get("namespace") or alert.namespace
    if event["namespace"] != namespace or event["kind"] != source.get("kind"):
        return False
    if alert.spec.get("eventSeverity", "info") == "error" and event["severity"] != "error":
        return False
    if source.get("name") not in ("*", event["name"]):
        return False
    wanted = source.get("matchLabels")
    if not wanted:
        return True
    labels = labels_of(event["kind"], event["namespace"], event["name"])
    return labels is not None and all(labels.get(k) == v for k, v in wanted.items())


def _any_found(patterns: list[str], message: str) -> bool:
    for pattern in patterns:
        try:
            if compile_regex(pattern).matches(message):
                return True
        except RegexError:
            continue  # validated at apply; an invalid pattern matches nothing, as in Flux
    return False


def alert_matches(alert: Object, event: Mapping[str, str], labels_of: LabelsOf) -> bool:
    """Whether ``alert`` takes ``event`` (a dict with kind, namespace, name, severity, message)."""
    if alert.suspended:
        return False
    if not any(source_matches(s, alert, event, labels_of) for s in alert.spec.get("eventSources") or []):
        return False
    included = alert.spec.get("inclusionList") or []
    if included and not _any_found(included, event["message"]):
        return False
    return not _any_found(alert.spec.get("exclusionList") or [], event["message"])


def transitions_only(alert: Object) -> bool:
    """Whether ``alert`` asks for state changes only (annotation ``gitops-tasks.io/notify``)."""
    annotations = alert.metadata.get("annotations") or {}
    return str(annotations.get(MODE_ANNOTATION, "")).strip() == MODE_TRANSITIONS


def metadata_for(alert: Object) -> dict[str, str]:
    """The metadata an Alert adds to every message: ``spec.eventMetadata``, then ``spec.summary``
    as ``summary`` (Flux's precedence: the summary wins)."""
    metadata = {str(k): str(v) for k, v in (alert.spec.get("eventMetadata") or {}).items()}
    if alert.spec.get("summary"):
        metadata["summary"] = str(alert.spec["summary"])
    return metadata


def dedupe_digest(event: Mapping[str, str]) -> str:
    """Flux's dedupe key: the object, the message and the revision (not the severity or reason)."""
    parts = [
        "event",
        f"name={event['name']}",
        f"namespace={event['namespace']}",
        f"kind={event['kind']}",
        f"message={event['message']}",
    ]
    if event.get("revision"):
        parts.append(f"revision={event['revision']}")
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


def api_version_of(kind: str) -> str:
    """The apiVersion Flux gives an object of ``kind`` (its group's first version listed)."""
    versions = API_VERSIONS.get(kind) or ()
    flux = [v for v in versions if "fluxcd.io" in v]
    return (flux or list(versions) or [""])[0]
