"""Tag lists stored compactly, one Redis string per ImageRepository (DESIGN §6).

Popular images have 4,000 to 9,000 tags, and an installation may watch thousands of images, so a
list is stored as its sorted tags joined by newlines and zlib-compressed (sorted tags share long
prefixes, which deflate folds away), behind a one-byte format version. The SHA-256 of the sorted
list is the list's revision: the reconciler keeps it in status (``lastScanResult.revision``) and
compares it with the new one to tell whether the set changed, without reading the stored list.
"""

from __future__ import annotations

import hashlib
import itertools
import operator
import threading
import zlib
from collections.abc import Iterable
from typing import Any, Protocol

from gitops_tasks.store.keys import Keys

#: First byte of every stored value: the encoding below (bump it when the encoding changes).
FORMAT_VERSION = b"\x01"
#: zlib level: 6; level 9 costs about twice the CPU on tag lists for 0.1 % smaller values.
DEFAULT_COMPRESSION_LEVEL = 6


def sorted_tags(tags: Iterable[str]) -> list[str]:
    """The distinct tags, sorted (the order stored and hashed). A list already in that order (as
    most registries send it, and as :func:`~.scan.scan` passes it on) is returned as it is, after
    one linear check instead of a sort."""
    if isinstance(tags, list) and all(map(operator.lt, tags, itertools.islice(tags, 1, None))):
        return tags
    return sorted(set(tags))


def _joined(ordered: list[str]) -> bytes:
    """The sorted tags as newline-separated bytes: what is hashed, and what is compressed."""
    return "\n".join(ordered).encode()


def _revision(joined: bytes) -> str:
    return "sha256:" + hashlib.sha256(joined).hexdigest()


def _encoded(ordered: list[str], joined: bytes, level: int) -> bytes:
    if joined.count(b"\n") != max(len(ordered) - 1, 0):
        raise ValueError("a tag cannot contain a newline")
    return FORMAT_VERSION + zlib.compress(joined, level)


def tags_revision(tags: Iterable[str]) -> str:
    """``sha256:<hex>`` of the sorted distinct tags: equal exactly when the sets are equal."""
    return _revision(_joined(sorted_tags(tags)))


def encode_tags(tags: Iterable[str], *, level: int = DEFAULT_COMPRESSION_LEVEL) -> bytes:
    """The stored form of ``tags``. Raises ``ValueError`` if a tag holds a newline."""
    ordered = sorted_tags(tags)
    return _encoded(ordered, _joined(ordered), level)


def decode_tags(data: bytes) -> list[str]:
    """The sorted tags stored by :func:`encode_tags`. Raises ``ValueError`` on an unknown format."""
    if not data.startswith(FORMAT_VERSION):
        raise ValueError(f"unknown tag list format {data[:1]!r}")
    text = zlib.decompress(data[1:]).decode()
    return text.split("\n") if text else []


class TagStore(Protocol):
    """Where an ImageRepository's tags are kept between its scan and its policies' evaluation."""

    def get(self, object_key: str) -> list[str] | None: ...

    def put(self, object_key: str, tags: Iterable[str], *, previous_revision: str | None = None) -> str: ...

    def delete(self, object_key: str) -> None: ...


class RedisTagStore:
    """Tag lists in ``keys.tags(object_key)`` strings.

    ``client`` must return bytes (``decode_responses=False``): the values are compressed.
    """

    def __init__(self, client: Any, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def get(self, object_key: str) -> list[str] | None:
        """The stored tags (sorted), or None when none were stored."""
        raw = self.client.get(self.keys.tags(object_key))
        if raw is None:
            return None
        if isinstance(raw, str):
            raise TypeError("RedisTagStore needs a Redis client with decode_responses=False")
        return decode_tags(raw)

    def put(self, object_key: str, tags: Iterable[str], *, previous_revision: str | None = None) -> str:
        """Store ``tags``; returns their revision. When it equals ``previous_revision`` and the list
        is still stored, nothing is encoded or written (one ``EXISTS`` instead of a ``SET``).
        Sorted distinct tags in a list (what :func:`sorted_tags` returns) are not sorted again."""
        ordered = sorted_tags(tags)
        joined = _joined(ordered)
        revision = _revision(joined)
        key = self.keys.tags(object_key)
        if revision == previous_revision and self.client.exists(key):
            return revision
        self.client.set(key, _encoded(ordered, joined, DEFAULT_COMPRESSION_LEVEL))
        return revision

    def delete(self, object_key: str) -> None:
        self.client.delete(self.keys.tags(object_key))

    def memory_usage(self, object_key: str) -> int:
        """Bytes Redis spends on this list (``MEMORY USAGE``, key and overhead included); 0 if absent."""
        return int(self.client.memory_usage(self.keys.tags(object_key), samples=0) or 0)


class MemoryTagStore:
    """The in-process double, storing the same encoded bytes (thread-safe)."""

    def __init__(self) -> None:
        self._values: dict[str, bytes] = {}
        self._lock = threading.Lock()
        #: Number of writes, so tests can check that an unchanged list is not rewritten.
        self.writes = 0

    def get(self, object_key: str) -> list[str] | None:
        with self._lock:
            raw = self._values.get(object_key)
        return None if raw is None else decode_tags(raw)

    def put(self, object_key: str, tags: Iterable[str], *, previous_revision: str | None = None) -> str:
        ordered = sorted_tags(tags)
        joined = _joined(ordered)
        revision = _revision(joined)
        with self._lock:
            if revision == previous_revision and object_key in self._values:
                return revision
            self._values[object_key] = _encoded(ordered, joined, DEFAULT_COMPRESSION_LEVEL)
            self.writes += 1
        return revision

    def delete(self, object_key: str) -> None:
        with self._lock:
            self._values.pop(object_key, None)
