"""Object names and namespaces: Kubernetes' DNS-1123 rules, as Flux enforces them (pure)."""

from __future__ import annotations

import re

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def name_problem(value: str) -> str | None:
    """Why ``value`` is not a valid object name (DNS-1123 subdomain), or None."""
    if len(value) <= 253 and _DNS_SUBDOMAIN.match(value):
        return None
    return (
        f"{value!r} is not a valid name: use lower-case letters, digits, '-' and '.', starting and "
        "ending with a letter or digit, at most 253 characters (DNS-1123 subdomain)"
    )


def namespace_problem(value: str) -> str | None:
    """Why ``value`` is not a valid namespace (DNS-1123 label), or None."""
    if len(value) <= 63 and _DNS_LABEL.match(value):
        return None
    return (
        f"{value!r} is not a valid namespace: use lower-case letters, digits and '-', starting and "
        "ending with a letter or digit, at most 63 characters (DNS-1123 label)"
    )
