"""What a sync decrypts with SOPS (``spec.decryption``), and when, as Flux's kustomize-controller.

- **Before a kustomize build** (:meth:`Decryptor.sources`, around each ``kubectl kustomize``): the
  files of ``secretGenerator`` (``files`` in the format their key's extension names, ``envs`` as
  dotenv unless their extension says otherwise) and local ``patches[].path`` files, in every
  kustomization the build reaches through ``resources`` and ``components``; each at most
  :data:`MAX_ENCRYPTED_FILE_BYTES`. Encrypted resource files are decrypted there too, so that
  kustomize's own changes (a ``namespace:``, labels) do not break their MAC. Files are decrypted in
  place in the (private) checkout, mode 0600, up to ``DEFAULT_PARALLEL`` sops runs side by side,
  and put back as they were as soon as kustomize has read them.
- **Plain YAML files** (:meth:`Decryptor.prefetch`, :meth:`Decryptor.file_text`): a file whose
  documents all carry ``sops`` metadata is decrypted whole, in memory, before it is parsed; a
  directory's files side by side.
- **After the build** (:meth:`Decryptor.documents`): every document still carrying ``sops.mac``,
  and the ``data`` values of Secrets that hold a SOPS-encrypted file (detected by its MAC marker),
  decrypted in the format of their key's extension.

``kustomize.toolkit.fluxcd.io/decrypt: Disabled`` (any case) on a document leaves it as it is.
sops checks every MAC (Flux skips that check): a document changed after it was encrypted fails.
A document carrying ``sops.mac`` while ``spec.decryption`` is unset fails too, rather than reach
the cluster encrypted. Every failure is a :class:`~gitops_tasks.sync.errors.DecryptionError`
naming the file or object; values never appear in it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import json
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from gitops_tasks.boundedyaml import safe_load
from gitops_tasks.objects.model import Object
from gitops_tasks.sync.errors import ClusterError, DecryptionError
from gitops_tasks.sync.inputs import SecretReader
from gitops_tasks.sync.manifests import Manifest, ManifestError, documents, dump, load_one
from gitops_tasks.sync.sops import AGE_SUFFIX, Keyring

#: Annotation that leaves one document encrypted (value ``Disabled``, compared without case).
DECRYPT_ANNOTATION = "kustomize.toolkit.fluxcd.io/decrypt"
#: Largest file decrypted before a build (Flux's limit).
MAX_ENCRYPTED_FILE_BYTES = 5 * 2**20
#: sops runs side by side when a build holds many encrypted files (each run is a process start of
#: about 25 ms; see BENCHMARKS.md for how the share of a sync falls with it).
DEFAULT_PARALLEL = 4
#: What each format's encrypted form contains (its MAC), as Flux detects them.
MARKERS: dict[str, bytes] = {
    "dotenv": b"sops_mac=ENC[",
    "yaml": b"mac: ENC[",
    "ini": b"[sops]",
    "json": b'"mac": "ENC[',
}
#: Decrypted values shorter than this are not redacted from messages (they would match anywhere).
MIN_REDACTED_CHARS = 4
#: Parts of a message that may quote a piece of a value (quoted text, a ``${...}`` expression).
_QUOTED_PART = re.compile(r"'[^']*'|\"[^\"]*\"|\$\{[^}\s]*\}?")
_KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def format_for_path(path: str) -> str:
    """sops' format for a file name (Flux's rule: by extension, ``.dockerconfigjson`` is JSON)."""
    name = path.lower()
    if name.endswith(".dockerconfigjson") or name.endswith(".json"):
        return "json"
    if name.endswith((".yaml", ".yml")):
        return "yaml"
    if name.endswith(".env"):
        return "dotenv"
    if name.endswith(".ini"):
        return "ini"
    return "binary"


def disabled(obj: Mapping[str, Any]) -> bool:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(DECRYPT_ANNOTATION, "")).lower() == "disabled"


def encrypted(obj: Any) -> bool:
    """A document carrying ``sops.mac`` (Flux's test for an encrypted resource)."""
    return isinstance(obj, dict) and isinstance(obj.get("sops"), dict) and bool(obj["sops"].get("mac"))


def describe(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    parts = [str(obj.get("kind")), str(meta.get("namespace") or ""), str(meta.get("name"))]
    return "/".join(p for p in parts if p)


def _detect(value: bytes) -> str | None:
    """The format of a SOPS-encrypted file held in a Secret value, or ``None``."""
    for fmt, marker in MARKERS.items():
        if marker in value:
            if fmt == "json":
                with contextlib.suppress(ValueError):
                    loaded = json.loads(value)
                    if isinstance(loaded, dict) and set(loaded) <= {"data", "sops"}:
                        return "binary"
            return fmt
    return None


def _leaves(data: Any) -> list[str]:
    if isinstance(data, dict):
        return [leaf for value in data.values() for leaf in _leaves(value)]
    if isinstance(data, list):
        return [leaf for value in data for leaf in _leaves(value)]
    return [] if data is None or isinstance(data, bool) else [str(data)]


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _remote(entry: str) -> bool:
    return "://" in entry or entry.startswith(("git@", "github.com/", "gitlab.com/", "bitbucket.org/"))


class Decryptor:
    """One render's decryption: ``keyring`` is ``None`` when ``spec.decryption`` is unset (then an
    encrypted document fails the sync). Close it (it removes the keys)."""

    def __init__(self, keyring: Keyring | None, *, parallel: int | None = None) -> None:
        self.keyring = keyring
        self.parallel = parallel or DEFAULT_PARALLEL
        #: sops runs made so far (for the benchmark and the tests).
        self.calls = 0
        #: ``rel → (text, plaintext)`` of files :meth:`prefetch` decrypted, until the build reads them.
        self._prefetched: dict[str, tuple[str, str]] = {}
        #: Decrypted values, to keep out of error messages (:meth:`redact`).
        self._plaintexts: set[str] = set()
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return self.keyring is not None

    def close(self) -> None:
        self._prefetched.clear()
        self._plaintexts.clear()
        if self.keyring is not None:
            self.keyring.close()

    def __enter__(self) -> Decryptor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _decrypt(self, data: bytes, fmt: str, out: str, what: str) -> bytes:
        if self.keyring is None:
            raise DecryptionError(f"{what} is SOPS-encrypted and spec.decryption is not set")
        self.calls += 1
        plain = self.keyring.decrypt(data, input_type=fmt, output_type=out, what=what)
        self._remember(data, plain, out)
        return plain

    def _remember(self, data: bytes, plain: bytes, fmt: str) -> None:
        """Note the values ``plain`` holds that ``data`` did not (the decrypted ones), for
        :meth:`redact`."""
        text, original = plain.decode(errors="replace"), data.decode(errors="replace")
        values: list[str] = []
        if fmt in ("yaml", "json"):
            with contextlib.suppress(ManifestError):  # bounded: no alias bombs
                for _, _, doc in documents(text, "decrypted"):
                    values += _leaves(doc)
        elif fmt in ("dotenv", "ini"):
            values = [line.partition("=")[2].strip() for line in text.splitlines()]
        else:
            values = [text, *text.splitlines()]
        found = {v for v in values if len(v) >= MIN_REDACTED_CHARS and v not in original}
        with self._lock:
            self._plaintexts |= found

    def redact(self, message: str) -> str:
        """``message`` with every decrypted value this decryptor produced replaced."""
        with self._lock:
            plaintexts = sorted(self._plaintexts, key=len, reverse=True)
        for value in plaintexts:
            message = message.replace(value, "<redacted>")

        def quoted(match: re.Match[str]) -> str:
            inner = match.group(0).strip("'\"").strip().removeprefix("${").removesuffix("}")
            hit = len(inner) >= MIN_REDACTED_CHARS and any(inner in value for value in plaintexts)
            return "<redacted>" if hit else match.group(0)

        return _QUOTED_PART.sub(quoted, message) if plaintexts else message

    # -- whole YAML files ---------------------------------------------------------------------

    def _whole_file(self, text: str, rel: str) -> str | None:
        """The plaintext of a YAML file whose documents all carry sops metadata, else ``None``."""
        if self.keyring is None or MARKERS["yaml"].decode() not in text:
            return None
        try:
            docs = [data for _, _, data in documents(text, rel)]
        except ManifestError:
            return None  # the build reports it
        if not docs or not all(encrypted(d) and not disabled(d) for d in docs):
            return None
        return self._decrypt(text.encode(), "yaml", "yaml", rel).decode()

    def file_text(self, text: str, rel: str) -> str:
        """A plain manifest file's text, decrypted when it is a SOPS-encrypted YAML file."""
        if rel in self._prefetched:
            cached = self._prefetched.pop(rel)
            if cached[0] == text:
                return cached[1]
        plain = self._whole_file(text, rel)
        return text if plain is None else plain

    def prefetch(self, files: list[Path], root: Path) -> None:
        """Decrypt the encrypted ones of ``files`` (a directory's YAML files) at once, up to
        ``parallel`` sops runs side by side, for :meth:`file_text` to take. A file that cannot be
        read or decrypted here is left for :meth:`file_text`, which reports it."""
        if self.keyring is None:
            return
        wanted: list[tuple[str, str]] = []
        marker = MARKERS["yaml"].decode()
        for file in files:
            real = file.resolve()
            if not _inside(real, root.resolve()) or not real.is_file():
                continue
            with contextlib.suppress(OSError, UnicodeDecodeError, ValueError):
                if real.stat().st_size <= MAX_ENCRYPTED_FILE_BYTES:
                    text = real.read_text(encoding="utf-8")
                    if marker in text:
                        wanted.append((file.relative_to(root).as_posix(), text))
        if len(wanted) < 2:
            return

        def one(item: tuple[str, str]) -> None:
            rel, text = item
            with contextlib.suppress(DecryptionError):
                plain = self._whole_file(text, rel)
                if plain is not None:
                    self._prefetched[rel] = (text, plain)

        with ThreadPoolExecutor(
            max_workers=min(self.parallel, len(wanted)), thread_name_prefix="sops"
        ) as pool:
            list(pool.map(one, wanted))

    # -- before a kustomize build ---------------------------------------------------------------

    @contextlib.contextmanager
    def sources(self, directory: Path, root: Path) -> Iterator[None]:
        """Decrypt, in place, the encrypted files the kustomization in ``directory`` reaches (see
        the module docstring) for the length of the block, then put them back as they were."""
        changed: list[tuple[Path, bytes, int]] = []
        try:
            if self.keyring is not None:
                root = root.resolve()
                jobs: dict[Path, tuple[Path, str | None, bool]] = {}
                self._visit(directory, root, jobs, set())
                workers = max(1, min(self.parallel, len(jobs)))
                with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sops") as pool:
                    prepared = list(pool.map(lambda j: self._prepare(j[0], j[1], j[2], root), jobs.values()))
                for real, original, mode, out in filter(None, prepared):
                    changed.append((real, original, mode))
                    os.chmod(real, 0o600)
                    fd = os.open(real, os.O_WRONLY | os.O_TRUNC)
                    with os.fdopen(fd, "wb") as handle:
                        handle.write(out)
            yield
        finally:
            for path, original, mode in reversed(changed):
                fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(original)
                os.chmod(path, mode)

    def _visit(
        self, directory: Path, root: Path, jobs: dict[Path, tuple[Path, str | None, bool]], seen: set[Path]
    ) -> None:
        """Collect (by resolved path) the files to decrypt that ``directory``'s kustomization reaches."""
        real = directory.resolve()
        if real in seen or not _inside(real, root):
            return
        seen.add(real)
        file = next((real / n for n in _KUSTOMIZATION_FILES if (real / n).is_file()), None)
        if file is None:
            return
        try:
            data: Any = safe_load(file.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return  # the build reports it
        if not isinstance(data, dict):
            return

        def visit(entry: Any, fmt: str | None, *, source: bool = True) -> None:
            if isinstance(entry, str) and entry and not _remote(entry):
                jobs.setdefault((real / entry).resolve(), (real / entry, fmt, source))

        for generator in data.get("secretGenerator") or []:
            if not isinstance(generator, dict):
                continue
            for entry in generator.get("files") or []:
                key, _, path = str(entry).partition("=")
                visit(path or key, format_for_path(key))
            envs = list(generator.get("envs") or []) + ([generator["env"]] if generator.get("env") else [])
            for entry in envs:
                fmt = format_for_path(str(entry))
                visit(entry, "dotenv" if fmt == "binary" else fmt)
        for patch in data.get("patches") or []:
            if isinstance(patch, dict):
                visit(patch.get("path"), format_for_path(str(patch.get("path") or "")))
        for entry in [*(data.get("resources") or []), *(data.get("components") or [])]:
            if not isinstance(entry, str) or _remote(entry):
                continue
            target = real / entry
            if target.is_dir():
                self._visit(target, root, jobs, seen)
            elif entry.endswith((".yaml", ".yml")):
                visit(entry, None, source=False)

    def _prepare(
        self, path: Path, fmt: str | None, source: bool, root: Path
    ) -> tuple[Path, bytes, int, bytes] | None:
        """``(path, original bytes, mode, plaintext)`` of one file to decrypt in place, or ``None``
        when it is not encrypted (``fmt`` ``None``: a resource file, decrypted only whole)."""
        real = path.resolve()
        if not _inside(real, root) or not real.exists():
            return None
        rel = real.relative_to(root).as_posix()
        info = real.lstat()
        if not real.is_file():
            raise DecryptionError(f"{rel}: cannot decrypt a file that is not a regular file")
        if info.st_size > MAX_ENCRYPTED_FILE_BYTES:
            if not source:
                return None
            raise DecryptionError(
                f"{rel}: cannot decrypt a file of {info.st_size} bytes (the limit is "
                f"{MAX_ENCRYPTED_FILE_BYTES // 2**20} MiB)"
            )
        original = real.read_bytes()
        if fmt is None:
            plain = self._whole_file(original.decode("utf-8", errors="replace"), rel)
            if plain is None:
                return None
            return real, original, info.st_mode & 0o7777, plain.encode()
        if MARKERS["json" if fmt == "binary" else fmt] not in original:
            return None
        return real, original, info.st_mode & 0o7777, self._decrypt(original, fmt, fmt, rel)

    # -- after the build ------------------------------------------------------------------------

    def documents(self, manifests: list[Manifest]) -> list[Manifest]:
        """``manifests`` with encrypted documents and Secret values decrypted (new objects where
        something was decrypted). Raises :class:`DecryptionError` for the first failure."""
        jobs: list[tuple[int, Callable[[], dict[str, Any]]]] = []
        for index, manifest in enumerate(manifests):
            obj = manifest.obj
            if disabled(obj):
                continue
            if encrypted(obj):
                jobs.append((index, functools.partial(self._document, manifest)))
            elif self.keyring is not None and obj.get("kind") == "Secret" and obj.get("apiVersion") == "v1":
                values = self._encrypted_values(obj)
                if values:
                    jobs.append((index, functools.partial(self._secret_values, manifest, values)))
        if not jobs:
            return manifests
        out = list(manifests)
        workers = max(1, min(self.parallel, len(jobs)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sops") as pool:
            futures = [(index, pool.submit(job)) for index, job in jobs]
            failure: DecryptionError | None = None
            for index, future in futures:
                try:
                    out[index] = Manifest(future.result(), manifests[index].origin)
                except DecryptionError as exc:
                    failure = failure or exc
        if failure is not None:
            raise failure
        return out

    def _document(self, manifest: Manifest) -> dict[str, Any]:
        what = f"{manifest.origin}: {describe(manifest.obj)}"
        plain = self._decrypt(dump(manifest.obj).encode(), "yaml", "yaml", what)
        try:
            return load_one(plain.decode(), what)
        except (ManifestError, UnicodeDecodeError):
            raise DecryptionError(f"{what}: the decrypted document is not one Kubernetes object") from None

    @staticmethod
    def _encrypted_values(obj: Mapping[str, Any]) -> dict[str, tuple[bytes, str]]:
        found: dict[str, tuple[bytes, str]] = {}
        data = obj.get("data")
        for key, value in (data if isinstance(data, dict) else {}).items():
            try:
                raw = base64.b64decode(str(value), validate=True)
            except (binascii.Error, ValueError):
                continue
            fmt = _detect(raw)
            if fmt is not None:
                found[str(key)] = (raw, fmt)
        return found

    def _secret_values(self, manifest: Manifest, values: dict[str, tuple[bytes, str]]) -> dict[str, Any]:
        obj = dict(manifest.obj)
        data = dict(obj["data"])
        for key, (raw, fmt) in values.items():
            out = format_for_path(key)
            if out == "binary" or fmt == "binary":
                out = fmt
            what = f"{manifest.origin}: {describe(obj)} data key {key!r}"
            data[key] = base64.b64encode(self._decrypt(raw, fmt, out, what)).decode()
        obj["data"] = data
        return obj


def keys_secret(obj: Object, *, read: SecretReader, age_secret: str) -> tuple[dict[str, str], str]:
    """``(keys, origin)`` for ``obj``'s ``spec.decryption``: its secretRef's Secret, else the
    ``*.agekey`` keys of the controller-wide ``age_secret`` (``NAMESPACE/NAME``), else none.

    Raises :class:`DecryptionError` (``transient``: the Secret may appear) when it is missing."""
    ref = (obj.spec.get("decryption") or {}).get("secretRef") or {}
    if ref.get("name"):
        namespace, name, field = obj.namespace, str(ref["name"]), "spec.decryption.secretRef"
    elif age_secret:
        namespace, _, name = age_secret.rpartition("/")
        namespace, field = namespace or obj.namespace, "the controller's SOPS age Secret"
    else:
        return {}, "no decryption Secret"
    origin = f"{field}: Secret {namespace}/{name}"
    try:
        data = read("Secret", name) if namespace == obj.namespace else read("Secret", name, namespace)
    except ClusterError as exc:
        raise DecryptionError(f"{origin}: {exc.message}", result=exc.result) from None
    if data is None:
        raise DecryptionError(f"{origin} not found", result="transient")
    keys = dict(data) if ref.get("name") else {k: v for k, v in data.items() if k.endswith(AGE_SUFFIX)}
    return keys, origin


def for_kustomization(obj: Object, *, read: SecretReader, age_secret: str = "") -> Decryptor:
    """The :class:`Decryptor` of one render of ``obj`` (without keys when ``spec.decryption`` is
    unset or its provider is not ``sops``). Raises :class:`DecryptionError`."""
    decryption = obj.spec.get("decryption") or {}
    if decryption.get("provider") != "sops":
        return Decryptor(None)
    keys, origin = keys_secret(obj, read=read, age_secret=age_secret)
    return Decryptor(Keyring(keys, origin))


def from_keys(keys: Mapping[str, str], origin: str) -> Decryptor:
    """A :class:`Decryptor` for keys given directly (``gitops-tasks build --decryption-secret``)."""
    return Decryptor(Keyring(keys, origin))
