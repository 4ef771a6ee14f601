"""Provider types: ``build(provider, event)`` → the requests to send (pure; no I/O).

Each type is one module; :data:`BUILDERS` maps ``spec.type`` to its function.
"""

from __future__ import annotations

from collections.abc import Callable

from gitops_tasks.notify.message import Event, ProviderConfig, Request
from gitops_tasks.notify.providers import generic

Builder = Callable[[ProviderConfig, Event], list[Request]]

BUILDERS: dict[str, Builder] = {
    "generic": generic.build,
}

#: The types this engine sends, sorted.
SUPPORTED: tuple[str, ...] = tuple(sorted(BUILDERS))


def build(provider: ProviderConfig, event: Event) -> list[Request]:
    """The requests for ``event``. Raises ``KeyError`` for a type not in :data:`BUILDERS` and
    :class:`~gitops_tasks.notify.message.NotSendable` when the event cannot go to this provider."""
    return BUILDERS[provider.type](provider, event)
