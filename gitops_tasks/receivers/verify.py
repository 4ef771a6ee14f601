"""Each Receiver type's check of a request, as Flux's notification-controller makes it.

Pure: the type, the Receiver's token, its ``spec.events``, the request's headers and body in; a
:class:`~gitops_tasks.receivers.hooks.Hook` out, or :class:`Rejected` with the HTTP status to
answer. Every comparison with a secret is constant-time (``hmac.compare_digest``). Messages never
contain the token or a signature.

Types and what proves a request (Flux's rules):

- ``generic``: the path alone (it is derived from the token).
- ``generic-hmac``: ``X-Signature: <sha1|sha256|sha512>=<hex HMAC of the body>``.
- ``github``: ``X-Hub-Signature-256: sha256=<hex>`` (or the legacy ``X-Hub-Signature: sha1=…``);
  ``X-GitHub-Event`` must be one of ``spec.events`` when it is set; a ``ping`` is answered.
- ``gitlab``: ``X-Gitlab-Token`` equal to the token; ``X-Gitlab-Event`` filtered likewise.
- ``bitbucket`` (Bitbucket Server): ``X-Hub-Signature: sha256=<hex>``; ``X-Event-Key`` filtered;
  ``diagnostics:ping`` is answered.
- ``harbor``: ``Authorization`` equal to the token.
- ``nexus``: ``X-Nexus-Webhook-Signature: <hex HMAC-SHA1 of the body>``.
- ``dockerhub``, ``quay``, ``acr``: the path alone, and a body that decodes as the registry's JSON.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from gitops_tasks.receivers import hooks
from gitops_tasks.receivers.hooks import Hook

#: Flux's prefix of every Receiver's path (``/hook/`` + hex sha256 of token + name + namespace).
HOOK_PATH_PREFIX = "/hook/"

_HMAC_ALGOS: dict[str, Callable[..., Any]] = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
}


class Rejected(Exception):
    """The request is refused: answer ``status`` (401 unauthenticated, 400 unusable) and log
    ``message`` (which names what was wrong, never a secret)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def webhook_path(token: str, name: str, namespace: str) -> str:
    """Flux's path of Receiver ``namespace/name`` with ``token``: the same string Flux computes."""
    digest = hashlib.sha256((token + name + namespace).encode("utf-8")).hexdigest()
    return HOOK_PATH_PREFIX + digest


def header(headers: Mapping[str, str], name: str) -> str:
    """Header ``name`` (any case) or ``""``."""
    value = headers.get(name)
    if value is None:
        lower = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lower), None)
    return value or ""


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _signed(value: str, body: bytes, token: str, *, header_name: str, algos: Sequence[str]) -> None:
    """Check ``<algo>=<hex>`` against the HMAC of ``body``; raise 401 otherwise."""
    if not value:
        raise Rejected(401, f"missing {header_name} header")
    algo, sep, given = value.partition("=")
    algo = algo.strip().lower()
    if not sep or algo not in algos:
        raise Rejected(401, f"{header_name}: expected {'|'.join(algos)}=<hex digest>")
    expected = hmac.new(token.encode("utf-8"), body, _HMAC_ALGOS[algo]).hexdigest()
    if not _same(given.strip().lower(), expected):
        raise Rejected(401, f"{header_name}: signature does not match the body")


def _event_allowed(kind: str, event: str, events: Sequence[str]) -> None:
    if events and not any(event.lower() == e.lower() for e in events):
        raise Rejected(400, f"{kind} event {event!r} is not in spec.events")


def _json(kind: str, body: bytes, content_type: str = "") -> Any:
    try:
        return hooks.json_payload(body, content_type)
    except (ValueError, UnicodeDecodeError):
        raise Rejected(400, f"cannot decode the {kind} payload as JSON") from None


def _github(token: str, headers: Mapping[str, str], body: bytes, events: Sequence[str]) -> Hook:
    sig256 = header(headers, "X-Hub-Signature-256")
    if sig256:
        _signed(sig256, body, token, header_name="X-Hub-Signature-256", algos=("sha256",))
    else:
        sig = header(headers, "X-Hub-Signature")
        _signed(sig, body, token, header_name="X-Hub-Signature", algos=("sha1", "sha256", "sha512"))
    event = header(headers, "X-GitHub-Event")
    hook = Hook(event=event, delivery=header(headers, "X-GitHub-Delivery"))
    if event == "ping":
        return replace(hook, ping=True)
    _event_allowed("GitHub", event, events)
    if event == "push":
        doc = _json("GitHub", body, header(headers, "Content-Type"))
        return replace(hook, push=hooks.github_push(doc))
    return hook


def _gitlab(token: str, headers: Mapping[str, str], body: bytes, events: Sequence[str]) -> Hook:
    if not _same(header(headers, "X-Gitlab-Token"), token):
        raise Rejected(401, "X-Gitlab-Token does not match the Receiver's token")
    event = header(headers, "X-Gitlab-Event")
    _event_allowed("GitLab", event, events)
    hook = Hook(event=event, delivery=header(headers, "X-Gitlab-Event-UUID"))
    if event in ("Push Hook", "Tag Push Hook"):
        return replace(hook, push=hooks.gitlab_push(_json("GitLab", body)))
    return hook


def _bitbucket(token: str, headers: Mapping[str, str], body: bytes, events: Sequence[str]) -> Hook:
    signature = header(headers, "X-Hub-Signature-256") or header(headers, "X-Hub-Signature")
    _signed(signature, body, token, header_name="X-Hub-Signature", algos=("sha1", "sha256", "sha512"))
    event = header(headers, "X-Event-Key")
    hook = Hook(event=event, delivery=header(headers, "X-Request-Id"))
    if event == "diagnostics:ping":
        return replace(hook, ping=True)
    _event_allowed("Bitbucket Server", event, events)
    return hook


def _generic_hmac(token: str, headers: Mapping[str, str], body: bytes, events: Sequence[str]) -> Hook:
    _signed(header(headers, "X-Signature"), body, token, header_name="X-Signature", algos=tuple(_HMAC_ALGOS))
    return Hook()


def _harbor(token: str, headers: Mapping[str, str], body: bytes, events: Sequence[str]) -> Hook:
    if not _same(header(headers, "Authorization"), token):
        raise Rejected(401, "Authorization does not match the Receiver's token")
    try:
        doc = hooks.json_payload(body)
    except (ValueError, UnicodeDecodeError):
        return Hook(event="harbor")
    return Hook(event=str(hooks.at(doc, "type") or ""), images=hooks.registry_images("harbor", doc))


def _nexus(token: str, headers: Mapping[str, str], body: bytes, events: Sequence[str]) -> Hook:
    signature = header(headers, "X-Nexus-Webhook-Signature")
    if not signature:
        raise Rejected(401, "missing X-Nexus-Webhook-Signature header")
    expected = hmac.new(token.encode("utf-8"), body, hashlib.sha1).hexdigest()
    if not _same(signature.strip().lower(), expected):
        raise Rejected(401, "X-Nexus-Webhook-Signature does not match the body")
    _json("Nexus", body)
    return Hook()


def _registry(kind: str) -> Callable[[str, Mapping[str, str], bytes, Sequence[str]], Hook]:
    def check(token: str, headers: Mapping[str, str], body: bytes, events: Sequence[str]) -> Hook:
        doc = _json(kind, body)
        if not isinstance(doc, Mapping):
            raise Rejected(400, f"the {kind} payload is not a JSON object")
        return Hook(images=hooks.registry_images(kind, doc))

    return check


def _generic(token: str, headers: Mapping[str, str], body: bytes, events: Sequence[str]) -> Hook:
    return Hook()


_CHECKS: dict[str, Callable[[str, Mapping[str, str], bytes, Sequence[str]], Hook]] = {
    "generic": _generic,
    "generic-hmac": _generic_hmac,
    "github": _github,
    "gitlab": _gitlab,
    "bitbucket": _bitbucket,
    "harbor": _harbor,
    "dockerhub": _registry("dockerhub"),
    "quay": _registry("quay"),
    "nexus": _nexus,
    "acr": _registry("acr"),
}

#: The Receiver types this engine verifies (``apply`` refuses the others).
VERIFIED_TYPES = tuple(_CHECKS)


def verify(
    kind: str, *, token: str, headers: Mapping[str, str], body: bytes, events: Sequence[str] = ()
) -> Hook:
    """Authenticate one request for a Receiver of type ``kind``; raise :class:`Rejected` if it fails.

    ``events`` is the Receiver's ``spec.events`` (empty: every event). ``token`` is the Secret's
    ``token`` key exactly as stored (Flux does not trim it either).
    """
    check = _CHECKS.get(kind)
    if check is None:
        raise Rejected(400, f"Receiver type {kind!r} is not supported")
    return check(token, headers, body, events)
