"""SOPS test material: real age identities (X25519 in bech32, as ``age-keygen`` writes them), PGP
keys made by ``gpg`` where it is installed, and files encrypted by the real ``sops`` binary."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from gitops_tasks.sync.sops import find_sops

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
#: Secret values encrypted with the default ``--encrypted-regex`` of Flux's guide.
SECRET_REGEX = "^(data|stringData)$"


def _polymod(values: list[int]) -> int:
    check = 1
    for value in values:
        top = check >> 25
        check = (check & 0x1FFFFFF) << 5 ^ value
        for i, gen in enumerate(_GENERATOR):
            check ^= gen if (top >> i) & 1 else 0
    return check


def _bech32(hrp: str, data: bytes) -> str:
    acc = bits = 0
    words: list[int] = []
    for byte in data:
        acc, bits = (acc << 8) | byte, bits + 8
        while bits >= 5:
            bits -= 5
            words.append((acc >> bits) & 31)
    if bits:
        words.append((acc << (5 - bits)) & 31)
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    mod = _polymod([*expanded, *words, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(mod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[w] for w in words + checksum)


@dataclass(frozen=True)
class AgeKey:
    identity: str  # AGE-SECRET-KEY-1...
    recipient: str  # age1...


def age_key() -> AgeKey:
    private = X25519PrivateKey.generate()
    raw = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return AgeKey(_bech32("age-secret-key-", raw).upper(), _bech32("age", public))


def _env(home: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "SOPS_DISABLE_VERSION_CHECK": "1"}


def encrypt(
    text: str,
    fmt: str,
    *,
    age: str | None = None,
    pgp: str | None = None,
    gnupghome: Path | None = None,
    regex: str | None = SECRET_REGEX,
) -> str:
    """``text`` (in sops format ``fmt``) encrypted by sops for an age recipient or PGP fingerprint."""
    with tempfile.TemporaryDirectory() as home:
        env = _env(Path(home))
        name = f"input.{ {'dotenv': 'env', 'binary': 'bin'}.get(fmt, fmt) }"
        argv = [find_sops(), "--config", os.devnull, "encrypt", "--filename-override", name]
        argv += ["--input-type", fmt, "--output-type", fmt]
        if age:
            argv += ["--age", age]
        if pgp:
            argv += ["--pgp", pgp]
            env["GNUPGHOME"] = str(gnupghome)
        if regex and fmt in ("yaml", "json"):
            argv += ["--encrypted-regex", regex]
        out = subprocess.run(argv, input=text.encode(), env=env, capture_output=True, check=True, timeout=30)
        return out.stdout.decode()


def gpg_available() -> bool:
    return shutil.which("gpg") is not None


@dataclass(frozen=True)
class PGPKey:
    fingerprint: str
    armored_private: str
    home: Path


def _gpg(home: Path, *args: str, check: bool = True) -> str:
    env = {**_env(home), "GNUPGHOME": str(home)}
    out = subprocess.run(list(args), env=env, capture_output=True, text=True, check=check, timeout=120)
    return out.stdout


def pgp_key(home: Path) -> PGPKey:
    """A new passphrase-less PGP key in ``home`` (a GNUPGHOME of the test's own)."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    batch = ("gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "")
    _gpg(home, *batch, "--quick-gen-key", "sops-test@example.invalid", "default", "default", "never")
    listing = _gpg(home, "gpg", "--batch", "--with-colons", "--list-secret-keys")
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    armored = _gpg(home, "gpg", "--batch", "--armor", "--export-secret-keys", fingerprint)
    return PGPKey(fingerprint, armored, home)


def stop_gpg_agent(home: Path) -> None:
    if shutil.which("gpgconf"):
        _gpg(home, "gpgconf", "--kill", "all", check=False)
