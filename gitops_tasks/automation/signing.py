"""Commit signing with ``spec.git.commit.signingKey``, done by git itself.

Secrets follow Flux: ``type: gpg`` (the default) reads an armored OpenPGP private key from the
key ``git.asc`` (and ``passphrase`` if it is protected); ``type: ssh`` reads an OpenSSH private
key from ``identity``. The Secret lives in the automation's namespace and is read from the mounted
Secret-volume directory (``<secrets_dir>/<namespace>/<name>/<key>``).

- SSH: git's ``gpg.format=ssh`` signs with ``ssh-keygen -Y sign`` and the key written to a private
  temp file. Passphrase-protected SSH keys are refused (``ssh-keygen`` could only be given the
  passphrase on its command line, where every user sees it).
- GPG: the key is imported into a throw-away ``GNUPGHOME``; git runs a small wrapper that points
  ``gpg`` at it and feeds the passphrase from a 0600 file. The agent is stopped afterwards.

Errors are :class:`~gitops_tasks.sources.errors.GitError` ``InvalidSigningKey`` (stalled).
I/O: reads the Secret, writes key material only inside a 0700 temp dir removed on exit.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitops_tasks import children
from gitops_tasks.sources import GitError

#: Secret keys, as Flux names them.
GPG_KEY, GPG_PASSPHRASE, SSH_KEY, SSH_PASSWORD = "git.asc", "passphrase", "identity", "password"
#: Seconds a key import may take.
DEFAULT_IMPORT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class SigningKey:
    kind: str  # "gpg" or "ssh"
    secret_ref: str
    secret: Mapping[str, str] = field(repr=False)


def _invalid(message: str) -> GitError:
    return GitError("InvalidSigningKey", message, stalled=True)


def read_signing_key(secrets_dir: Path, namespace: str, spec: Mapping[str, Any] | None) -> SigningKey | None:
    """The key ``spec.git.commit.signingKey`` names, or None when signing is not configured."""
    if not spec:
        return None
    name = str((spec.get("secretRef") or {}).get("name") or "")
    kind = str(spec.get("type") or "gpg")
    ref = f"{namespace}/{name}"
    directory = Path(secrets_dir) / namespace / name
    if not name or not directory.is_dir():
        raise _invalid(f"Secret {ref} (spec.git.commit.signingKey.secretRef) not found in {secrets_dir}")
    secret = {
        p.name: p.read_text(encoding="utf-8", errors="replace")
        for p in sorted(directory.iterdir())
        if not p.name.startswith(".") and p.is_file()
    }
    needed = SSH_KEY if kind == "ssh" else GPG_KEY
    if not secret.get(needed, "").strip():
        raise _invalid(f"Secret {ref}: key '{needed}' missing; {kind} signing needs it")
    if kind == "ssh" and secret.get(SSH_PASSWORD, "").strip():
        raise _invalid(f"Secret {ref}: passphrase-protected SSH signing keys are not supported")
    return SigningKey(kind, ref, secret)


@contextmanager
def signing_config(key: SigningKey | None) -> Iterator[list[str]]:
    """``git -c`` arguments that make ``git commit`` sign with ``key`` (none when ``key`` is None)."""
    if key is None:
        yield ["-c", "commit.gpgSign=false"]
        return
    tmp = Path(tempfile.mkdtemp(prefix="gitops-sign-"))
    try:
        os.chmod(tmp, 0o700)
        if key.kind == "ssh":
            path = _write_private(tmp / "signing_key", key.secret[SSH_KEY])
            yield ["-c", "gpg.format=ssh", "-c", f"user.signingKey={path}", "-c", "commit.gpgSign=true"]
        else:
            yield _gpg_config(tmp, key)
    finally:
        if key.kind == "gpg":
            with suppress(OSError, subprocess.SubprocessError):
                children.run(["gpgconf", "--homedir", str(tmp / "gnupg"), "--kill", "all"], timeout_s=10)
        shutil.rmtree(tmp, ignore_errors=True)


def _write_private(path: Path, content: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content if content.endswith("\n") else content + "\n")
    return path


def _gpg_config(tmp: Path, key: SigningKey) -> list[str]:
    gpg = shutil.which("gpg")
    if gpg is None:
        raise _invalid(f"Secret {key.secret_ref}: GPG signing needs the gpg program, which is not installed")
    home = tmp / "gnupg"
    home.mkdir(mode=0o700)
    env = {"GNUPGHOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
    passphrase = _write_private(tmp / "passphrase", key.secret.get(GPG_PASSPHRASE, "").rstrip("\r\n"))
    base = [gpg, "--batch", "--pinentry-mode", "loopback", "--passphrase-file", str(passphrase)]
    try:
        timeout_s = DEFAULT_IMPORT_TIMEOUT_S
        children.run(
            [*base, "--import"], input=key.secret[GPG_KEY].encode(), env=env, timeout_s=timeout_s
        ).check_returncode()
        listed = children.run(
            [gpg, "--batch", "--with-colons", "--list-secret-keys"], env=env, timeout_s=timeout_s
        )
        listed.check_returncode()
        listing = listed.stdout.decode(errors="replace")
    except (subprocess.SubprocessError, OSError):
        raise _invalid(
            f"Secret {key.secret_ref}: '{GPG_KEY}' is not an importable OpenPGP private key"
        ) from None
    fingerprints = [line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")]
    if not fingerprints:
        raise _invalid(f"Secret {key.secret_ref}: '{GPG_KEY}' holds no secret key")
    wrapper = tmp / "gpg-wrapper"
    script = (
        f'#!/bin/sh\nGNUPGHOME={shlex.quote(str(home))}\nexport GNUPGHOME\nexec {shlex.join(base)} "$@"\n'
    )
    wrapper.write_text(script)
    wrapper.chmod(0o700)
    return [
        "-c",
        f"gpg.program={wrapper}",
        "-c",
        f"user.signingKey={fingerprints[0]}",
        "-c",
        "commit.gpgSign=true",
    ]
