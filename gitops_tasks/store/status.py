"""Status of every object, one JSON document per object in one hash."""

from __future__ import annotations

import json
from typing import Any

import redis

from gitops_tasks.objects.model import ObjectRef
from gitops_tasks.store.keys import Keys


class StatusStore:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def get(self, ref: ObjectRef) -> dict[str, Any]:
        raw = self.client.hget(self.keys.status, ref.key)
        return json.loads(raw) if raw else {}

    def get_many(self, refs: list[ObjectRef]) -> list[dict[str, Any]]:
        if not refs:
            return []
        raws = self.client.hmget(self.keys.status, [r.key for r in refs])
        return [json.loads(raw) if raw else {} for raw in raws]

    def put(self, ref: ObjectRef, status: dict[str, Any]) -> None:
        """Store ``status`` unless the object left the catalog meanwhile (no resurrection)."""
        script = self.client.register_script(PUT_IF_IN_CATALOG_SCRIPT)
        script(keys=[self.keys.catalog, self.keys.status], args=[ref.key, json.dumps(status)])

    def request_token(self, ref: ObjectRef) -> str | None:
        """The token of the latest ``reconcile`` request (Flux's ``requestedAt``), if any."""
        return self.client.hget(self.keys.requests, ref.key)

    def request(self, ref: ObjectRef, token: str) -> None:
        self.client.hset(self.keys.requests, ref.key, token)


# KEYS[1] catalog hash, KEYS[2] status hash; ARGV[1] object key, ARGV[2] status JSON.
# Returns 1 when stored, 0 when the object is no longer in the catalog.
PUT_IF_IN_CATALOG_SCRIPT = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
"""
