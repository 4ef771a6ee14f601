"""Ref selection, semver ranges, revision text and masking: pure, no git, no servers."""

from __future__ import annotations

from typing import Any

import pytest

from gitops_tasks.objects.semver_range import SemverRange, parse_version
from gitops_tasks.sources.credentials import mask_url, redact
from gitops_tasks.sources.errors import GitError
from gitops_tasks.sources.refs import RemoteRefs, choose_ref, revision_of

A, B, C, D, E = ("a" * 40, "b" * 40, "c" * 40, "d" * 40, "e" * 40)
T1, T2 = ("1" * 40, "2" * 40)  # annotated tag objects

LS_REMOTE = f"""ref: refs/heads/main\tHEAD
{A}\tHEAD
{B}\trefs/heads/develop
{A}\trefs/heads/main
{C}\trefs/pull/1/head
{D}\trefs/tags/v1.0.0
{T1}\trefs/tags/v1.1.0
{E}\trefs/tags/v1.1.0^{{}}
{T2}\trefs/tags/v2.0.0-rc.1
{B}\trefs/tags/v2.0.0-rc.1^{{}}
{C}\trefs/tags/latest
{D}\trefs/tags/1.0.5
"""
REMOTE = RemoteRefs.parse(LS_REMOTE)
URL = "https://example.test/org/app.git"


def test_parse_ls_remote_keeps_symref_and_peeled_entries() -> None:
    assert REMOTE.head_target == "refs/heads/main"
    assert REMOTE.refs["refs/tags/v1.1.0"] == T1
    assert REMOTE.commit_of("refs/tags/v1.1.0") == E
    assert REMOTE.commit_of("refs/heads/main") == A
    assert REMOTE.tags() == ["1.0.5", "latest", "v1.0.0", "v1.1.0", "v2.0.0-rc.1"]


@pytest.mark.parametrize(
    ("ref", "revision", "ref_name", "kind"),
    [
        (None, f"main@sha1:{A}", "refs/heads/main", "head"),
        ({}, f"main@sha1:{A}", "refs/heads/main", "head"),
        ({"branch": "develop"}, f"develop@sha1:{B}", "refs/heads/develop", "branch"),
        ({"branch": "refs/heads/develop"}, f"develop@sha1:{B}", "refs/heads/develop", "branch"),
        ({"tag": "v1.0.0"}, f"v1.0.0@sha1:{D}", "refs/tags/v1.0.0", "tag"),
        ({"tag": "v1.1.0"}, f"v1.1.0@sha1:{E}", "refs/tags/v1.1.0", "tag"),  # annotated: peeled commit
        ({"semver": ">=1.0.0 <2.0.0"}, f"v1.1.0@sha1:{E}", "refs/tags/v1.1.0", "semver"),
        ({"semver": "~1.0"}, f"1.0.5@sha1:{D}", "refs/tags/1.0.5", "semver"),
        ({"semver": ">=2.0.0-0"}, f"v2.0.0-rc.1@sha1:{B}", "refs/tags/v2.0.0-rc.1", "semver"),
        ({"name": "refs/pull/1/head"}, f"refs/pull/1/head@sha1:{C}", "refs/pull/1/head", "name"),
        ({"name": "refs/tags/v1.1.0"}, f"refs/tags/v1.1.0@sha1:{E}", "refs/tags/v1.1.0", "name"),
        ({"commit": C}, f"sha1:{C}", "refs/heads/main", "commit"),
        ({"commit": C.upper()}, f"sha1:{C}", "refs/heads/main", "commit"),
        ({"commit": C, "branch": "develop"}, f"develop@sha1:{C}", "refs/heads/develop", "commit"),
    ],
)
def test_choose_ref_revision_and_ref(
    ref: dict[str, Any] | None, revision: str, ref_name: str, kind: str
) -> None:
    choice = choose_ref(REMOTE, ref, url=URL)
    assert (choice.revision, choice.ref_name, choice.kind) == (revision, ref_name, kind)
    assert choice.revision.endswith(choice.commit)


@pytest.mark.parametrize(
    ("ref", "kind"),
    [
        (
            {"commit": C, "name": "refs/pull/1/head", "semver": "*", "tag": "v1.0.0", "branch": "main"},
            "commit",
        ),
        ({"name": "refs/pull/1/head", "semver": "*", "tag": "v1.0.0", "branch": "main"}, "name"),
        ({"semver": "*", "tag": "v1.0.0", "branch": "main"}, "semver"),
        ({"tag": "v1.0.0", "branch": "main"}, "tag"),
        ({"branch": "main"}, "branch"),
    ],
)
def test_choose_ref_follows_flux_precedence(ref: dict[str, Any], kind: str) -> None:
    assert choose_ref(REMOTE, ref, url=URL).kind == kind


def test_no_ref_follows_head_by_sha_when_symref_not_advertised() -> None:
    remote = RemoteRefs.from_pairs([(B, "HEAD"), (A, "refs/heads/a-branch"), (B, "refs/heads/trunk")])
    assert choose_ref(remote, None, url=URL).revision == f"trunk@sha1:{B}"


def test_no_ref_prefers_main_among_branches_at_head() -> None:
    remote = RemoteRefs.from_pairs([(B, "HEAD"), (B, "refs/heads/aaa"), (B, "refs/heads/main")])
    assert choose_ref(remote, None, url=URL).ref_name == "refs/heads/main"


def test_no_ref_and_no_head_falls_back_to_master() -> None:
    remote = RemoteRefs.from_pairs([(B, "refs/heads/master"), (A, "refs/heads/main")])
    assert choose_ref(remote, None, url=URL).revision == f"master@sha1:{B}"


def test_pinned_commit_without_any_branch_is_fetched_by_sha() -> None:
    remote = RemoteRefs.from_pairs([(D, "refs/tags/v1")])
    choice = choose_ref(remote, {"commit": C}, url=URL)
    assert (choice.revision, choice.ref_name) == (f"sha1:{C}", None)


def test_sha256_revisions_say_so() -> None:
    assert revision_of("main", "f" * 64) == "main@sha256:" + "f" * 64
    assert revision_of(None, "f" * 40) == "sha1:" + "f" * 40


@pytest.mark.parametrize(
    ("ref", "reason", "result", "words"),
    [
        ({"branch": "nope"}, "RefNotFound", "waiting", "branch 'nope'"),
        ({"tag": "v9"}, "RefNotFound", "waiting", "tag 'v9'"),
        ({"name": "refs/pull/9/head"}, "RefNotFound", "waiting", "ref 'refs/pull/9/head'"),
        ({"commit": C, "branch": "gone"}, "RefNotFound", "waiting", "branch 'gone'"),
        ({"semver": ">=3.0.0"}, "NoMatchingTag", "waiting", "'>=3.0.0'"),
        ({"semver": ">=1.0.0 <<2"}, "InvalidRef", "stalled", "spec.ref.semver"),
        ({"commit": "abc123"}, "InvalidRef", "stalled", "spec.ref.commit"),
    ],
)
def test_choose_ref_errors_say_what_and_what_next(
    ref: dict[str, Any], reason: str, result: str, words: str
) -> None:
    with pytest.raises(GitError) as info:
        choose_ref(REMOTE, ref, url=URL)
    assert (info.value.reason, info.value.result) == (reason, result)
    assert words in info.value.message


# --------------------------------------------------------------------------- semver ranges

VERSIONS = [
    "0.0.3",
    "0.3.1",
    "0.4.0",
    "1.0.0-rc.1",
    "1.0.0",
    "1.2.0",
    "1.2.9",
    "1.3.0",
    "1.9.9",
    "2.0.0-alpha",
    "2.0.0",
    "2.5.0",
]


@pytest.mark.parametrize(
    ("constraint", "allowed"),
    [
        (">=1.0.0 <2.0.0", ["1.0.0", "1.2.0", "1.2.9", "1.3.0", "1.9.9"]),
        (">=1.0.0, <2.0.0", ["1.0.0", "1.2.0", "1.2.9", "1.3.0", "1.9.9"]),
        (">= v1.0.0 , < 2", ["1.0.0", "1.2.0", "1.2.9", "1.3.0", "1.9.9"]),
        ("~1.2", ["1.2.0", "1.2.9"]),
        ("~1.2.3", ["1.2.9"]),
        ("~>1.2.1", ["1.2.9"]),
        ("~1", ["1.0.0", "1.2.0", "1.2.9", "1.3.0", "1.9.9"]),
        ("^1.0", ["1.0.0", "1.2.0", "1.2.9", "1.3.0", "1.9.9"]),
        ("^1.2.5", ["1.2.9", "1.3.0", "1.9.9"]),
        ("^0.3", ["0.3.1"]),
        ("^0.0.3", ["0.0.3"]),
        ("1.x", ["1.0.0", "1.2.0", "1.2.9", "1.3.0", "1.9.9"]),
        ("1.2.*", ["1.2.0", "1.2.9"]),
        ("=1.2", ["1.2.0", "1.2.9"]),
        ("1.2.0", ["1.2.0"]),
        ("v1.2.0", ["1.2.0"]),
        (">1.2", ["1.3.0", "1.9.9", "2.0.0", "2.5.0"]),
        ("<=1.2", ["0.0.3", "0.3.1", "0.4.0", "1.0.0", "1.2.0", "1.2.9"]),
        ("<1.2", ["0.0.3", "0.3.1", "0.4.0", "1.0.0"]),
        (">1, <2", []),  # Masterminds: >1 means >=2.0.0
        (">1.0, <2", ["1.2.0", "1.2.9", "1.3.0", "1.9.9"]),
        ("1.2 - 1.3", ["1.2.0", "1.2.9", "1.3.0"]),
        ("<0.4.0 || >=2.0.0", ["0.0.3", "0.3.1", "2.0.0", "2.5.0"]),
        ("!=1.2.0, 1.x", ["1.0.0", "1.2.9", "1.3.0", "1.9.9"]),
        ("*", ["0.0.3", "0.3.1", "0.4.0", "1.0.0", "1.2.0", "1.2.9", "1.3.0", "1.9.9", "2.0.0", "2.5.0"]),
        # prereleases only when a comparator of the AND group names one (Masterminds' Check)
        (
            ">=1.0.0-0",
            ["1.0.0-rc.1", "1.0.0", "1.2.0", "1.2.9", "1.3.0", "1.9.9", "2.0.0-alpha", "2.0.0", "2.5.0"],
        ),
        (
            ">=1.0.0-0 <2.0.0",
            ["1.0.0-rc.1", "1.0.0", "1.2.0", "1.2.9", "1.3.0", "1.9.9", "2.0.0-alpha"],
        ),
        (">=1.0.0 <2.0.0 || >=2.0.0-0", [*VERSIONS[4:9], "2.0.0-alpha", "2.0.0", "2.5.0"]),
        (">=2.0.0-alpha <3.0.0-0", ["2.0.0-alpha", "2.0.0", "2.5.0"]),
    ],
)
def test_semver_range_matches_like_masterminds(constraint: str, allowed: list[str]) -> None:
    rng = SemverRange.parse(constraint)
    assert [v for v in VERSIONS if rng.allows(parse_version(v))] == allowed  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", "  ", ">=", "1.2.3.4", "latest", ">=1.0 ||", "=> =1", "1.0 - "])
def test_semver_range_rejects_nonsense_with_the_expected_form(bad: str) -> None:
    with pytest.raises(ValueError, match="semver range"):
        SemverRange.parse(bad)


def test_highest_ignores_non_version_tags_and_accepts_v_prefix() -> None:
    tags = ["latest", "release-3", "v1.2.3", "1.10.0", "v1.9.0", "2.0.0-rc.1", "v1.10"]
    assert SemverRange.parse("^1.0").highest(tags) == "v1.10"  # 1.10.0 twice: the greater tag name
    assert SemverRange.parse("<1.5").highest(tags) == "v1.2.3"
    assert SemverRange.parse(">=3").highest(tags) is None


@pytest.mark.parametrize(
    ("tag", "version"),
    [
        ("v1", "1.0.0"),
        ("1.2", "1.2.0"),
        ("v1.2.3-rc.1+b.5", "1.2.3-rc.1+b.5"),
        ("latest", None),
        ("v1.2.3.4", None),
    ],
)
def test_parse_version_is_lenient_like_flux(tag: str, version: str | None) -> None:
    parsed = parse_version(tag)
    assert (str(parsed) if parsed else None) == version


# --------------------------------------------------------------------------- masking


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("https://user:s3cret@host/org/repo.git", "https://user:***@host/org/repo.git"),
        ("https://ghp_token123@github.com/org/repo", "https://***@github.com/org/repo"),
        ("http://u:p%40ss@127.0.0.1:8080/r.git", "http://u:***@127.0.0.1:8080/r.git"),
        ("https://u:p@ss@host/r.git", "https://u:***@host/r.git"),
        ("see https://t0k@h/r and https://h/x", "see https://***@h/r and https://h/x"),
        ("ssh://git@github.com/org/repo.git", "ssh://git@github.com/org/repo.git"),
        ("ssh://git:pw@host:22/r.git", "ssh://git:***@host:22/r.git"),
        ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
        ("https://github.com/org/repo", "https://github.com/org/repo"),
    ],
)
def test_mask_url_hides_passwords_and_tokens(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_redact_removes_secret_values_and_url_credentials() -> None:
    body = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ"
    key = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\n-----END OPENSSH PRIVATE KEY-----\n"
    text = (
        "fatal: could not fetch https://bob:hunter2-long@h/r.git with token tkn-abcdef "
        "key line b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ"
    )
    out = redact(text, ["tkn-abcdef", key, ""])
    assert "hunter2-long" not in out and "tkn-abcdef" not in out and "b3BlbnNzaC1rZXkt" not in out
    assert "https://bob:***@h/r.git" in out


def test_ref_semver_reads_tags_as_flux_parse_version() -> None:
    # Flux's GitRepository reads tags with fluxcd/pkg/version ParseVersion: 'v1.9' (one dot) is not
    # a version, so ^1.0 picks v1.1.0 rather than v1.9.
    remote = RemoteRefs.parse(LS_REMOTE + f"{C}\trefs/tags/v1.9\n")
    choice = choose_ref(remote, {"semver": "^1.0"}, url=URL)
    assert choice.ref_name == "refs/tags/v1.1.0"
