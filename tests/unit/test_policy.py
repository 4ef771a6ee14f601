"""ImagePolicy tag selection (pure): strategies, filterTags, spec errors, no match."""

from __future__ import annotations

from typing import Any

import pytest

from gitops_tasks.objects.semver_range import SemverRange, parse_version
from gitops_tasks.policy import NoMatchingTag, PolicyError, UnorderableTag, build
from gitops_tasks.policy.filter import GroupRef, parse_template


def semver(rng: str, **extra: Any) -> dict[str, Any]:
    return {"policy": {"semver": {"range": rng}}, **extra}


def alpha(order: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"policy": {"alphabetical": {} if order is None else {"order": order}}, **extra}


def num(order: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"policy": {"numerical": {} if order is None else {"order": order}}, **extra}


def filt(pattern: str, extract: str | None = None) -> dict[str, Any]:
    tags: dict[str, Any] = {"pattern": pattern}
    if extract is not None:
        tags["extract"] = extract
    return {"filterTags": tags}


@pytest.mark.parametrize(
    ("spec", "tags", "expected"),
    [
        # semver: highest allowed version; non-semver tags ignored
        (semver(">=1.0.0"), ["1.0.0", "1.2.0", "1.10.0", "1.9.9", "latest"], "1.10.0"),
        (semver("1.0.x"), ["1.0.0", "1.0.7", "1.1.0"], "1.0.7"),
        (semver("~1.0"), ["1.0.3", "1.1.0"], "1.0.3"),
        (semver("^1.0"), ["1.0.0", "1.5.2", "2.0.0"], "1.5.2"),
        (semver(">=1.0 <2.0"), ["0.9.0", "1.9.0", "2.0.0"], "1.9.0"),
        (semver(">0,<2.0"), ["0.1.0", "1.4.0", "2.1.0"], "1.4.0"),
        (semver("=1.0.0"), ["1.0.0", "1.0.1"], "1.0.0"),
        (semver("v1.x"), ["v1.0.0", "v1.3.0"], "v1.3.0"),
        # the original tag is returned, leading v included
        (semver(">=1.0.0"), ["v1.0.0", "v1.1.0", "1.0.5"], "v1.1.0"),
        # 1.0.0.1 and 1.0.0p are not semver: ignored, even though they look greater
        (semver(">=1.0.0"), ["1.0.0", "1.0.0.1", "1.0.0p", "1.0.0-"], "1.0.0"),
        # strict like Flux: 1.2, v2 and a prerelease number with a leading zero are not versions
        (semver(">=1.0.0"), ["1.0.0", "1.2", "v2", "1.0.1-rc.01"], "1.0.0"),
        # ... but leading zeros in MAJOR.MINOR.PATCH are (CalVer such as 2025.02.03)
        (semver(">=2025.1.0"), ["2025.01.31", "2025.02.03", "2024.12.31"], "2025.02.03"),
        # prereleases only when the range names one
        (semver(">=1.0.0"), ["1.0.0", "1.1.0-rc.1"], "1.0.0"),
        (semver(">=1.0.0-0"), ["1.0.0", "1.1.0-rc.1", "1.1.0-rc.2"], "1.1.0-rc.2"),
        (semver(">=1.0.0-0"), ["1.1.0-rc.9", "1.1.0-rc.10"], "1.1.0-rc.10"),
        (semver(">=1.0.0-0"), ["1.1.0-rc.1", "1.1.0"], "1.1.0"),
        # build metadata does not order; equal versions: the greater tag, whatever the list order
        (semver(">=1.0.0"), ["1.0.0+b2", "1.0.0+b1"], "1.0.0+b2"),
        (semver(">=1.0.0"), ["1.0.0+b1", "1.0.0+b2"], "1.0.0+b2"),
        (semver(">=1.0.0"), ["1.0.0", "v1.0.0"], "v1.0.0"),
        # alphabetical: asc (default) picks the greatest (Z), desc the smallest (A)
        (alpha(), ["a", "z", "m"], "z"),
        (alpha("asc"), ["a", "z", "m"], "z"),
        (alpha("desc"), ["a", "z", "m"], "a"),
        (
            alpha(),
            ["RELEASE.2024-01-15T09-30-00Z", "RELEASE.2023-12-31T23-59-59Z"],
            "RELEASE.2024-01-15T09-30-00Z",
        ),
        (alpha(), ["2024.01.15", "2024.01.09", "2023.12.31"], "2024.01.15"),  # CalVer, zero-padded
        (alpha(), ["20240115093000", "20240115092959"], "20240115093000"),  # timestamps
        (alpha(), ["Z", "a"], "a"),  # by code point: lower case sorts after upper case
        (alpha("desc"), ["b", "a", "B"], "B"),
        # numerical: by value as a float (Go's strconv.ParseFloat)
        (num(), ["1", "10", "9"], "10"),
        (num("asc"), ["-5", "-1", "-10"], "-1"),
        (num("desc"), ["-5", "-1", "-10"], "-10"),
        (num(), ["1.5", "1.25", "1.05"], "1.5"),
        (num("desc"), ["1.5", "1.25", "0.75"], "0.75"),
        (num(), ["20240115093000", "20240115092959", "9"], "20240115093000"),
        (num(), ["1e3", "999"], "1e3"),
        (num(), ["1", "1.0", "01"], "1.0"),  # equal values: the greater tag
        (num(), ["5", "1_000", "0x1p4", "1e2"], "1_000"),
        (num(), ["0x1p4", "15"], "0x1p4"),
        (num(), ["5", "Inf"], "Inf"),
        (num(), ["nan", "5", "NaN"], "5"),
        (num("desc"), ["nan", "5"], "5"),
        # filterTags.pattern is searched, not anchored; the original tag is returned
        (alpha(**filt("rc")), ["1.0.0-rc.1", "1.0.0", "2.0.0-rc.1-x"], "2.0.0-rc.1-x"),
        (semver(">=1.0.0-0", **filt(r"-rc\.")), ["1.0.0-rc.1", "1.1.0", "1.0.0-rc.2"], "1.0.0-rc.2"),
        # extract: $1, ${1}, named $ts / ${ts}; ordering by the value, original tag returned
        (
            num(**filt(r"^main-[a-f0-9]+-(\d+)$", "$1")),
            ["main-abc-1700000100", "main-fff-1700000000"],
            "main-abc-1700000100",
        ),
        (
            num(**filt(r"^main-[a-f0-9]+-(\d+)$", "${1}")),
            ["main-abc-9", "main-fff-10", "dev-000-99"],
            "main-fff-10",
        ),
        (
            num("asc", **filt(r"^main-[a-f0-9]+-(?P<ts>[0-9]+)", "$ts")),
            ["main-abc123-1700000000", "main-def456-1700000100", "feature-x-1800000000", "latest"],
            "main-def456-1700000100",
        ),
        (
            num("desc", **filt(r"^main-[a-f0-9]+-(?P<ts>[0-9]+)", "${ts}")),
            ["main-a-20", "main-b-3"],
            "main-b-3",
        ),
        (
            semver("^1.0", **filt(r"^app-(?P<v>.*)$", "$v")),
            ["app-1.0.0", "app-1.4.0", "app-2.0.0", "1.9.0"],
            "app-1.4.0",
        ),
        (
            alpha(**filt(r"^(\d{4})\.(\d{2})\.(\d{2})$", "$1$2$3")),
            ["2024.01.15", "2023.12.31", "x"],
            "2024.01.15",
        ),
        (alpha(**filt(r"^(?P<y>\d+)-(?P<n>\d+)$", "${n}${y}")), ["1-9", "2-1"], "1-9"),  # ${n} then ${y}
    ],
)
def test_latest_selects_like_flux(spec: dict[str, Any], tags: list[str], expected: str) -> None:
    assert build(spec).latest(tags) == expected


def test_two_tags_extracting_the_same_value_the_later_one_wins_like_flux() -> None:
    policy = build(num(**filt(r"-(\d+)$", "$1")))
    assert policy.latest(["a-5", "b-5", "c-1"]) == "b-5"
    assert policy.latest(["b-5", "a-5", "c-1"]) == "a-5"


@pytest.mark.parametrize(
    ("template", "parts"),
    [
        ("$1", (GroupRef(1),)),
        ("${1}", (GroupRef(1),)),
        ("$ts", (GroupRef("ts"),)),
        ("v${ts}-x", ("v", GroupRef("ts"), "-x")),
        ("$1x", (GroupRef("1x"),)),  # Go reads the longest name: $1x is group "1x"
        ("${1}x", (GroupRef(1), "x")),
        ("$01", (GroupRef("01"),)),  # a leading zero makes it a name, not an index
        ("$$1", ("$1",)),
        ("cost: $", ("cost: $",)),
        ("${1", ("${1",)),  # unterminated brace: kept as text
        ("$-", ("$-",)),
        ("", ()),
    ],
)
def test_extract_templates_parse_with_go_expand_rules(template: str, parts: tuple[object, ...]) -> None:
    assert parse_template(template) == parts


@pytest.mark.parametrize(
    ("spec", "field", "fragment"),
    [
        (
            {"policy": {"semver": {"range": "latest"}}},
            "spec.policy.semver.range",
            "invalid constraint 'latest'",
        ),
        (
            {"policy": {"semver": {"range": ">=1.0 <"}}},
            "spec.policy.semver.range",
            "expected a version after '<'",
        ),
        ({"policy": {"semver": {"range": ""}}}, "spec.policy.semver.range", "required"),
        ({"policy": {"semver": {}}}, "spec.policy.semver.range", "required"),
        (
            {"policy": {"alphabetical": {"order": "up"}}},
            "spec.policy.alphabetical.order",
            "asc or desc, got 'up'",
        ),
        ({"policy": {"numerical": {"order": "ASC"}}}, "spec.policy.numerical.order", "asc or desc"),
        ({"policy": {"numerical": "asc"}}, "spec.policy.numerical", "expected a mapping"),
        ({}, "spec.policy", "required; set exactly one of semver, alphabetical, numerical"),
        ({"policy": {}}, "spec.policy", "got none"),
        ({"policy": {"calver": {}}}, "spec.policy", "got none (unknown: calver)"),
        ({"policy": {"semver": {"range": "*"}, "numerical": {}}}, "spec.policy", "got semver, numerical"),
        ({"policy": "semver"}, "spec.policy", "expected a mapping"),
        (alpha(**filt("([")), "spec.filterTags.pattern", "invalid RE2 regular expression: missing ]: ["),
        (alpha(filterTags={"pattern": 5}), "spec.filterTags.pattern", "expected a regular expression"),
        (alpha(**filt("(a)", "$2")), "spec.filterTags.extract", "refers to ${2}, which pattern '(a)' lacks"),
        (alpha(**filt("(?P<ts>a)", "$t")), "spec.filterTags.extract", "(it has 1 group, named ts)"),
        (alpha(**filt("a", "$1")), "spec.filterTags.extract", "(it has no groups)"),
    ],
)
def test_invalid_specs_name_the_object_and_field(spec: dict[str, Any], field: str, fragment: str) -> None:
    with pytest.raises(PolicyError) as caught:
        build(spec, where="ImagePolicy default/app")
    assert str(caught.value).startswith(f"ImagePolicy default/app: {field}: ")
    assert caught.value.field == field
    assert fragment in str(caught.value)


def test_policy_error_is_a_value_error_and_no_match_a_lookup_error() -> None:
    assert issubclass(PolicyError, ValueError)
    assert issubclass(NoMatchingTag, LookupError)


@pytest.mark.parametrize(
    ("spec", "tags", "message"),
    [
        (
            semver("^2.0"),
            ["1.0.0", "latest", "2.0"],
            "no tag matches the policy: 3 tags considered; none is a semver version "
            "(MAJOR.MINOR.PATCH, optional leading v) in range '^2.0'",
        ),
        (alpha(), [], "no tag matches the policy: 0 tags considered; no tags to order"),
        (
            alpha(**filt("^main-")),
            ["dev-1", "latest"],
            "no tag matches the policy: 2 tags considered, none passed spec.filterTags.pattern '^main-'",
        ),
    ],
)
def test_no_match_says_how_many_tags_were_considered_and_passed(
    spec: dict[str, Any], tags: list[str], message: str
) -> None:
    with pytest.raises(NoMatchingTag) as caught:
        build(spec).latest(tags)
    assert str(caught.value) == message
    assert caught.value.considered == len(tags)


@pytest.mark.parametrize(
    ("spec", "tags", "value"),
    [
        (num(), ["1", "10", "latest"], "latest"),
        (num("desc"), ["latest", "1"], "latest"),
        (num(), ["5", "1.0.0"], "1.0.0"),
        (num(), ["5", "0x10"], "0x10"),  # Go: a hexadecimal mantissa needs a p exponent
        (num(), ["5", "1e400"], "1e400"),  # Go: out of range is an error, not +Inf
        (num(), ["5", "1__0"], "1__0"),
        # with filterTags, what the filter keeps (after extract) must be numbers
        (num(**filt("^main-(.*)$", "$1")), ["main-12", "main-abc", "x"], "abc"),
        (num(**filt("^build-")), ["build-1", "build-2", "x"], "build-1"),
    ],
)
def test_numerical_fails_on_a_value_that_is_not_a_number_as_flux_does(
    spec: dict[str, Any], tags: list[str], value: str
) -> None:
    with pytest.raises(UnorderableTag) as caught:
        build(spec).latest(tags)
    assert caught.value.value == value
    assert str(caught.value) == f"{value!r} is not a number"


def test_numerical_with_a_filter_selecting_numbers_ignores_the_rest() -> None:
    assert build(num(**filt("^[0-9]+$"))).latest(["1", "10", "latest", "9"]) == "10"


def test_latest_accepts_any_iterable_once() -> None:
    assert build(num(**filt(r"(\d+)", "$1"))).latest(iter(["a1", "a3", "a2"])) == "a3"


@pytest.mark.parametrize(
    ("tag", "version"),
    [
        ("1.2.3", "1.2.3"),
        ("v1.2.3-rc.1+b.5", "1.2.3-rc.1+b.5"),
        ("0.0.0", "0.0.0"),
        ("1.0.0-0a.1", "1.0.0-0a.1"),
        ("1.2", None),
        ("v1", None),
        ("1.0.0.1", None),
        ("1.0.0p", None),
        # fluxcd/pkg/version ParseVersion: two dots anywhere, then Masterminds' coercing NewVersion
        ("01.2.3", "1.2.3"),
        ("1.02.3", "1.2.3"),
        ("v2025.02.03-rc.1", "2025.2.3-rc.1"),
        ("1.2-rc.1", "1.2.0-rc.1"),
        ("1-rc.1", None),
        ("1.0.0-rc.01", None),
        ("1.0.0-", None),
        ("1.0.0+", None),
        ("1.0.0-rc..1", None),
        ("vv1.0.0", None),
        ("V1.0.0", None),
        ("18446744073709551616.0.0", None),  # does not fit Masterminds' uint64
    ],
)
def test_strict_parse_version_reads_tags_like_flux_image_policy(tag: str, version: str | None) -> None:
    parsed = parse_version(tag, strict=True)
    assert (str(parsed) if parsed else None) == version


def test_strict_highest_ignores_what_the_lenient_one_reads() -> None:
    tags = ["1.2", "1.1.0"]
    assert SemverRange.parse("^1.0").highest(tags) == "1.2"
    assert SemverRange.parse("^1.0").highest(tags, strict=True) == "1.1.0"
