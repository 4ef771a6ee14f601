"""Credentials for git remotes: reading secrets, building git's environment, keeping them out of text.

Secrets are read from a directory laid out like a mounted Kubernetes Secret volume,
``<secrets_dir>/<namespace>/<name>/<key>``, with Flux's keys: ``identity`` (+ ``identity.pub``)
and ``known_hosts`` for SSH; ``username``/``password`` or ``bearerToken`` for HTTPS.

Rules this module enforces:

- Credentials reach git through the environment only (``GIT_CONFIG_COUNT``... setting
  ``http.extraHeader``; ``GIT_SSH_COMMAND`` pointing at key files in a private 0700 temp dir),
  never on a command line (visible to every user in ``ps``) and never inside the URL git is given:
  credentials embedded in a URL (``https://user:token@host/repo``) are moved into the header.
- SSH always checks host keys strictly against the secret's ``known_hosts`` (never
  ``accept-new``); an SSH URL without one is stalled. No user or system ssh/git config is read.
- git never prompts (``GIT_TERMINAL_PROMPT=0``, askpass programs that fail), and speaks English
  (``LC_ALL=C``) so :mod:`.gitcli` can classify its errors.
- :func:`mask_url` and :func:`redact` make any text safe for status, events and logs.

Error reasons (all stalled): ``SecretNotFound``, ``InvalidSecret``, ``InvalidURL``.
"""

from __future__ import annotations

import base64
import math
import os
import re
import shlex
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NoReturn
from urllib.parse import unquote, urlsplit, urlunsplit

from gitops_tasks.sources.errors import GitError

Transport = Literal["http", "ssh", "git", "file"]

#: Flux's default ``spec.timeout`` for git operations (seconds).
DEFAULT_TIMEOUT_S = 60.0
#: Upper bound for ssh's ConnectTimeout (seconds); lower when ``spec.timeout`` is shorter.
MAX_CONNECT_TIMEOUT_S = 10
#: The SSH login when the URL names none (Flux's default; git would use the local user's name).
DEFAULT_SSH_USER = "git"
#: What replaces a secret in any text.
MASK = "***"
_SCHEMES: dict[str, Transport] = {
    "http": "http",
    "https": "http",
    "ssh": "ssh",
    "git+ssh": "ssh",
    "ssh+git": "ssh",
    "git": "git",
    "file": "file",
}
_SCP_LIKE = re.compile(r"(?:[^@/:\s]+@)?\[?[^/:\s\]]+\]?:(?!//).+")
# Userinfo runs to the authority's last "@" (a password may hold a raw "@").
_URL_USERINFO = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)([^/\s?#]+)@")
_FALSE = shutil.which("false") or "/bin/false"


def transport_of(url: str) -> Transport:
    """Which transport ``url`` uses. Raises :class:`GitError` ``InvalidURL`` (stalled)."""
    # A URL starting with "-" falls through to InvalidURL: git or ssh would read it as an option.
    if url.startswith("-"):
        return _invalid_url(url)
    if "://" in url:
        scheme = url.split("://", 1)[0].lower()
        if scheme in _SCHEMES:
            return _SCHEMES[scheme]
    elif _SCP_LIKE.fullmatch(url):
        return "ssh"
    return _invalid_url(url)


def _invalid_url(url: str) -> NoReturn:
    raise GitError(
        "InvalidURL",
        f"spec.url {mask_url(url)!r} is not a git URL; expected https://, http://, ssh://, git://, "
        "file:// or user@host:path",
        stalled=True,
    )


def _mask_userinfo(scheme: str, userinfo: str) -> str:
    user, sep, _password = userinfo.partition(":")
    if sep:
        return f"{user}:{MASK}"
    # A bare user on http(s) is usually a token (https://<token>@github.com); on ssh it is a login.
    return MASK if scheme.lower().startswith("http") else user


def mask_url(url: str) -> str:
    """``url`` with any password or token in its userinfo replaced by ``***``.

    ``https://user:pw@h/r`` → ``https://user:***@h/r``; ``https://token@h/r`` → ``https://***@h/r``
    (a lone http user is treated as a token); ``ssh://git@h/r`` is kept (a login, not a secret).
    """
    if "://" not in url:
        return url
    return _URL_USERINFO.sub(lambda m: m.group(1) + _mask_userinfo(m.group(1), m.group(2)) + "@", url)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret value, and the credentials of any URL in it, replaced by ``***``.

    Multi-line secrets (private keys) are also removed line by line, in case a tool echoes a line.
    """
    values: set[str] = set()
    for secret in secrets:
        if secret and secret.strip():
            values.add(secret)
            values.update(line.strip() for line in secret.splitlines() if len(line.strip()) >= 16)
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, MASK)
    return mask_url(text)


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """Split an http(s)/ssh URL into (URL without password/token, username, password), decoded.

    SSH URLs keep their user (it is the login); http(s) URLs lose the whole userinfo.
    """
    if "://" not in url:
        return url, None, None
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, sep, password = userinfo.partition(":")
    keep_user = parts.scheme.lower() in ("ssh", "git+ssh", "ssh+git") and user
    netloc = f"{user}@{hostport}" if keep_user else hostport
    bare = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return bare, unquote(user) or None, unquote(password) if sep else None


def with_default_user(url: str, user: str = DEFAULT_SSH_USER) -> str:
    """An SSH URL with ``user@`` added when it names no user (git would use the local login)."""
    if "://" in url:
        scheme, _, rest = url.partition("://")
        return url if "@" in rest.split("/", 1)[0] else f"{scheme}://{user}@{rest}"
    return url if "@" in url.split(":", 1)[0] else f"{user}@{url}"


def read_secret(secrets_dir: Path, namespace: str, name: str) -> dict[str, str]:
    """Every key of Secret ``namespace/name`` from its mounted-volume directory.

    Dot entries (``..data`` and the timestamped dirs of a real mount) are skipped; key files may
    be symlinks. Raises :class:`GitError` ``SecretNotFound`` (stalled) when the directory is absent.
    """
    directory = Path(secrets_dir) / namespace / name
    if not directory.is_dir():
        raise GitError(
            "SecretNotFound",
            f"Secret {namespace}/{name} (spec.secretRef) not found: no directory {directory}",
            stalled=True,
        )
    return {
        p.name: p.read_text(encoding="utf-8", errors="replace")
        for p in sorted(directory.iterdir())
        if not p.name.startswith(".") and p.is_file()
    }


def base_env() -> dict[str, str]:
    """A git environment that never prompts, reads no user/system config and speaks English."""
    keep = ["PATH", "HOME", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR", "GIT_SSL_CAINFO"]
    keep += ["http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"]
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(
        LC_ALL="C",
        LANG="C",
        GIT_TERMINAL_PROMPT="0",
        GIT_ASKPASS=_FALSE,
        SSH_ASKPASS=_FALSE,
        SSH_ASKPASS_REQUIRE="never",
        GCM_INTERACTIVE="never",
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
    )
    return env


@dataclass(frozen=True)
class Remote:
    """Everything needed to run git against one remote; build it with :func:`open_remote`.

    ``url`` is what git is given (no password or token in it); ``display_url`` is the masked URL
    for messages; ``env`` holds the credentials; ``secrets`` lists every value to redact.
    """

    url: str
    display_url: str
    transport: Transport
    env: Mapping[str, str]
    secrets: tuple[str, ...] = field(default=(), repr=False)
    #: The operation budget (``spec.timeout``, seconds) that timeouts are reported against.
    timeout_s: float = DEFAULT_TIMEOUT_S

    def redact(self, text: str) -> str:
        return redact(text, self.secrets)


def _require(secret: Mapping[str, str], key: str, secret_ref: str, why: str) -> str:
    value = secret.get(key, "")
    if not value.strip():
        raise GitError("InvalidSecret", f"Secret {secret_ref}: key '{key}' missing; {why}", stalled=True)
    return value


def _http_header(
    secret: Mapping[str, str], url_user: str | None, url_password: str | None, secret_ref: str
) -> tuple[str | None, list[str]]:
    """The Authorization header value (or None) and the values to redact."""
    if secret.get("bearerToken", "").strip():
        token = secret["bearerToken"].strip()
        return f"Bearer {token}", [token]
    if "username" in secret or "password" in secret:
        user = _require(
            secret, "username", secret_ref, "basic auth needs both 'username' and 'password'"
        ).strip()
        password = _require(secret, "password", secret_ref, "basic auth needs both 'username' and 'password'")
        password = password.rstrip("\r\n")
    elif url_user is not None:
        user, password = url_user, url_password or ""
    else:
        return None, []
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    hidden = [password, encoded] if url_password is not None or "password" in secret else [user, encoded]
    return f"Basic {encoded}", hidden


def _ssh_command(key_path: Path, known_hosts: Path, connect_timeout_s: int) -> str:
    """``GIT_SSH_COMMAND``: only this key, only this known_hosts, strict, never interactive."""
    options = [
        "IdentitiesOnly=yes",
        "IdentityAgent=none",
        "StrictHostKeyChecking=yes",
        f"UserKnownHostsFile={known_hosts}",
        f"GlobalKnownHostsFile={os.devnull}",
        "UpdateHostKeys=no",
        "BatchMode=yes",
        "PasswordAuthentication=no",
        "KbdInteractiveAuthentication=no",
        f"ConnectTimeout={connect_timeout_s}",
        "LogLevel=ERROR",
    ]
    args = ["ssh", "-F", os.devnull, "-i", str(key_path)]
    for option in options:
        args += ["-o", option]
    return shlex.join(args)


@contextmanager
def open_remote(
    url: str,
    secret: Mapping[str, str] | None,
    *,
    secret_ref: str = "",
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Iterator[Remote]:
    """Yield a :class:`Remote` for ``url`` with ``secret`` (``None`` when no ``secretRef``).

    For SSH the identity and known_hosts are written to a private temp dir that is removed on
    exit, so use the remote inside the ``with``. ``secret_ref`` (``namespace/name``) names the
    secret in messages; ``timeout_s`` is ``spec.timeout`` (seconds). Raises :class:`GitError`
    (stalled) ``InvalidURL`` or ``InvalidSecret``.
    """
    transport = transport_of(url)
    bare_url, url_user, url_password = split_credentials(url)
    env = base_env()
    hidden: list[str] = [v for v in (url_password,) if v]
    display = mask_url(url)
    if transport == "http":
        header, extra = _http_header(secret or {}, url_user, url_password, secret_ref or "(from URL)")
        hidden += extra
        if header is not None:
            env.update(
                GIT_CONFIG_COUNT="1",
                GIT_CONFIG_KEY_0="http.extraHeader",
                GIT_CONFIG_VALUE_0=f"Authorization: {header}",
            )
        yield Remote(bare_url, display, transport, env, tuple(hidden), timeout_s)
        return
    if transport != "ssh":
        yield Remote(bare_url, display, transport, env, tuple(hidden), timeout_s)
        return
    if secret is None:
        raise GitError(
            "InvalidSecret",
            f"spec.secretRef is required for the SSH URL {display}: "
            "a Secret with 'identity' and 'known_hosts'",
            stalled=True,
        )
    bare_url = with_default_user(bare_url)
    ssh_why = "SSH needs a deploy key ('identity') and the server's host key ('known_hosts')"
    identity = _require(secret, "identity", secret_ref, ssh_why)
    known_hosts = _require(
        secret,
        "known_hosts",
        secret_ref,
        "SSH host keys are always checked, so the server's key must be listed there",
    )
    hidden.append(identity)
    tmp = Path(tempfile.mkdtemp(prefix="gitops-ssh-"))
    try:
        key_path, kh_path = tmp / "identity", tmp / "known_hosts"
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(identity if identity.endswith("\n") else identity + "\n")
        kh_path.write_text(known_hosts if known_hosts.endswith("\n") else known_hosts + "\n")
        env.update(
            GIT_SSH_COMMAND=_ssh_command(
                key_path, kh_path, min(MAX_CONNECT_TIMEOUT_S, max(1, math.ceil(timeout_s)))
            ),
            GIT_SSH_VARIANT="ssh",
        )
        yield Remote(bare_url, display, transport, env, tuple(hidden), timeout_s)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
