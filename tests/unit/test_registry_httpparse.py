"""Parsing the registry API's headers and bodies: WWW-Authenticate, Retry-After, Link, tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gitops_tasks.registry.httpparse import (
    Challenge,
    error_codes,
    parse_next_link,
    parse_retry_after,
    parse_token_answer,
    parse_www_authenticate,
)
from gitops_tasks.registry.tokens import cache_ttl_s


def test_docker_hub_bearer_challenge() -> None:
    header = (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/nginx:pull"'
    )
    assert parse_www_authenticate(header) == [
        Challenge(
            "bearer",
            {
                "realm": "https://auth.docker.io/token",
                "service": "registry.docker.io",
                "scope": "repository:library/nginx:pull",
            },
        )
    ]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('Basic realm="Registry Realm"', [Challenge("basic", {"realm": "Registry Realm"})]),
        (
            "bearer realm=https://x/token,service=s",
            [Challenge("bearer", {"realm": "https://x/token", "service": "s"})],
        ),
        ('Bearer realm = "x" , scope="a b"', [Challenge("bearer", {"realm": "x", "scope": "a b"})]),
        (
            'Bearer realm="a\\"b",error="insufficient_scope"',
            [Challenge("bearer", {"realm": 'a"b', "error": "insufficient_scope"})],
        ),
        (
            'Basic realm="x", Bearer realm="https://a/t",service="s"',
            [
                Challenge("basic", {"realm": "x"}),
                Challenge("bearer", {"realm": "https://a/t", "service": "s"}),
            ],
        ),
        (
            "Negotiate abc==, Basic realm=x",
            [
                Challenge("negotiate", {"token68": "abc=="}),
                Challenge("basic", {"realm": "x"}),
            ],
        ),
        ("Bearer", [Challenge("bearer", {})]),
        ("", []),
        (None, []),
    ],
)
def test_www_authenticate_variants(header: str | None, expected: list[Challenge]) -> None:
    assert parse_www_authenticate(header) == expected


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    now = datetime(2024, 1, 15, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("Mon, 15 Jan 2024 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Mon, 15 Jan 2024 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("-5") == 0.0
    for bad in (None, "", "soon", "nan", "inf"):
        assert parse_retry_after(bad) is None


def test_next_link_relative_absolute_and_absent() -> None:
    page = "http://127.0.0.1:5000/v2/a/b/tags/list?n=100"
    assert (
        parse_next_link('</v2/a/b/tags/list?n=100&last=1.0.9>; rel="next"', page)
        == "http://127.0.0.1:5000/v2/a/b/tags/list?n=100&last=1.0.9"
    )
    assert parse_next_link("<https://r.example/v2/x/tags/list?last=z>; rel=next", page) == (
        "https://r.example/v2/x/tags/list?last=z"
    )
    assert (
        parse_next_link('<?n=2&last=b>; rel="next"', page)
        == "http://127.0.0.1:5000/v2/a/b/tags/list?n=2&last=b"
    )
    assert parse_next_link('</first>; rel="first", </n>; rel="prev next"', page) == "http://127.0.0.1:5000/n"
    assert parse_next_link('</prev>; rel="prev"', page) is None
    assert parse_next_link(None, page) is None


def test_error_codes_from_a_distribution_error_body() -> None:
    body = b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"},{"code":"denied"}]}'
    assert error_codes(body) == ["TOOMANYREQUESTS", "DENIED"]
    assert error_codes(b"<html>") == [] and error_codes(b'{"errors": 3}') == [] and error_codes(None) == []


def test_token_answer_lifetime_defaults_and_issued_at() -> None:
    now = datetime(2024, 1, 15, 12, 0, 0, tzinfo=UTC)
    assert parse_token_answer(b'{"token": "t"}') is not None
    assert parse_token_answer(b'{"token": "t"}').lifetime_s == 60.0  # type: ignore[union-attr]
    answer = parse_token_answer(b'{"access_token": "a", "expires_in": 300}')
    assert answer is not None and (answer.token, answer.lifetime_s) == ("a", 300.0)
    issued = (now - timedelta(seconds=100)).strftime("%Y-%m-%dT%H:%M:%SZ")
    aged = parse_token_answer(f'{{"token": "t", "expires_in": 300, "issued_at": "{issued}"}}', now=now)
    assert aged is not None and aged.lifetime_s == 200.0
    future = (now + timedelta(hours=1)).isoformat()
    skewed = parse_token_answer(f'{{"token": "t", "expires_in": 300, "issued_at": "{future}"}}', now=now)
    assert skewed is not None and skewed.lifetime_s == 300.0  # implausible clocks are ignored
    assert parse_token_answer(b'{"expires_in": 300}') is None
    assert parse_token_answer(b"not json") is None


def test_tokens_are_cached_with_a_margin_before_expiry() -> None:
    assert cache_ttl_s(60) == 50.0
    assert cache_ttl_s(300) == 290.0
    assert cache_ttl_s(8) == 6.0  # the margin is at most a quarter of the lifetime
    assert cache_ttl_s(1) == 0.0  # too short to share
