"""ImagePolicy's decision: the one place that chooses its reasons and messages.

==========================  ========  ========================================================
reason                      result    when
==========================  ========  ========================================================
``Succeeded``               success   a tag was selected (changed when it differs from before)
``InvalidPolicy``           stalled   the spec cannot make a policy, or cannot order the tags
                                      (numerical: a tag, or extracted value, is not a number)
``NoMatchingTag``           waiting   tags were scanned but none passes the filter and policy
``DependencyNotReady``      waiting   the repository has no tags (not scanned yet, or empty)
==========================  ========  ========================================================

Why ``waiting`` when nothing matches: it is not a fault to back off from (``transient``) nor one
a person must fix (``stalled``); it resolves itself once a matching tag is pushed, and the
ImageRepository scan that finds it re-runs this policy (dependents run on every changed scan).
So the retry is the policy's ``spec.interval`` if it has one, else ``DEFAULT_NO_MATCH_RETRY_S``
as a safety net; no error event is emitted and the last good ``latestImage`` stays in the
status, so automation keeps the image it had. (Flux marks Ready=False with the generic reason
``Failure`` and retries with backoff.)

Messages follow Flux's: ``Latest image tag for 'IMAGE' resolved to TAG`` at first, ``... updated
from OLD to NEW`` once a previous image has been observed (kept while the tag stays the same).
The digest (``digestReflectionPolicy``) needs the registry and is left to the caller; a digest
already in ``latestRef`` is kept while the image and tag stay the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gitops_tasks.objects.kinds import interval_s
from gitops_tasks.objects.model import Object
from gitops_tasks.objects.outcome import Outcome
from gitops_tasks.policy.base import NoMatchingTag, PolicyError, UnorderableTag
from gitops_tasks.policy.factory import build

SUCCEEDED = "Succeeded"
INVALID_POLICY = "InvalidPolicy"
NO_MATCHING_TAG = "NoMatchingTag"
DEPENDENCY_NOT_READY = "DependencyNotReady"
#: Retry (seconds) after NoMatchingTag/DependencyNotReady for a policy without ``spec.interval``.
DEFAULT_NO_MATCH_RETRY_S = 300.0


def evaluate(obj: Object, tags: list[str], *, image: str, previous_status: dict[str, Any]) -> Outcome:
    """Select the latest of ``tags`` (the scanned tags of ``image``, without the name) for ``obj``.

    ``previous_status`` is the last stored status (``{}`` at first). Success facts:
    ``latestImage`` (``IMAGE:TAG``), ``latestRef`` (``{"name", "tag"}``) and, when the image
    changed from an earlier one, ``observedPreviousImage`` / ``observedPreviousRef``. Never raises
    :class:`PolicyError`, :class:`UnorderableTag` or :class:`NoMatchingTag`: they become
    ``stalled`` / ``stalled`` / ``waiting``.
    """
    where = str(obj.ref)
    try:
        tag = build(obj.spec, where=where).latest(tags)
    except PolicyError as exc:
        return Outcome("stalled", INVALID_POLICY, str(exc))
    except UnorderableTag as exc:
        return Outcome("stalled", INVALID_POLICY, unorderable_message(where, obj.spec, exc, image=image))
    except NoMatchingTag as exc:
        retry_s = _retry_s(obj)
        if not tags:
            message = f"no tags found for '{image}': the ImageRepository has not listed any (yet)"
            return Outcome("waiting", DEPENDENCY_NOT_READY, message, retry_after_s=retry_s)
        message = f"no tag of '{image}' matches the policy: {exc.detail}"
        return Outcome("waiting", NO_MATCHING_TAG, message, retry_after_s=retry_s)
    return _selected(image, tag, previous_status)


def unorderable_message(
    where: str, spec: Mapping[str, Any], exc: UnorderableTag, *, image: str | None = None
) -> str:
    """Why a numerical policy failed on ``exc.value`` and how to fix it (Flux fails the same way,
    with ``failed to parse invalid numeric value``)."""
    of_image = f" of '{image}'" if image else ""
    if spec.get("filterTags"):
        return (
            f"{where}: spec.policy.numerical: {exc.value!r}, kept by spec.filterTags from a "
            f"tag{of_image}, is not a number; every value the filter keeps (after extract) must "
            "be one: narrow spec.filterTags.pattern (and extract) to the numeric part"
        )
    return (
        f"{where}: spec.policy.numerical: tag {exc.value!r}{of_image} is not a number; every "
        "tag must be one: select numeric tags with spec.filterTags.pattern, e.g. '^[0-9]+$'"
    )


def _retry_s(obj: Object) -> float:
    try:
        return interval_s(obj) or DEFAULT_NO_MATCH_RETRY_S
    except ValueError:
        return DEFAULT_NO_MATCH_RETRY_S


def _selected(image: str, tag: str, previous_status: dict[str, Any]) -> Outcome:
    latest_image = f"{image}:{tag}"
    previous_image = previous_status.get("latestImage")
    previous_ref = previous_status.get("latestRef")
    changed = latest_image != previous_image
    latest_ref: dict[str, Any] = {"name": image, "tag": tag}
    if not changed and isinstance(previous_ref, dict) and _same_ref(previous_ref, image, tag):
        latest_ref = {**previous_ref, **latest_ref}
    facts: dict[str, Any] = {"latestImage": latest_image, "latestRef": latest_ref}
    observed = previous_status.get("observedPreviousImage")
    if changed and isinstance(previous_image, str) and previous_image:
        observed = previous_image
        facts["observedPreviousImage"] = previous_image
        if isinstance(previous_ref, dict):
            facts["observedPreviousRef"] = dict(previous_ref)
    if isinstance(observed, str) and observed and observed != latest_image:
        message = f"Latest image tag for '{image}' updated from {_short(observed, image)} to {tag}"
    else:
        message = f"Latest image tag for '{image}' resolved to {tag}"
    return Outcome("success", SUCCEEDED, message, facts=facts, revision=latest_image, changed=changed)


def _same_ref(ref: dict[str, Any], image: str, tag: str) -> bool:
    return ref.get("name") == image and ref.get("tag") == tag


def _short(previous_image: str, image: str) -> str:
    """The previous tag when the image name is the same, else the whole previous image."""
    prefix = f"{image}:"
    return previous_image.removeprefix(prefix) if previous_image.startswith(prefix) else previous_image
