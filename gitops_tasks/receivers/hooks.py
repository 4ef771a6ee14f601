"""What a verified hook says beyond "something changed": the branch a push moved, the image pushed.

Pure: payload bytes and headers in, a :class:`Hook` out. A payload that names nothing we can use
(an unknown event, a field missing) gives a Hook without ``push`` or ``images``: every resource the
Receiver names is then reconciled, as Flux does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

#: Registry host of images named without one (Docker Hub), and the namespace of single-part names.
DOCKER_HUB = "docker.io"
_DOCKER_HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com")


@dataclass(frozen=True)
class Push:
    """A Git push: the repository's URLs as the forge gave them, the ref moved (``refs/heads/main``)
    and the repository's default branch when the payload names it."""

    urls: frozenset[str]
    ref: str
    default_branch: str | None = None


@dataclass(frozen=True)
class Hook:
    """A verified request: its event (``push``, ``Push Hook``, ``""`` when the type has none), the
    forge's delivery id (for replays), whether it is a ping, and what it names."""

    event: str = ""
    delivery: str = ""
    ping: bool = False
    push: Push | None = None
    #: Normalised image names (``docker.io/library/nginx``) a registry hook says were pushed.
    images: frozenset[str] = field(default_factory=frozenset)


def repo_id(url: str) -> str:
    """A Git URL reduced to what identifies the repository whatever the transport: host and path,
    lower case, without user, port, scheme, ``.git`` or trailing slash.

    ``https://github.com/Org/App.git``, ``git@github.com:org/app`` and
    ``ssh://git@github.com:22/org/app.git`` all give ``github.com/org/app``.
    """
    text = url.strip()
    if "://" in text:
        parts = urlsplit(text)
        host, path = (parts.hostname or ""), parts.path
    elif ":" in text and not text.startswith("/"):
        userhost, _, path = text.partition(":")
        host = userhost.rpartition("@")[2]
    else:
        host, path = "", text
    path = path.rstrip("/")
    if path.endswith(".git"):
        path = path[: -len(".git")]
    return f"{host}/{path.lstrip('/')}".lower()


def image_id(image: str) -> str:
    """An image reference reduced to ``host/path`` without tag or digest, Docker Hub spelled out:
    ``nginx:1.25`` → ``docker.io/library/nginx``; ``ghcr.io/org/app@sha256:…`` → ``ghcr.io/org/app``."""
    text = image.strip()
    for scheme in ("https://", "http://"):
        if text.startswith(scheme):
            text = text[len(scheme) :]
    text = text.split("@", 1)[0]
    first, sep, rest = text.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        host, path = first, rest
    else:
        host, path = DOCKER_HUB, text
    last = path.rsplit("/", 1)
    if ":" in last[-1]:
        path = path[: len(path) - len(last[-1])] + last[-1].split(":", 1)[0]
    if host in _DOCKER_HUB_ALIASES:
        host = DOCKER_HUB
        if "/" not in path:
            path = f"library/{path}"
    return f"{host.lower()}/{path.strip('/').lower()}"


def json_payload(body: bytes, content_type: str = "") -> Any:
    """The JSON document of a body (GitHub's ``application/x-www-form-urlencoded`` form carries it
    in its ``payload`` field). Raises ``ValueError`` when it is not JSON."""
    if content_type.split(";", 1)[0].strip().lower() == "application/x-www-form-urlencoded":
        form = parse_qs(body.decode("utf-8", errors="replace"))
        if "payload" not in form:
            raise ValueError("form body without a payload field")
        return json.loads(form["payload"][0])
    return json.loads(body)


def at(doc: Any, *path: str) -> Any:
    """``doc[path[0]][path[1]]…``, or None where a step is missing or not a mapping."""
    for part in path:
        doc = doc.get(part) if isinstance(doc, Mapping) else None
    return doc


def _strs(*values: Any) -> frozenset[str]:
    return frozenset(v for v in values if isinstance(v, str) and v)


def github_push(doc: Any) -> Push | None:
    ref = at(doc, "ref")
    if not isinstance(ref, str):
        return None
    repo = at(doc, "repository") or {}
    urls = _strs(*(at(repo, k) for k in ("clone_url", "ssh_url", "git_url", "html_url", "url", "svn_url")))
    branch = at(repo, "default_branch") or at(repo, "master_branch")
    return Push(urls, ref, branch if isinstance(branch, str) else None)


def gitlab_push(doc: Any) -> Push | None:
    ref = at(doc, "ref")
    if not isinstance(ref, str):
        return None
    urls = _strs(
        *(at(doc, "project", k) for k in ("git_http_url", "git_ssh_url", "web_url", "http_url", "ssh_url")),
        *(at(doc, "repository", k) for k in ("git_http_url", "git_ssh_url", "url", "homepage")),
    )
    branch = at(doc, "project", "default_branch")
    return Push(urls, ref, branch if isinstance(branch, str) else None)


def registry_images(kind: str, doc: Any) -> frozenset[str]:
    """The images a registry hook of ``kind`` names (empty when the payload names none)."""
    names: list[str] = []
    if kind == "dockerhub":
        names += [v for v in [at(doc, "repository", "repo_name")] if isinstance(v, str)]
    elif kind == "quay":
        names += [v for v in [at(doc, "docker_url")] if isinstance(v, str)]
    elif kind == "harbor":
        for res in at(doc, "event_data", "resources") or []:
            url = at(res, "resource_url")
            if isinstance(url, str):
                names.append(url)
    elif kind == "acr":
        repo, host = at(doc, "target", "repository"), at(doc, "request", "host")
        if isinstance(repo, str) and repo and isinstance(host, str) and host:
            names.append(f"{host}/{repo}")
    elif kind == "gcr":
        tag = at(doc, "tag") or at(doc, "digest")
        if isinstance(tag, str):
            names.append(tag)
    return frozenset(image_id(n) for n in names if n)
