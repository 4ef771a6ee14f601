"""``generic-hmac``: ``generic``'s request signed with ``X-Signature: sha256=<hex>``, the HMAC-SHA256
of the exact body keyed with the secret's ``token`` (verify it with ``hmac.compare_digest``)."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac

from gitops_tasks.notify.message import Event, ProviderConfig, Request
from gitops_tasks.notify.providers import generic
from gitops_tasks.notify.providers.formatting import TOKEN, required


def signature(body: bytes, key: str) -> str:
    """``sha256=<hex HMAC-SHA256 of body>``."""
    return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def build(provider: ProviderConfig, event: Event) -> list[Request]:
    key = required(provider.token, provider, TOKEN)
    return [
        dataclasses.replace(req, headers={**req.headers, "X-Signature": signature(req.body, key)})
        for req in generic.build(provider, event)
    ]
