"""Git commit-status types (and ``githubdispatch``): what they share (pure).

A commit status is set on the SHA in the event's revision (``main@sha1:<hex>``, legacy
``main/<hex>``, ``sha1:<hex>`` or a bare hash) under a key naming the object and the Provider,
so each object's status is separate and two Providers (clusters) do not overwrite each other.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urlsplit

from gitops_tasks.notify.message import Event, InvalidProvider, NotSendable, ProviderConfig
from gitops_tasks.notify.providers.formatting import ADDRESS, PROGRESSING_REASON, required

_HASH_LENGTHS = {"sha1": 40, "sha256": 64}
_HEX = re.compile(r"[0-9a-fA-F]+")
#: ``git@host:owner/repo.git`` (scp-like SSH).
_SCP = re.compile(r"^(?:[^@/]+@)?([^:/]+):(?!//)(.+)$")


def commit_sha(revision: str) -> str:
    """The commit hash in a Flux revision, lower-case; :class:`NotSendable` when there is none
    (a chart version, a tag without a hash, an empty revision)."""
    rev = revision.strip()
    if not rev:
        raise NotSendable("the event has no revision to set a commit status on")
    if "@" in rev:
        tail = rev.rsplit("@", 1)[1]
    elif ":" not in rev and "/" in rev:
        tail = rev.rsplit("/", 1)[1]  # legacy <branch>/<hash>
    else:
        tail = rev
    algo, sep, digest = tail.partition(":")
    if not sep:
        algo, digest = ("sha1" if len(tail) == 40 else "sha256"), tail
    if _HASH_LENGTHS.get(algo) != len(digest) or not _HEX.fullmatch(digest):
        raise NotSendable(f"revision {revision!r} names no commit hash")
    return digest.lower()


def event_sha(event: Event) -> str:
    """:func:`commit_sha` of the event's revision (its ``revision`` field, else its metadata's
    ``revision`` key, where Flux's events carry it)."""
    return commit_sha(event.revision or event.metadata.get("revision", ""))


def status_key(provider: ProviderConfig, event: Event) -> str:
    """``kustomization/apps/<8 hex>``: Flux keys a status by the object's kind and name and the
    first segment of the Provider's UID; we hash the Provider's ``namespace/name`` instead."""
    owner = f"{provider.provider_namespace}/{provider.provider_name}"
    return f"{event.kind}/{event.name}/{hashlib.sha256(owner.encode()).hexdigest()[:8]}".lower()


def hashed_status_key(provider: ProviderConfig, event: Event) -> str:
    """The SHA-1 hex of :func:`status_key`: Bitbucket's ``key`` (at most 40 characters)."""
    return hashlib.sha1(status_key(provider, event).encode(), usedforsecurity=False).hexdigest()


def skip_progressing(event: Event) -> None:
    """:class:`NotSendable` for ``Progressing`` events (Flux sets no status for them)."""
    if event.reason == PROGRESSING_REASON:
        raise NotSendable("no commit status for Progressing events")


def parse_address(provider: ProviderConfig) -> tuple[str, str]:
    """``https://github.com/org/app.git`` → ``("https://github.com", "org/app")``; SSH forms
    (``ssh://git@host/org/app``, ``git@host:org/app.git``) give ``https://host``."""
    address = required(provider.address, provider, ADDRESS).strip()
    if "://" in address:
        parts = urlsplit(address)
        scheme = "https" if parts.scheme == "ssh" else parts.scheme
        host, path = parts.netloc.rpartition("@")[2], parts.path
    elif m := _SCP.match(address):
        scheme, host, path = "https", m.group(1), m.group(2)
    else:
        raise InvalidProvider(f"Provider type {provider.type}: address is not a Git repository URL")
    repo = path.strip("/").removesuffix(".git")
    if scheme not in ("http", "https") or not host or not repo:
        raise InvalidProvider(f"Provider type {provider.type}: address is not a Git repository URL")
    return f"{scheme}://{host}", repo


def owner_and_repo(provider: ProviderConfig, repo: str) -> tuple[str, str]:
    """``org/app`` → ``("org", "app")``; :class:`InvalidProvider` for any other depth."""
    parts = repo.split("/")
    if len(parts) != 2 or not all(parts):
        raise InvalidProvider(f"Provider type {provider.type}: address must name <owner>/<repository>")
    return parts[0], parts[1]


def token(provider: ProviderConfig) -> str:
    """The API token: the secret's ``token``, else its ``password`` (as Flux reads them)."""
    return required(provider.token or provider.password, provider, "a token (the secret's token key)")


def state(event: Event, *, info: str, error: str) -> str:
    """The forge's state word for the event's severity."""
    return error if event.severity == "error" else info
