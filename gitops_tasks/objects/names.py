"""Object names and namespaces: Kubernetes' DNS-1123 rules, as Flux enforces them (pure)."""

from __future__ import annotations

import re

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def name_problem(value: str) -> str | None:
    """Why ``value`` is not a valid object name (DNS-1123 subdomain), or None."""
    return _dns_problem(value, "name", _DNS_SUBDOMAIN, 253, "digits, '-' and '.'", "DNS-1123 subdomain")


def namespace_problem(value: str) -> str | None:
    """Why ``value`` is not a valid namespace (DNS-1123 label), or None."""
    return _dns_problem(value, "namespace", _DNS_LABEL, 63, "digits and '-'", "DNS-1123 label")


def _dns_problem(
    value: str, what: str, pattern: re.Pattern[str], max_len: int, allowed: str, rule: str
) -> str | None:
    if len(value) <= max_len and pattern.match(value):
        return None
    return (
        f"{value!r} is not a valid {what}: use lower-case letters, {allowed}, starting and ending "
        f"with a letter or digit, at most {max_len} characters ({rule})"
    )
