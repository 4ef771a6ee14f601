"""Which ImagePolicies an automation applies, and what each selected (pure).

Flux's rule: an ImageUpdateAutomation applies the ImagePolicies of its own namespace that its
``spec.policySelector`` selects (no selector: all of them), and among those only the ones with a
latest image in their status. Each becomes the setter ``NAMESPACE:NAME``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gitops_tasks.automation.setters import PolicyImage
from gitops_tasks.objects.model import Object
from gitops_tasks.objects.selectors import selects


@dataclass(frozen=True)
class AppliedPolicies:
    #: Setter (``ns:name``) → what the policy selected.
    images: dict[str, PolicyImage]
    #: Flux's ``status.observedPolicies``: policy name → ``{"name", "tag"[, "digest"]}``.
    observed: dict[str, dict[str, str]]


def select_policies(automation: Object, policies: Iterable[Object]) -> list[Object]:
    """The policies ``automation`` applies: same namespace, selected by ``spec.policySelector``."""
    selector = automation.spec.get("policySelector")
    return sorted(
        (
            p
            for p in policies
            if p.kind == "ImagePolicy"
            and p.namespace == automation.namespace
            and selects(selector, dict(p.metadata.get("labels") or {}))
        ),
        key=lambda p: p.name,
    )


def latest_of(status: Mapping[str, Any]) -> PolicyImage | None:
    """What a policy's status says it selected (``latestRef``, else ``latestImage``), if anything."""
    ref = status.get("latestRef")
    if isinstance(ref, Mapping) and ref.get("name") and ref.get("tag"):
        digest = ref.get("digest")
        return PolicyImage(str(ref["name"]), str(ref["tag"]), str(digest) if digest else None)
    latest = status.get("latestImage")
    if isinstance(latest, str) and latest:
        name, sep, tag = latest.rpartition(":")
        if sep and name and "/" not in tag:
            return PolicyImage(name, tag)
    return None


def applied_policies(policies: Iterable[tuple[Object, Mapping[str, Any]]]) -> AppliedPolicies:
    """Setters and ``observedPolicies`` from ``(policy, status)`` pairs; policies without a
    latest image are left out (Flux ignores them)."""
    images: dict[str, PolicyImage] = {}
    observed: dict[str, dict[str, str]] = {}
    for policy, status in policies:
        latest = latest_of(status)
        if latest is None:
            continue
        images[f"{policy.namespace}:{policy.name}"] = latest
        entry = {"name": latest.image, "tag": latest.tag}
        if latest.digest:
            entry["digest"] = latest.digest
        observed[policy.name] = entry
    return AppliedPolicies(images, observed)
