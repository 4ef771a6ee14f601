"""Build a :class:`Policy` from an ImagePolicy spec, as Flux's ``PolicerFromSpec`` does.

The loader has usually validated the spec already; this checks again what a policy needs (so a
spec from elsewhere, such as the CLI, fails the same way) plus what the schema cannot: that the
semver range parses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gitops_tasks.objects.regex import RegexError, compile_regex
from gitops_tasks.objects.schema import regex_problem
from gitops_tasks.objects.semver_range import SemverRange
from gitops_tasks.policy.base import Policy, PolicyError
from gitops_tasks.policy.filter import FilteredPolicy, TagFilter, missing_groups, parse_template
from gitops_tasks.policy.strategies import (
    DEFAULT_ORDER,
    AlphabeticalPolicy,
    NumericalPolicy,
    Order,
    SemverPolicy,
)

STRATEGIES = ("semver", "alphabetical", "numerical")
_ORDERS: tuple[Order, ...] = ("asc", "desc")


def build(spec: Mapping[str, Any], *, where: str = "ImagePolicy") -> Policy:
    """The policy ``spec`` describes (``spec.policy`` and ``spec.filterTags``).

    ``where`` starts every error message (``ImagePolicy default/app``). Raises :class:`PolicyError`
    naming the field for: no or several strategies, an invalid semver range, an order other than
    ``asc``/``desc``, an invalid pattern, or an extract referring to a group the pattern lacks.
    """
    if not isinstance(spec, Mapping):
        raise PolicyError(where, "spec", f"expected a mapping with a policy, got {spec!r}")
    policy = _strategy(spec.get("policy"), where)
    tag_filter = _filter(spec.get("filterTags"), where)
    return policy if tag_filter is None else FilteredPolicy(policy, tag_filter)


def _strategy(choice: Any, where: str) -> Policy:
    field = "spec.policy"
    expected = f"set exactly one of {', '.join(STRATEGIES)}"
    if choice is None:
        raise PolicyError(where, field, f"required; {expected}")
    if not isinstance(choice, Mapping):
        raise PolicyError(where, field, f"expected a mapping; {expected}, got {choice!r}")
    present = [name for name in STRATEGIES if choice.get(name) is not None]
    if len(present) != 1:
        got = ", ".join(present) if present else "none"
        unknown = sorted(str(key) for key in choice if key not in STRATEGIES)
        hint = f" (unknown: {', '.join(unknown)})" if unknown else ""
        raise PolicyError(where, field, f"{expected}; got {got}{hint}")
    name = present[0]
    value = choice[name]
    if name == "semver":
        return SemverPolicy(_range(value, where))
    order = _order(value, f"{field}.{name}", where)
    return AlphabeticalPolicy(order) if name == "alphabetical" else NumericalPolicy(order)


def _range(value: Any, where: str) -> SemverRange:
    field = "spec.policy.semver.range"
    text = value.get("range") if isinstance(value, Mapping) else None
    if not isinstance(text, str) or not text.strip():
        raise PolicyError(where, field, f"required: a semver range such as '>=1.0.0 <2.0.0', got {text!r}")
    try:
        return SemverRange.parse(text)
    except ValueError as exc:
        problem = str(exc).removeprefix(f"semver range {text!r}: ")
        raise PolicyError(where, field, f"invalid constraint {text!r}: {problem}") from None


def _order(value: Any, field: str, where: str) -> Order:
    if not isinstance(value, Mapping):
        raise PolicyError(where, field, f"expected a mapping such as {{order: asc}}, got {value!r}")
    order = value.get("order")
    if order is None or order == "":
        return DEFAULT_ORDER
    for known in _ORDERS:
        if order == known:
            return known
    raise PolicyError(where, f"{field}.order", f"expected asc or desc, got {order!r}")


def _filter(value: Any, where: str) -> TagFilter | None:
    field = "spec.filterTags"
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise PolicyError(where, field, f"expected a mapping with pattern and extract, got {value!r}")
    pattern_text = value.get("pattern") or ""
    extract = value.get("extract") or ""
    if not isinstance(pattern_text, str):
        raise PolicyError(where, f"{field}.pattern", f"expected a regular expression, got {pattern_text!r}")
    if not isinstance(extract, str):
        raise PolicyError(where, f"{field}.extract", f"expected a string such as '$1', got {extract!r}")
    try:
        pattern = compile_regex(pattern_text)
    except RegexError as exc:
        raise PolicyError(where, f"{field}.pattern", regex_problem(pattern_text, exc)) from None
    if not extract:
        return TagFilter(pattern) if pattern_text else None
    template = parse_template(extract)
    missing = missing_groups(pattern, template)
    if missing:
        refs = ", ".join(str(ref) for ref in missing)
        count = pattern.groups
        groups = "no groups" if count == 0 else f"{count} group" + ("s" if count > 1 else "")
        if pattern.groupindex:
            groups += f", named {', '.join(pattern.groupindex)}"
        raise PolicyError(
            where,
            f"{field}.extract",
            f"{extract!r} refers to {refs}, which pattern {pattern_text!r} lacks (it has {groups})",
        )
    return TagFilter(pattern, template)
