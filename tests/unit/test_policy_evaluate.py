"""ImagePolicy outcomes (pure): reasons, messages, facts and retries from evaluate()."""

from __future__ import annotations

from typing import Any

import pytest

from gitops_tasks.objects.model import Object
from gitops_tasks.policy import DEFAULT_NO_MATCH_RETRY_S, evaluate

IMAGE = "ghcr.io/x/y"
TAGS = ["1.0.0", "1.1.0", "2.0.0", "latest"]


def policy(rng: str = "^1.0", **spec: Any) -> Object:
    full = {"imageRepositoryRef": {"name": "y"}, "policy": {"semver": {"range": rng}}, **spec}
    return Object("image.toolkit.fluxcd.io/v1", "ImagePolicy", "app", "default", full)


def status(tag: str, **extra: Any) -> dict[str, Any]:
    return {"latestImage": f"{IMAGE}:{tag}", "latestRef": {"name": IMAGE, "tag": tag}, **extra}


def test_first_resolution_is_a_change_with_flux_wording() -> None:
    out = evaluate(policy(), TAGS, image=IMAGE, previous_status={})
    assert (out.result, out.reason, out.changed) == ("success", "Succeeded", True)
    assert out.message == "Latest image tag for 'ghcr.io/x/y' resolved to 1.1.0"
    assert out.facts == {"latestImage": "ghcr.io/x/y:1.1.0", "latestRef": {"name": IMAGE, "tag": "1.1.0"}}
    assert out.revision == "ghcr.io/x/y:1.1.0"
    assert out.event_reason is None  # the event carries the Ready reason, Succeeded, as Flux's does


def test_update_records_the_previous_image_and_says_from_what() -> None:
    out = evaluate(policy(), TAGS, image=IMAGE, previous_status=status("1.0.0"))
    assert (out.result, out.changed) == ("success", True)
    assert out.message == "Latest image tag for 'ghcr.io/x/y' updated from 1.0.0 to 1.1.0"
    assert out.facts["latestImage"] == "ghcr.io/x/y:1.1.0"
    assert out.facts["observedPreviousImage"] == "ghcr.io/x/y:1.0.0"
    assert out.facts["observedPreviousRef"] == {"name": IMAGE, "tag": "1.0.0"}


def test_unchanged_is_not_a_change_and_keeps_the_update_message_and_digest() -> None:
    prev = status("1.1.0", observedPreviousImage="ghcr.io/x/y:1.0.0")
    prev["latestRef"]["digest"] = "sha256:abc"
    out = evaluate(policy(), TAGS, image=IMAGE, previous_status=prev)
    assert (out.result, out.changed) == ("success", False)
    assert out.message == "Latest image tag for 'ghcr.io/x/y' updated from 1.0.0 to 1.1.0"
    assert "observedPreviousImage" not in out.facts  # the stored one stays
    assert out.facts["latestRef"] == {"name": IMAGE, "tag": "1.1.0", "digest": "sha256:abc"}


def test_unchanged_without_history_says_resolved() -> None:
    out = evaluate(policy(), TAGS, image=IMAGE, previous_status=status("1.1.0"))
    assert not out.changed
    assert out.message == "Latest image tag for 'ghcr.io/x/y' resolved to 1.1.0"


def test_a_new_image_name_is_a_change_and_names_the_whole_previous_image() -> None:
    prev = {"latestImage": "docker.io/x/y:1.1.0"}
    out = evaluate(policy(), TAGS, image=IMAGE, previous_status=prev)
    assert out.changed
    assert out.message == "Latest image tag for 'ghcr.io/x/y' updated from docker.io/x/y:1.1.0 to 1.1.0"
    assert "observedPreviousRef" not in out.facts


def test_image_with_registry_port_keeps_the_tag_apart() -> None:
    image = "localhost:5000/app"
    out = evaluate(policy(), ["1.0.1"], image=image, previous_status={"latestImage": f"{image}:1.0.0"})
    assert out.message == "Latest image tag for 'localhost:5000/app' updated from 1.0.0 to 1.0.1"


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        (
            {"policy": {"semver": {"range": "latest"}}},
            "spec.policy.semver.range: invalid constraint 'latest'",
        ),
        ({"policy": {"alphabetical": {"order": "up"}}}, "spec.policy.alphabetical.order"),
        ({"policy": {}}, "spec.policy: set exactly one of"),
        ({"policy": {"numerical": {}}, "filterTags": {"pattern": "(["}}, "spec.filterTags.pattern"),
    ],
)
def test_invalid_policy_stalls_with_the_object_and_field(spec: dict[str, Any], fragment: str) -> None:
    obj = Object("image.toolkit.fluxcd.io/v1", "ImagePolicy", "app", "default", spec)
    out = evaluate(obj, TAGS, image=IMAGE, previous_status=status("1.0.0"))
    assert (out.result, out.reason, out.changed) == ("stalled", "InvalidPolicy", False)
    assert out.message.startswith("ImagePolicy default/app: ")
    assert fragment in out.message
    assert out.facts == {}


def test_no_matching_tag_waits_without_backoff_and_keeps_the_last_image() -> None:
    out = evaluate(policy("^3.0"), TAGS, image=IMAGE, previous_status=status("1.0.0"))
    assert (out.result, out.reason, out.changed) == ("waiting", "NoMatchingTag", False)
    assert out.message.startswith("no tag of 'ghcr.io/x/y' matches the policy: 4 tags considered; ")
    assert "'^3.0'" in out.message
    assert out.facts == {}  # the stored latestImage is left as it was
    assert out.retry_after_s == DEFAULT_NO_MATCH_RETRY_S


def test_no_matching_tag_retries_at_the_policy_interval_when_it_has_one() -> None:
    obj = policy("^3.0", interval="10m", digestReflectionPolicy="Always")
    assert evaluate(obj, TAGS, image=IMAGE, previous_status={}).retry_after_s == 600.0


def test_no_match_counts_the_filter() -> None:
    obj = policy("^1.0", filterTags={"pattern": "^release-"})
    out = evaluate(obj, TAGS, image=IMAGE, previous_status={})
    assert out.reason == "NoMatchingTag"
    assert "4 tags considered, none passed spec.filterTags.pattern '^release-'" in out.message


def test_no_tags_at_all_is_a_dependency_not_ready() -> None:
    out = evaluate(policy(), [], image=IMAGE, previous_status={})
    assert (out.result, out.reason) == ("waiting", "DependencyNotReady")
    assert "'ghcr.io/x/y'" in out.message


def test_an_invalid_policy_is_reported_even_without_tags() -> None:
    obj = policy("latest")
    assert evaluate(obj, [], image=IMAGE, previous_status={}).reason == "InvalidPolicy"


def test_filter_extract_returns_the_original_tag_in_facts() -> None:
    spec = {
        "imageRepositoryRef": {"name": "y"},
        "policy": {"numerical": {"order": "asc"}},
        "filterTags": {"pattern": r"^main-[a-f0-9]+-(?P<ts>[0-9]+)", "extract": "$ts"},
    }
    obj = Object("image.toolkit.fluxcd.io/v1", "ImagePolicy", "app", "default", spec)
    tags = ["main-abc123-1700000000", "main-def456-1700000100", "latest"]
    out = evaluate(obj, tags, image=IMAGE, previous_status={})
    assert out.facts["latestRef"] == {"name": IMAGE, "tag": "main-def456-1700000100"}


def numerical(**spec: Any) -> Object:
    full = {"imageRepositoryRef": {"name": "y"}, "policy": {"numerical": {"order": "asc"}}, **spec}
    return Object("image.toolkit.fluxcd.io/v1", "ImagePolicy", "app", "default", full)


def test_numerical_on_a_non_numeric_tag_stalls_naming_the_tag_and_the_fix() -> None:
    out = evaluate(numerical(), ["1", "2", "latest"], image=IMAGE, previous_status=status("1"))
    assert (out.result, out.reason) == ("stalled", "InvalidPolicy")
    assert out.message == (
        "ImagePolicy default/app: spec.policy.numerical: tag 'latest' of 'ghcr.io/x/y' is not a "
        "number; every tag must be one: select numeric tags with spec.filterTags.pattern, "
        "e.g. '^[0-9]+$'"
    )
    assert out.facts == {}  # the last good latestImage stays in the stored status


def test_numerical_with_a_filter_keeping_a_non_number_says_to_narrow_it() -> None:
    spec = {"filterTags": {"pattern": "^main-(.*)$", "extract": "$1"}}
    out = evaluate(numerical(**spec), ["main-1", "main-x"], image=IMAGE, previous_status={})
    assert (out.result, out.reason) == ("stalled", "InvalidPolicy")
    assert "'x', kept by spec.filterTags from a tag of 'ghcr.io/x/y', is not a number" in out.message
    assert "narrow spec.filterTags.pattern" in out.message
