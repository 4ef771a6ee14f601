"""Parsers for the registry API's headers and bodies (pure, no I/O).

``WWW-Authenticate`` challenges (RFC 7235), ``Retry-After`` (seconds or an HTTP date, RFC 9110),
``Link`` pagination (RFC 8288: relative or absolute, as the distribution spec allows), the
distribution error body (``{"errors": [{"code": ...}]}``) and the token server's answer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin

#: Lifetime of a bearer token whose answer has no ``expires_in`` (the token spec's default).
DEFAULT_TOKEN_LIFETIME_S = 60.0

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_SEPARATORS = re.compile(r"[\s,]*")
_EQUALS = re.compile(r"\s*=(?!=)\s*")
_UNQUOTED = re.compile(r"[^,\s]*")
_TOKEN68 = re.compile(r"\s+([A-Za-z0-9\-._~+/]+=*)\s*(?=,|$)")
_LINK = re.compile(r"<([^>]*)>((?:\s*;\s*[^;,]*)*)")
_LINK_PARAM = re.compile(r";\s*([^=;,\s]+)\s*=\s*(?:\"([^\"]*)\"|([^;,\s]*))")


@dataclass(frozen=True)
class Challenge:
    """One authentication challenge: ``scheme`` lower-cased, parameter names lower-cased."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)


def parse_www_authenticate(header: str | None) -> list[Challenge]:
    """Every challenge in a ``WWW-Authenticate`` value (several headers joined by ``, `` too).

    ``Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull"`` gives
    ``[Challenge("bearer", {"realm": ..., "service": ..., "scope": ...})]``. Unquoted values are
    read up to the next comma or space. Malformed input yields what could be read, never an error.
    """
    text = header or ""
    challenges: list[Challenge] = []
    current: Challenge | None = None
    pos = 0
    while pos < len(text):
        pos = _SEPARATORS.match(text, pos).end()  # type: ignore[union-attr]
        name = _TOKEN.match(text, pos)
        if name is None:
            pos += 1
            continue
        equals = _EQUALS.match(text, name.end())
        if equals is not None:
            quoted = _QUOTED.match(text, equals.end())
            if quoted is not None:
                value, pos = re.sub(r"\\(.)", r"\1", quoted.group(1)), quoted.end()
            else:
                plain = _UNQUOTED.match(text, equals.end())
                value, pos = plain.group(0), plain.end()  # type: ignore[union-attr]
            if current is not None:
                current.params[name.group(0).lower()] = value
            continue
        current = Challenge(name.group(0).lower(), {})
        challenges.append(current)
        pos = name.end()
        token68 = _TOKEN68.match(text, pos)
        if token68 is not None:
            current.params["token68"] = token68.group(1)
            pos = token68.end()
    return challenges


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: ``120`` or ``Wed, 21 Oct 2015 07:28:00 GMT``.

    A date in the past gives 0.0; an absent or unreadable value gives None.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN or infinite
        return None
    return max(0.0, seconds)


def parse_next_link(header: str | None, base_url: str) -> str | None:
    """The absolute URL of the ``rel="next"`` link in a ``Link`` value, resolved against
    ``base_url`` (the page's own URL) when relative; None when there is no next page."""
    for match in _LINK.finditer(header or ""):
        target, params = match.group(1).strip(), match.group(2)
        for param in _LINK_PARAM.finditer(params):
            if param.group(1).lower() != "rel":
                continue
            rels = (param.group(2) if param.group(2) is not None else param.group(3)).lower().split()
            if "next" in rels and target:
                return str(urljoin(base_url, target))
    return None


def error_codes(body: bytes | str | None) -> list[str]:
    """The ``code`` of each entry of a distribution error body (upper case), or ``[]``."""
    if not body:
        return []
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list):
        return []
    return [str(e.get("code", "")).upper() for e in errors if isinstance(e, dict) and e.get("code")]


@dataclass(frozen=True)
class TokenAnswer:
    """A token server's answer: the token and how long it stays valid from ``now``."""

    token: str
    lifetime_s: float


def parse_token_answer(body: bytes | str, *, now: datetime | None = None) -> TokenAnswer | None:
    """Read ``{"token"|"access_token", "expires_in", "issued_at"}``; None without a token.

    ``expires_in`` defaults to 60 s. When ``issued_at`` (RFC 3339) is readable and plausible (not in
    the future, not older than the lifetime) the time already elapsed is subtracted, so a token
    cached by a proxy is not trusted for longer than it lives.
    """
    try:
        data: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    token = data.get("token") or data.get("access_token")
    if not isinstance(token, str) or not token:
        return None
    try:
        lifetime = float(data.get("expires_in") or DEFAULT_TOKEN_LIFETIME_S)
    except (TypeError, ValueError):
        lifetime = DEFAULT_TOKEN_LIFETIME_S
    issued = data.get("issued_at")
    if isinstance(issued, str) and issued:
        try:
            issued_at = datetime.fromisoformat(issued.replace("Z", "+00:00"))
        except ValueError:
            issued_at = None
        if issued_at is not None:
            if issued_at.tzinfo is None:
                issued_at = issued_at.replace(tzinfo=UTC)
            age = ((now or datetime.now(UTC)) - issued_at).total_seconds()
            if 0 <= age <= lifetime:
                lifetime -= age
    return TokenAnswer(token, max(0.0, lifetime))
