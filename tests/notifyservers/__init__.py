"""The tests' own notification services: one loopback HTTP server answering as each provider's real
service does (paths, methods, auth headers and the body fields its documentation requires), and
recording every request.

A request the real service would refuse gets the status and error body that service answers, so a
provider type that builds a wrong request fails its test on the status, not on a snapshot. The
forge routes (GitHub, GitLab, Gitea, Bitbucket, Bitbucket Server, Azure DevOps) also check the SHA
is a commit of a real Git repository (``repos``) and keep statuses per (repository, SHA, key).

``fail(status, times, headers)`` makes the next requests fail (500, 429 with ``Retry-After``...)
for delivery tests. No pytest here: benchmarks can import it.
"""

from __future__ import annotations

# Importing the service modules registers their routes.
from tests.notifyservers import chat, forges, incidents  # noqa: F401
from tests.notifyservers.base import (
    ALERTMANAGER_TOKEN,
    BITBUCKET_PASSWORD,
    BITBUCKET_USER,
    FORGE_TOKEN,
    GOOGLECHAT_QUERY,
    GRAFANA_TOKEN,
    HMAC_KEY,
    MATRIX_TOKEN,
    OPSGENIE_KEY,
    PAGERDUTY_KEY,
    SLACK_TOKEN,
    TELEGRAM_TOKEN,
    WEBEX_TOKEN,
    ZULIP_KEY,
    ZULIP_USER,
    Received,
)
from tests.notifyservers.server import ServiceServer

__all__ = [
    "ALERTMANAGER_TOKEN",
    "BITBUCKET_PASSWORD",
    "BITBUCKET_USER",
    "FORGE_TOKEN",
    "GOOGLECHAT_QUERY",
    "GRAFANA_TOKEN",
    "HMAC_KEY",
    "MATRIX_TOKEN",
    "OPSGENIE_KEY",
    "PAGERDUTY_KEY",
    "SLACK_TOKEN",
    "TELEGRAM_TOKEN",
    "WEBEX_TOKEN",
    "ZULIP_KEY",
    "ZULIP_USER",
    "Received",
    "ServiceServer",
]
