"""The one-method interface every tag policy implements, and the errors policies raise."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol


class Policy(Protocol):
    """Picks the latest tag from a list, as Flux's ``Policer.Latest`` does."""

    def latest(self, tags: Iterable[str]) -> str:
        """The tag the policy selects. Raises :class:`NoMatchingTag` when none qualifies, and
        :class:`UnorderableTag` for a tag the policy cannot order at all."""
        ...


class PolicyError(ValueError):
    """The spec cannot make a policy. The message names the object, the field and the fix."""

    def __init__(self, where: str, field: str, problem: str) -> None:
        self.where = where
        #: The offending field's path, ``spec.policy.semver.range``.
        self.field = field
        self.problem = problem
        super().__init__(f"{where}: {field}: {problem}")


class UnorderableTag(ValueError):
    """A value the policy cannot order (numerical: not a number), which fails the whole policy as
    in Flux. ``value`` is the tag, or with ``spec.filterTags.extract`` the extracted value."""

    def __init__(self, value: str, problem: str) -> None:
        self.value = value
        super().__init__(problem)


def _tags(count: int) -> str:
    return f"{count} tag" if count == 1 else f"{count} tags"


class NoMatchingTag(LookupError):
    """No tag qualifies. ``considered`` tags were offered; ``passed_filter`` of them matched
    ``spec.filterTags.pattern`` (``None`` when there is no filter); ``why`` says what the policy
    wanted. :attr:`detail` is the message without its ``no tag matches`` head."""

    def __init__(
        self,
        why: str,
        *,
        considered: int,
        passed_filter: int | None = None,
        pattern: str | None = None,
    ) -> None:
        self.why = why
        self.considered = considered
        self.passed_filter = passed_filter
        self.pattern = pattern
        counts = f"{_tags(considered)} considered"
        if passed_filter is not None:
            passed = "none" if passed_filter == 0 else str(passed_filter)
            counts += f", {passed} passed spec.filterTags.pattern {pattern!r}"
        self.detail = f"{counts}; {why}" if why else counts
        super().__init__(f"no tag matches the policy: {self.detail}")
