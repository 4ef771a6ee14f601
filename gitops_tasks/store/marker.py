"""The catalog's marker: proof that the catalog exists, and its epoch.

The marker is a hash written once, when the catalog is first created (by ``apply``, the start-up
objects, or beat): ``epoch`` (a random id), ``created_at`` (epoch seconds), ``created_by``, and for
a catalog re-created after a loss ``replaces`` (the lost epoch) and ``lost_at``. Redis cannot lose
the objects and keep the marker, so a process that saw epoch E and finds no marker, or another
epoch, knows the catalog vanished (a restart without persistence, a flush, a failover to an empty
replica); a process that never saw one and finds none is looking at a fresh install.
:func:`judge` decides which (pure); the rest reads and writes the marker, and a small file of the
epochs a command line last saw (it runs too briefly to remember them otherwise).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import redis
from redis.client import Pipeline

from gitops_tasks.store.keys import Keys

#: Catalogs whose epoch one memory file keeps (the most recently seen).
DEFAULT_MEMORY_ENTRIES = 50

#: What a lost catalog most likely means (shown by the CLI, logged by beat and workers).
LIKELY_CAUSE = "Redis lost its data (restart without persistence, flush, or failover to an empty replica)"

# KEYS[1] the marker hash; ARGV field, value pairs of a new marker. Creates the marker unless one
# exists; returns the marker's epoch (the new one or the one already there).
ENSURE_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('HSET', KEYS[1], unpack(ARGV)) end
return redis.call('HGET', KEYS[1], 'epoch')
"""


@dataclass(frozen=True)
class Marker:
    epoch: str
    created_at: float
    created_by: str
    replaces: str = ""
    lost_at: float = 0.0

    @classmethod
    def new(cls, created_by: str, *, replaces: str = "", now: float | None = None) -> Marker:
        now = time.time() if now is None else now
        return cls(secrets.token_hex(8), now, created_by, replaces, now if replaces else 0.0)

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> Marker | None:
        if not raw.get("epoch"):
            return None
        return cls(
            raw["epoch"],
            float(raw.get("created_at") or 0),
            raw.get("created_by", ""),
            raw.get("replaces", ""),
            float(raw.get("lost_at") or 0),
        )

    def to_hash(self) -> dict[str | bytes, bytes | float | int | str]:
        out: dict[str | bytes, bytes | float | int | str] = {
            "epoch": self.epoch,
            "created_at": repr(self.created_at),
            "created_by": self.created_by,
        }
        if self.replaces:
            out.update(replaces=self.replaces, lost_at=repr(self.lost_at))
        return out


@dataclass(frozen=True)
class Verdict:
    """What a process that remembers ``seen`` makes of the marker it finds now.

    ``state`` is ``fresh`` (no marker, none seen: nothing was ever stored), ``ok`` (the epoch seen,
    or a first sight), ``vanished`` (no marker, but one was seen) or ``replaced`` (another epoch:
    the catalog seen was lost and a new one created since)."""

    state: str
    seen: str | None
    marker: Marker | None

    @property
    def lost(self) -> bool:
        return self.state in ("vanished", "replaced")


def judge(seen: str | None, marker: Marker | None) -> Verdict:
    if marker is None:
        return Verdict("vanished" if seen else "fresh", seen, None)
    if seen and marker.epoch != seen:
        return Verdict("replaced", seen, marker)
    return Verdict("ok", seen, marker)


def describe_loss(verdict: Verdict, where: str) -> str:
    """One sentence for a lost catalog; ``where`` names it (the redacted Redis URL and prefix)."""
    if verdict.state == "vanished":
        return (
            f"the catalog in {where} is gone (its marker, epoch {verdict.seen}, is missing): {LIKELY_CAUSE}"
        )
    assert verdict.marker is not None
    marker = verdict.marker
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(marker.created_at))
    return (
        f"the catalog in {where} was lost and re-created at {when} by {marker.created_by or 'unknown'} "
        f"(epoch {verdict.seen} replaced by {marker.epoch}): {LIKELY_CAUSE}"
    )


def read(client: redis.Redis, keys: Keys) -> Marker | None:
    return Marker.from_hash(cast("dict[str, str]", client.hgetall(keys.catalog_marker)))


def create_unless_exists(
    client: redis.Redis | Pipeline,
    keys: Keys,
    created_by: str,
    *,
    replaces: str = "",
    now: float | None = None,
) -> Marker:
    """Create a new marker (by ``created_by``) unless one exists; returns the new one offered.

    On a pipeline the creation is queued, so a transaction writes it atomically with its other
    commands (``Catalog.apply`` with the objects); on a client it runs at once."""
    new = Marker.new(created_by, replaces=replaces, now=now)
    args = [part for pair in new.to_hash().items() for part in pair]
    client.eval(ENSURE_SCRIPT, 1, keys.catalog_marker, *args)
    return new


def ensure(client: redis.Redis, keys: Keys, created_by: str, *, replaces: str = "") -> Marker:
    """The marker, created now (by ``created_by``) unless it exists."""
    new = create_unless_exists(client, keys, created_by, replaces=replaces)
    found = read(client, keys)
    return found if found is not None else new


def where(url: str, keys: Keys) -> str:
    """How messages name a catalog: its Redis URL (credentials masked) and key prefix."""
    from gitops_tasks.redact import redact

    return f"{redact(url)} (key prefix {keys.prefix!r})"


class EpochMemory:
    """The epoch last seen of each catalog (by Redis URL and prefix), in a small JSON file.

    For processes too short-lived to remember: the command line. Unreadable or missing files count
    as nothing seen; a write that fails is skipped (remembering is a convenience, never an error).
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def seen(self, catalog: str) -> str | None:
        entry = self._load().get(catalog)
        return entry.get("epoch") if isinstance(entry, dict) else None

    def remember(self, catalog: str, epoch: str | None) -> None:
        data = self._load()
        if epoch is None:
            data.pop(catalog, None)
        else:
            data.pop(catalog, None)
            data[catalog] = {"epoch": epoch, "seen_at": time.time()}
        kept = dict(list(data.items())[-DEFAULT_MEMORY_ENTRIES:])
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(kept))
            tmp.replace(self.path)
        except OSError:
            pass


def seen_by_command_line(client: redis.Redis, keys: Keys, *, url: str, memory_file: Path) -> Verdict:
    """What the catalog's marker says against the epoch the command line saw last (remembered in
    ``memory_file``, the data dir's); the epoch found is remembered for next time."""
    memory = EpochMemory(memory_file)
    name = where(url, keys)
    verdict = judge(memory.seen(name), read(client, keys))
    if verdict.marker is not None and verdict.marker.epoch != verdict.seen:
        memory.remember(name, verdict.marker.epoch)
    return verdict


def loss_advice(verdict: Verdict, *, url: str, keys: Keys) -> str:
    """:func:`describe_loss` with what to do about it (shown by the CLI and ``up``)."""
    return (
        f"{describe_loss(verdict, where(url, keys))}.\nA running beat re-applies GITOPS_TASKS_CATALOG_PATHS "
        "when it notices; apply any other objects again with `gitops-tasks apply -f`."
    )


class CatalogWatch:
    """The epoch a long-running process (beat, a worker) saw, and a loss reported once.

    :meth:`check` reads the marker; a catalog that vanished or was replaced is logged at ERROR
    once (a vanished catalog re-created later adds one INFO line), and the new epoch is adopted.
    """

    def __init__(self, client: redis.Redis, keys: Keys, *, where: str, log: Any) -> None:
        self.client = client
        self.keys = keys
        self.where = where
        self.log = log
        self.seen: str | None = None
        self._vanished_reported = False

    def adopt(self, epoch: str) -> None:
        """Take ``epoch`` as seen (the caller created that marker itself: nothing to report)."""
        self.seen = epoch
        self._vanished_reported = False

    def check(self) -> Verdict:
        """Raises redis errors as they come (the caller knows how it handles an outage)."""
        verdict = judge(self.seen, read(self.client, self.keys))
        if verdict.state == "vanished":
            if not self._vanished_reported:
                self.log.error("%s", describe_loss(verdict, self.where))
                self._vanished_reported = True
            return verdict
        if verdict.marker is not None:
            if self._vanished_reported:
                self.log.info("the catalog in %s was re-created (epoch %s)", self.where, verdict.marker.epoch)
            elif verdict.state == "replaced":
                self.log.error("%s", describe_loss(verdict, self.where))
            self._vanished_reported = False
            self.seen = verdict.marker.epoch
        return verdict
