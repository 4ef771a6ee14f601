"""Regular expressions from users run on RE2, as Flux's Go ``regexp`` does: linear time, Go syntax.

Patterns such as ``^(a+)+$`` backtrack exponentially on Python's ``re`` (a 30-character tag took
seconds, doubling per character); the tests below would hang there, and pytest's timeout stops
them. No timing is asserted: each test checks the result.
"""

from __future__ import annotations

import textwrap

import pytest

from gitops_tasks.automation.v1 import TagPattern
from gitops_tasks.objects import LoadError, load_text
from gitops_tasks.objects.regex import RegexError, compile_regex
from gitops_tasks.policy import NoMatchingTag, build
from gitops_tasks.registry.scan import exclusion_patterns, without_excluded
from gitops_tasks.sync.envsubst import EnvsubstError, expand
from tests.registryfixtures import image_repository

#: Long enough that a backtracking engine would not return within the test timeout.
HOSTILE_TAG = "a" * 64 + "!"
CATASTROPHIC = "^(a+)+$"


def _load_errors(text: str) -> list[str]:
    with pytest.raises(LoadError) as info:
        load_text(textwrap.dedent(text).lstrip("\n"), filename="objects.yaml")
    return info.value.errors


@pytest.mark.timeout(30)
def test_a_catastrophic_filter_pattern_returns_the_right_answer() -> None:
    policy = build({"policy": {"alphabetical": {}}, "filterTags": {"pattern": CATASTROPHIC}})
    assert policy.latest([HOSTILE_TAG, "aaaa", "aa"]) == "aaaa"
    with pytest.raises(NoMatchingTag):
        policy.latest([HOSTILE_TAG])


@pytest.mark.timeout(30)
def test_a_catastrophic_exclusion_pattern_returns_the_right_answer() -> None:
    patterns = exclusion_patterns(image_repository("app", "ghcr.io/a/b", exclusionList=[CATASTROPHIC]))
    assert without_excluded([HOSTILE_TAG, "aaa", "1.0.0"], patterns) == [HOSTILE_TAG, "1.0.0"]


@pytest.mark.timeout(30)
def test_a_catastrophic_flux_v1_regex_filter_returns_the_right_answer() -> None:
    pattern = TagPattern.parse(f"regex:{CATASTROPHIC}")
    assert pattern.choose([HOSTILE_TAG, "aaa"]) == "aaa"
    assert not pattern.matches(HOSTILE_TAG)


@pytest.mark.timeout(30)
def test_a_glob_in_a_substitution_does_not_backtrack() -> None:
    value = "a" * 300
    glob = "*a" * 12 + "*b"
    assert expand("${V/" + glob + "/x}", {"V": value}) == value
    assert expand("${V%%a*}", {"V": "xa" + value}) == "x"


def test_named_groups_extract_as_before() -> None:
    policy = build(
        {
            "policy": {"numerical": {"order": "asc"}},
            "filterTags": {"pattern": r"^main-[a-f0-9]+-(?P<ts>[0-9]+)", "extract": "$ts"},
        }
    )
    tags = ["main-abc1-1700000002", "main-ff00-1700000010", "dev-aa-9"]
    assert policy.latest(tags) == "main-ff00-1700000010"
    go_style = build(
        {
            "policy": {"alphabetical": {"order": "asc"}},
            "filterTags": {"pattern": r"^v(?<minor>[0-9]+)\.x$", "extract": "${minor}"},
        }
    )
    assert go_style.latest(["v1.x", "v3.x", "v2.x"]) == "v3.x"


@pytest.mark.parametrize(
    ("pattern", "matching", "other"),
    [
        (r"^[0-9]+\.[0-9]+\.[0-9]+$", "1.22.3", "1.22.3-rc.1"),
        (r"(?i)^RELEASE-", "release-7", "pre-release-7"),
        (r"^\p{L}+-\d+$", "ünïcode-1", "x-y"),
        (r"^[[:alpha:]]+$", "latest", "v1"),
        (r"^v\Q1.0\E$", "v1.0", "v1x0"),
    ],
)
def test_go_syntax_flux_users_write_compiles_and_matches(pattern: str, matching: str, other: str) -> None:
    compiled = compile_regex(pattern)
    assert compiled.search(matching) is not None
    assert compiled.search(other) is None


@pytest.mark.parametrize(
    ("pattern", "lacks"),
    [
        ("^(?!rc).*$", "look-aheads"),
        ("(?<=v)1", "look-behinds"),
        (r"(a)\1", "back-references"),
        ("(?P<x>a)(?P=x)", "back-references"),
    ],
)
def test_perl_only_constructs_are_refused_with_the_reason(pattern: str, lacks: str) -> None:
    with pytest.raises(RegexError, match=f"RE2, which Flux uses, has no {lacks}"):
        compile_regex(pattern)


def test_the_single_byte_class_go_refuses_is_refused() -> None:
    with pytest.raises(RegexError, match=r"\\C"):
        compile_regex(r"^a\Cb")
    assert compile_regex(r"^a\\Cb").search("a\\Cb") is not None


def test_look_arounds_and_back_references_are_apply_errors_naming_file_object_and_field() -> None:
    errors = _load_errors(
        r"""
        apiVersion: image.toolkit.fluxcd.io/v1
        kind: ImagePolicy
        metadata: {name: app}
        spec:
          imageRepositoryRef: {name: app}
          filterTags:
            pattern: '^(?!rc)(?P<v>.*)$'
            extract: $v
          policy: {alphabetical: {}}
        ---
        apiVersion: image.toolkit.fluxcd.io/v1
        kind: ImageRepository
        metadata: {name: app}
        spec:
          image: ghcr.io/org/app
          interval: 5m
          exclusionList: ['^.*\.sig$', '(a)\1']
        ---
        apiVersion: notification.toolkit.fluxcd.io/v1beta3
        kind: Alert
        metadata: {name: ops}
        spec:
          providerRef: {name: slack}
          eventSources: [{kind: Kustomization, name: '*'}]
          inclusionList: ['(?<=sha1:)[0-9a-f]+']
          exclusionList: ['.*error.*']
        """
    )
    assert errors == [
        "objects.yaml:7: ImagePolicy default/app: spec.filterTags.pattern: invalid RE2 regular "
        "expression: invalid perl operator: (?! (RE2, which Flux uses, has no look-aheads) "
        "(pattern '^(?!rc)(?P<v>.*)$')",
        "objects.yaml:17: ImageRepository default/app: spec.exclusionList[1]: invalid RE2 regular "
        "expression: invalid escape sequence: \\1 (RE2, which Flux uses, has no back-references) "
        "(pattern '(a)\\\\1')",
        "objects.yaml:25: Alert default/ops: spec.inclusionList[0]: invalid RE2 regular expression: "
        "invalid perl operator: (?<= (RE2, which Flux uses, has no look-behinds) "
        "(pattern '(?<=sha1:)[0-9a-f]+')",
    ]


def test_an_invalid_v1_regex_annotation_is_an_error() -> None:
    with pytest.raises(ValueError, match="has no look-aheads"):
        TagPattern.parse("regexp:^(?!dev)")


def test_an_invalid_substitution_glob_is_a_substitution_error() -> None:
    with pytest.raises(EnvsubstError, match="invalid pattern"):
        expand("${V/[[:bogus:]]/x}", {"V": "abc"})
