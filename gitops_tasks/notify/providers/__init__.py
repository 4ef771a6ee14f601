"""Provider types: ``build(provider, event)`` → the requests to send (pure; no I/O).

Each type is one module (the Git commit-status types and ``githubdispatch`` in :mod:`.git`);
:data:`BUILDERS` maps ``spec.type`` to its function. Payloads, URLs, headers and severity
mappings follow Flux's notification-controller; the README's table says which ``address``,
``channel`` and secret keys each type reads.
"""

from __future__ import annotations

from collections.abc import Callable

from gitops_tasks.notify.message import Event, ProviderConfig, Request
from gitops_tasks.notify.providers import (
    alertmanager,
    discord,
    generic,
    generic_hmac,
    googlechat,
    grafana,
    lark,
    matrix,
    msteams,
    opsgenie,
    pagerduty,
    rocket,
    slack,
    telegram,
    webex,
    zulip,
)
from gitops_tasks.notify.providers.git import (
    azuredevops,
    bitbucket,
    bitbucketserver,
    gitea,
    github,
    githubdispatch,
    gitlab,
)

Builder = Callable[[ProviderConfig, Event], list[Request]]

BUILDERS: dict[str, Builder] = {
    "generic": generic.build,
    "generic-hmac": generic_hmac.build,
    "slack": slack.build,
    "discord": discord.build,
    "rocket": rocket.build,
    "msteams": msteams.build,
    "googlechat": googlechat.build,
    "webex": webex.build,
    "telegram": telegram.build,
    "matrix": matrix.build,
    "lark": lark.build,
    "zulip": zulip.build,
    "opsgenie": opsgenie.build,
    "pagerduty": pagerduty.build,
    "alertmanager": alertmanager.build,
    "grafana": grafana.build,
    "github": github.build,
    "gitlab": gitlab.build,
    "gitea": gitea.build,
    "bitbucket": bitbucket.build,
    "bitbucketserver": bitbucketserver.build,
    "azuredevops": azuredevops.build,
    "githubdispatch": githubdispatch.build,
}

#: The types this engine sends, sorted.
SUPPORTED: tuple[str, ...] = tuple(sorted(BUILDERS))

#: The commit-status types: they need a revision with a commit hash.
COMMIT_STATUS: frozenset[str] = frozenset(
    {"github", "gitlab", "gitea", "bitbucket", "bitbucketserver", "azuredevops"}
)


def build(provider: ProviderConfig, event: Event) -> list[Request]:
    """The requests for ``event``, in the order to send them. Raises ``KeyError`` for a type not
    in :data:`BUILDERS`, :class:`~gitops_tasks.notify.message.NotSendable` when the event cannot go
    to this provider (a commit status without a commit, a ``Progressing`` event for PagerDuty) and
    :class:`~gitops_tasks.notify.message.InvalidProvider` when the Provider lacks what the type
    needs (its message names the field, never a secret)."""
    return BUILDERS[provider.type](provider, event)
