"""The catalog: declared objects in Redis, applied all or nothing, with their schedule entries.

Besides the objects (one hash), the catalog keeps indexes written in the same transactions: the
object keys of each kind, and for each object the objects that depend on it (their ``sourceRef``,
``imageRepositoryRef`` or ``dependsOn`` names it). A catalog written by an earlier version gets
both rebuilt for the whole catalog by the first apply that finds them missing (``INDEX_VERSION``);
until then readers scan the kinds instead.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import redis

from gitops_tasks.objects.kinds import dependents_of, depends_on, source_ref
from gitops_tasks.objects.model import Object, ObjectRef
from gitops_tasks.objects.ownership import (
    DELETION_KEY,
    deleting,
    has_finalizer,
    inventory_id,
    mark_deleting,
    owner_of,
    set_owner,
)
from gitops_tasks.store import marker
from gitops_tasks.store.keys import Keys

#: First runs of objects created by one apply are spread at this many per second (a bulk apply of
#: thousands of objects must not land on the workers, or on Git hosts, in the same instant).
DEFAULT_FIRST_RUN_RATE = 200.0

#: Objects read per HMGET when listing a kind.
DEFAULT_READ_CHUNK = 500

#: Builds the schedule metadata for an object, or None when its kind is not scheduled.
EntryFactory = Callable[[Object], "dict[str, Any] | None"]

#: The kind a registry scan evaluates, found through its ImageRepository's dependents.
IMAGE_POLICY = "ImagePolicy"

#: Kinds that can depend on another object (through sourceRef, imageRepositoryRef or dependsOn).
DEPENDENT_KINDS = ("ImagePolicy", "ImageUpdateAutomation", "Kustomization")

#: Reason of the run owed to an object changed (or marked for deletion) while it was running.
CHANGED_REASON = "changed"

#: Version of the indexes kept beside the objects; an older or missing one is rebuilt by an apply.
INDEX_VERSION = "2"

# KEYS[1] the index version, KEYS[2] one object's dependents set, KEYS[3] the catalog hash; ARGV[1]
# the index version this code writes, ARGV[2] a key prefix ("" for all). Returns false when the
# index is not built yet, else the JSON of every dependent whose key starts with ARGV[2] (one that
# left the catalog meanwhile is skipped).
DEPENDENTS_SCRIPT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end
local names = {}
for _, name in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if string.sub(name, 1, #ARGV[2]) == ARGV[2] then names[#names + 1] = name end
end
local out = {}
for i = 1, #names, 500 do
  local values = redis.call('HMGET', KEYS[3], unpack(names, i, math.min(i + 499, #names)))
  for _, value in ipairs(values) do
    if value then out[#out + 1] = value end
  end
end
return out
"""


def targets_of(obj: Object) -> set[str]:
    """Keys of the objects ``obj`` depends on (the dependents index files ``obj`` under each)."""
    out = {ref.key for ref in depends_on(obj)}
    source = source_ref(obj)
    if source is not None:
        out.add(source.key)
    return out


def _glob_escape(text: str) -> str:
    """``text`` as a literal in a Redis glob pattern."""
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)


@dataclass(frozen=True)
class Applied:
    """What one apply did to one object: ``created``, ``configured`` or ``unchanged``."""

    ref: ObjectRef
    action: str
    generation: int
    #: The Kustomization that owns the object after the apply (None: hand-applied).
    owner: ObjectRef | None = None


class OwnershipConflict(ValueError):
    """Objects a Kustomization declares are already managed by another one (nothing was written)."""

    def __init__(self, conflicts: list[str]) -> None:
        self.conflicts = conflicts
        shown = "; ".join(conflicts[:5]) + (f"; and {len(conflicts) - 5} more" if len(conflicts) > 5 else "")
        super().__init__(shown)


@dataclass(frozen=True)
class Removed:
    """What pruning did to one owned object: ``deleted``, ``deleting`` (its finalizer runs
    first), ``skipped`` (with why) or ``gone``."""

    ref: ObjectRef
    action: str
    detail: str = ""


class Catalog:
    """Declared objects stored as JSON in one hash, plus their entries in the schedule."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._dependents = client.register_script(DEPENDENTS_SCRIPT)

    def get(self, ref: ObjectRef) -> Object | None:
        raw = self.client.hget(self.keys.catalog, ref.key)
        return Object.from_json(raw) if raw else None

    def all(self) -> list[Object]:
        return [Object.from_json(raw) for raw in self.client.hvals(self.keys.catalog)]

    def iter_kind(self, kind: str | None = None, namespace: str | None = None) -> Iterator[Object]:
        """The objects of ``kind`` (all kinds with None), optionally of one namespace.

        With a kind only that kind's objects are read (through the per-kind key index, or a scan of
        the keys while the index is not built).
        """
        if kind is None:
            for key, raw in self.client.hscan_iter(self.keys.catalog, count=1000):
                if namespace is None or ObjectRef.parse(key).namespace == namespace:
                    yield Object.from_json(raw)
            return
        keys = sorted(self.client.smembers(self.keys.catalog_kind(kind)))
        if not keys and self.client.get(self.keys.catalog_indexes) != INDEX_VERSION:
            # A catalog written before the per-kind index, until its next apply builds it.
            keys = sorted(
                k for k, _ in self.client.hscan_iter(self.keys.catalog, match=f"{kind}/*", count=1000)
            )
        if namespace is not None:
            keys = [k for k in keys if ObjectRef.parse(k).namespace == namespace]
        for start in range(0, len(keys), DEFAULT_READ_CHUNK):
            for raw in self.client.hmget(self.keys.catalog, keys[start : start + DEFAULT_READ_CHUNK]):
                if raw:
                    yield Object.from_json(raw)

    def iter_kinds(self, kinds: Iterable[str]) -> Iterator[Object]:
        for kind in kinds:
            yield from self.iter_kind(kind)

    def _indexed_dependents(self, ref: ObjectRef, kind_prefix: str) -> list[Object] | None:
        """Dependents of ``ref`` whose key starts with ``kind_prefix``, through the index (one round
        trip); None while the index is not built."""
        raws = self._dependents(
            keys=[self.keys.catalog_indexes, self.keys.catalog_dependents(ref.key), self.keys.catalog],
            args=[INDEX_VERSION, kind_prefix],
        )
        return None if raws is None else [Object.from_json(raw) for raw in raws]

    def image_policies_of(self, repository: ObjectRef) -> list[Object]:
        """The ImagePolicies whose ``imageRepositoryRef`` names ``repository``, sorted by key: one
        round trip through the dependents index (a scan of every ImagePolicy while the index is not
        built yet)."""
        found = self._indexed_dependents(repository, f"{IMAGE_POLICY}/")
        policies = self.iter_kind(IMAGE_POLICY) if found is None else found
        return sorted((p for p in policies if source_ref(p) == repository), key=lambda p: p.ref.key)

    def dependents_of(self, ref: ObjectRef) -> list[ObjectRef]:
        """The objects to reconcile after ``ref`` changed, sorted (see ``objects.dependents_of``):
        one round trip through the index, a scan of the dependent kinds while it is not built."""
        found = self._indexed_dependents(ref, "")
        return dependents_of(ref, self.iter_kinds(DEPENDENT_KINDS) if found is None else found)

    def apply(
        self,
        objects: Iterable[Object],
        *,
        entry_for: EntryFactory,
        now: float | None = None,
        dry_run: bool = False,
        created_by: str = "apply",
        replaces: str = "",
        owner: ObjectRef | None = None,
    ) -> list[Applied]:
        """Store every object in one transaction (all or nothing).

        ``owner`` (a Kustomization's sync): the objects are labelled as its own; one that another
        Kustomization owns and still declares raises :class:`OwnershipConflict` and nothing is
        written. Without ``owner`` (a hand apply) an owned object keeps its owner's labels, so the
        owner's next sync overwrites it (``Applied.owner`` says who). An object being deleted
        stays so.

        The first apply of a catalog writes its marker too (``store.marker``: a new epoch, with
        ``created_by`` and, for a catalog re-created after a loss, the lost epoch ``replaces``).

        A new object or a changed spec bumps ``metadata.generation`` and makes the object due at
        once (changed labels or annotations alone are stored without a run, as Flux's generation
        predicate does) (a bulk apply spreads those first runs at ``DEFAULT_FIRST_RUN_RATE`` per second, never
        beyond the object's interval); an unchanged one keeps its place in the schedule. Suspended
        objects leave the schedule. Returns what happened to each object; with ``dry_run`` nothing
        is written.
        """
        objects = list(objects)
        now = time.time() if now is None else now
        while True:
            with self.client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(self.keys.catalog, self.keys.catalog_indexes, self.keys.catalog_marker)
                    keys = [o.ref.key for o in objects]
                    existing: list[str | None] = list(pipe.hmget(self.keys.catalog, keys)) if keys else []  # type: ignore[call-overload]
                    olds = [Object.from_json(raw) if raw else None for raw in existing]
                    self._own(pipe, objects, olds, owner)
                    results = [
                        _compare(obj, old, owner_of(obj)) for obj, old in zip(objects, existing, strict=True)
                    ]
                    if dry_run:
                        pipe.unwatch()
                        return results
                    rebuild = pipe.get(self.keys.catalog_indexes) != INDEX_VERSION
                    indexes = self._read_indexes(pipe) if rebuild else None
                    pipe.multi()
                    if objects:
                        marker.create_unless_exists(pipe, self.keys, created_by, replaces=replaces, now=now)
                    if indexes is not None:
                        self._write_indexes(pipe, *indexes)
                    # Due at once: a new object or a new generation (a changed spec), as Flux's
                    # generation predicate; a labels-only change is stored and keeps its place.
                    olds_generation = [int(o.metadata.get("generation", 1)) if o else 0 for o in olds]
                    fresh = [a.generation > g for a, g in zip(results, olds_generation, strict=True)]
                    due = sum(fresh)
                    position = 0
                    for obj, applied, old, is_due in zip(objects, results, olds, fresh, strict=True):
                        obj.metadata["generation"] = applied.generation
                        pipe.hset(self.keys.catalog, obj.ref.key, obj.to_json())
                        pipe.sadd(self.keys.catalog_kind(obj.kind), obj.ref.key)
                        self._index_dependent(pipe, obj.ref, old=old, new=obj)
                        entry = entry_for(obj)
                        first_run = now
                        if is_due and entry is not None and due > 1:
                            window_s = min(due / DEFAULT_FIRST_RUN_RATE, float(entry["interval_s"]))
                            first_run += window_s * position / due
                            position += 1
                        self._write_entry(pipe, obj, entry, due_now=is_due, now=first_run)
                    pipe.execute()
                    return results
                except redis.WatchError:
                    continue

    def _own(
        self, pipe: Any, objects: list[Object], olds: list[Object | None], owner: ObjectRef | None
    ) -> None:
        """Set each object's owner labels (see :meth:`apply`); raise :class:`OwnershipConflict`."""
        conflicts = []
        for obj, old in zip(objects, olds, strict=True):
            previous = owner_of(old) if old is not None else None
            if owner is None:
                if previous is not None and owner_of(obj) is None:
                    set_owner(obj, previous)
            else:
                if (
                    previous is not None
                    and previous != owner
                    and old is not None
                    and self._claims(pipe, previous, old)
                ):
                    conflicts.append(
                        f"{obj.ref} is already managed by {previous} (declared at {old.source or 'unknown'})"
                    )
                set_owner(obj, owner)
            if old is not None and deleting(old):
                obj.metadata[DELETION_KEY] = old.metadata[DELETION_KEY]
        if conflicts:
            pipe.unwatch()
            raise OwnershipConflict(conflicts)

    def _claims(self, pipe: Any, owner: ObjectRef, obj: Object) -> bool:
        """True while ``owner`` still manages ``obj``: it exists, is not being deleted, and has not
        yet recorded an inventory without ``obj`` (a first sync still on its way counts as a claim)."""
        raw = pipe.hget(self.keys.catalog, owner.key)
        if not raw or deleting(Object.from_json(raw)):
            return False
        status_raw = pipe.hget(self.keys.status, owner.key)
        status = json.loads(status_raw) if status_raw else {}
        if not status.get("lastAppliedRevision"):
            return True
        entries = (status.get("inventory") or {}).get("entries") or []
        return any(isinstance(e, dict) and e.get("id") == inventory_id(obj) for e in entries)

    def remove_owned(
        self, owner: ObjectRef, refs: Iterable[ObjectRef], *, entry_for: EntryFactory
    ) -> list[Removed]:
        """Prune objects ``owner`` no longer declares: each one still labelled as ``owner``'s is
        deleted, or marked for deletion and made due when it has a finalizer (a Kustomization with
        ``prune``: it garbage-collects its own objects first). The owner itself is never pruned."""
        out = []
        for ref in refs:
            obj = self.get(ref)
            if obj is None:
                out.append(Removed(ref, "gone"))
            elif ref == owner:
                out.append(Removed(ref, "skipped", "a Kustomization does not prune itself"))
            elif owner_of(obj) != owner:
                by = owner_of(obj)
                out.append(
                    Removed(ref, "skipped", f"now managed by {by}" if by else "not labelled as applied by it")
                )
            else:
                out.append(self.remove(obj, entry_for=entry_for))
        return out

    def remove(self, obj: Object, *, entry_for: EntryFactory, now: float | None = None) -> Removed:
        """Delete ``obj``, or, when it has a finalizer, mark it for deletion and make it due now
        (its reconcile runs the finalizer and then deletes it)."""
        if not has_finalizer(obj):
            self.delete(obj.ref)
            return Removed(obj.ref, "deleted")
        return self.mark_deleting(obj.ref, entry_for=entry_for, now=now)

    def mark_deleting(self, ref: ObjectRef, *, entry_for: EntryFactory, now: float | None = None) -> Removed:
        now = time.time() if now is None else now
        while True:
            with self.client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(self.keys.catalog)
                    raw = cast("str | None", pipe.hget(self.keys.catalog, ref.key))
                    if not raw:
                        pipe.unwatch()
                        return Removed(ref, "gone")
                    obj = Object.from_json(raw)
                    mark_deleting(obj, now)
                    pipe.multi()
                    pipe.hset(self.keys.catalog, ref.key, obj.to_json())
                    entry = entry_for(obj) or {}
                    pipe.hset(self.keys.schedule_meta, ref.key, json.dumps(entry))
                    pipe.zadd(self.keys.schedule, {ref.key: now})
                    pipe.hset(self.keys.pending, ref.key, CHANGED_REASON)
                    pipe.execute()
                    return Removed(ref, "deleting", "garbage-collecting what it owns first")
                except redis.WatchError:
                    continue

    def _write_entry(
        self, pipe: Any, obj: Object, entry: dict[str, Any] | None, *, due_now: bool, now: float
    ) -> None:
        key = obj.ref.key
        if deleting(obj) and entry is not None:
            # Being deleted: its finalizer runs now, suspended or not.
            pipe.hset(self.keys.schedule_meta, key, json.dumps(entry))
            pipe.zadd(self.keys.schedule, {key: now})
            pipe.hset(self.keys.pending, key, CHANGED_REASON)
            return
        if entry is None or obj.suspended:
            pipe.zrem(self.keys.schedule, key)
            if entry is None:
                pipe.hdel(self.keys.schedule_meta, key)
            else:
                pipe.hset(self.keys.schedule_meta, key, json.dumps(entry))
            return
        pipe.hset(self.keys.schedule_meta, key, json.dumps(entry))
        if due_now:
            pipe.zadd(self.keys.schedule, {key: now})
            # A run of the object in progress read the old one: its finish owes a run of the new
            # one (``store.runstate``; the next run's start clears this when none is in progress).
            pipe.hset(self.keys.pending, key, CHANGED_REASON)
        else:
            pipe.zadd(self.keys.schedule, {key: now}, nx=True)

    def _read_indexes(self, pipe: Any) -> tuple[dict[str, set[str]], dict[str, set[str]], list[str]]:
        """Both indexes for the whole catalog, read once by the apply that finds them missing or
        older: (kind → keys, target → dependent keys, keys of an earlier version's index)."""
        kinds: dict[str, set[str]] = {}
        dependents: dict[str, set[str]] = {}
        for key, raw in pipe.hscan_iter(self.keys.catalog, count=1000):
            obj = Object.from_json(raw)
            kinds.setdefault(obj.kind, set()).add(key)
            for target in targets_of(obj):
                dependents.setdefault(target, set()).add(key)
        pattern = _glob_escape(self.keys.catalog_legacy_index_prefix) + "*"
        legacy = list(pipe.scan_iter(match=pattern, count=1000))
        return kinds, dependents, legacy

    def _write_indexes(
        self, pipe: Any, kinds: dict[str, set[str]], dependents: dict[str, set[str]], legacy: list[str]
    ) -> None:
        for kind, keys in kinds.items():
            pipe.sadd(self.keys.catalog_kind(kind), *keys)
        for target, keys in dependents.items():
            pipe.sadd(self.keys.catalog_dependents(target), *keys)
        if legacy:
            pipe.delete(*legacy)
        pipe.set(self.keys.catalog_indexes, INDEX_VERSION)

    def _index_dependent(self, pipe: Any, ref: ObjectRef, *, old: Object | None, new: Object | None) -> None:
        """Queue the index changes of ``ref`` going from ``old`` to ``new`` (None: absent)."""
        before = targets_of(old) if old is not None else set()
        after = targets_of(new) if new is not None else set()
        for target in sorted(before - after):
            pipe.srem(self.keys.catalog_dependents(target), ref.key)
        for target in sorted(after):
            pipe.sadd(self.keys.catalog_dependents(target), ref.key)

    def delete(self, ref: ObjectRef) -> bool:
        """Remove an object, its schedule entry, status and pending request. False if absent."""
        while True:
            with self.client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(self.keys.catalog)
                    old_raw = cast("str | None", pipe.hget(self.keys.catalog, ref.key))
                    pipe.multi()
                    pipe.hdel(self.keys.catalog, ref.key)
                    pipe.srem(self.keys.catalog_kind(ref.kind), ref.key)
                    pipe.zrem(self.keys.schedule, ref.key)
                    pipe.hdel(self.keys.schedule_meta, ref.key)
                    pipe.hdel(self.keys.status, ref.key)
                    pipe.hdel(self.keys.requests, ref.key)
                    pipe.hdel(self.keys.pending, ref.key)
                    pipe.delete(self.keys.guard(ref.key))
                    pipe.delete(self.keys.tags(ref.key))
                    if old_raw:
                        self._index_dependent(pipe, ref, old=Object.from_json(old_raw), new=None)
                    removed = pipe.execute()[0]
                except redis.WatchError:
                    continue
            return bool(removed)

    def set_suspended(self, ref: ObjectRef, suspended: bool, *, entry_for: EntryFactory) -> Object:
        """Flip ``spec.suspend`` (as ``flux suspend``/``resume`` do). Raises KeyError if absent."""
        obj = self.get(ref)
        if obj is None:
            raise KeyError(str(ref))
        if suspended:
            obj.spec["suspend"] = True
        else:
            obj.spec.pop("suspend", None)
        self.apply([obj], entry_for=entry_for)
        return obj

    def next_run(self, refs: list[ObjectRef]) -> list[float | None]:
        if not refs:
            return []
        return list(self.client.zmscore(self.keys.schedule, [r.key for r in refs]))


def _compare(obj: Object, old_raw: str | None, owner: ObjectRef | None = None) -> Applied:
    if old_raw is None:
        return Applied(obj.ref, "created", 1, owner)
    old = Object.from_json(old_raw)
    generation = int(old.metadata.get("generation", 1))
    if old.spec_fingerprint() == obj.spec_fingerprint():
        same_meta = (old.metadata.get("labels"), old.metadata.get("annotations")) == (
            obj.metadata.get("labels"),
            obj.metadata.get("annotations"),
        )
        return Applied(obj.ref, "unchanged" if same_meta else "configured", generation, owner)
    return Applied(obj.ref, "configured", generation + 1, owner)
