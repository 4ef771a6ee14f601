"""Policy: pick an image's latest tag as Flux's ImagePolicy does (semver, alphabetical, numerical,
with ``spec.filterTags`` pattern and extract), and decide the ImagePolicy's outcome.

:func:`build` turns a spec into a :class:`Policy` (one method, ``latest(tags)``) or raises
:class:`PolicyError` naming the field; ``latest`` raises :class:`NoMatchingTag` when no tag
qualifies and :class:`UnorderableTag` for a tag it cannot order. :func:`evaluate` is the one
place that maps those to reasons, messages and status facts.

Imports allowed: the standard library, ``semver`` and ``gitops_tasks.objects``; no other concern.
I/O: none. The tags come from the caller (the ImageRepository's last scan); the digest, which
needs the registry, is the caller's too.
"""

from gitops_tasks.policy.base import NoMatchingTag, Policy, PolicyError, UnorderableTag
from gitops_tasks.policy.evaluate import (
    DEFAULT_NO_MATCH_RETRY_S,
    DEPENDENCY_NOT_READY,
    INVALID_POLICY,
    NO_MATCHING_TAG,
    SUCCEEDED,
    evaluate,
    unorderable_message,
)
from gitops_tasks.policy.factory import STRATEGIES, build
from gitops_tasks.policy.filter import FilteredPolicy, TagFilter
from gitops_tasks.policy.strategies import AlphabeticalPolicy, NumericalPolicy, SemverPolicy

__all__ = [
    "DEFAULT_NO_MATCH_RETRY_S",
    "DEPENDENCY_NOT_READY",
    "INVALID_POLICY",
    "NO_MATCHING_TAG",
    "STRATEGIES",
    "SUCCEEDED",
    "AlphabeticalPolicy",
    "FilteredPolicy",
    "NoMatchingTag",
    "NumericalPolicy",
    "Policy",
    "PolicyError",
    "SemverPolicy",
    "TagFilter",
    "UnorderableTag",
    "build",
    "evaluate",
    "unorderable_message",
]
