"""Tag lists in Redis: round trip, no rewrite when unchanged, and the memory budget at scale."""

from __future__ import annotations

import random
import time

from gitops_tasks.registry.tags import RedisTagStore, encode_tags
from tests.registryservers import realistic_tags, tag_counts

#: The budget: 5,000 ImageRepositories holding 2,000,000 tags in all fit in 40 MiB of Redis memory.
IMAGES = 5_000
TOTAL_TAGS = 2_000_000
BUDGET_BYTES = 40 * 1024 * 1024


def test_round_trip_and_unchanged_lists_are_not_rewritten(registry_kit) -> None:
    store: RedisTagStore = registry_kit().store
    key = "ImageRepository/default/app"
    assert store.get(key) is None
    revision = store.put(key, ["2.0.0", "1.0.0", "1.0.0"])
    assert store.get(key) == ["1.0.0", "2.0.0"]
    store.client.set(store.keys.tags(key), encode_tags(["sentinel"]))
    # Same revision and still stored: nothing is written (the sentinel survives)
    assert store.put(key, ["1.0.0", "2.0.0"], previous_revision=revision) == revision
    assert store.get(key) == ["sentinel"]
    # Gone from Redis (flushed, evicted): written again even though the revision is the same
    store.delete(key)
    store.put(key, ["1.0.0", "2.0.0"], previous_revision=revision)
    assert store.get(key) == ["1.0.0", "2.0.0"]


def test_two_million_realistic_tags_fit_the_memory_budget(registry_kit) -> None:
    # Given 5,000 repositories shaped like real ones (3% popular with 4,500-8,000 tags)
    store: RedisTagStore = registry_kit().store
    rng = random.Random(2024)
    counts = tag_counts(rng, images=IMAGES, total=TOTAL_TAGS)
    before = int(store.client.info("memory")["used_memory"])

    # When all of them are stored
    started = time.monotonic()
    stored = 0
    payload = 0
    with store.client.pipeline(transaction=False) as pipe:
        for index, count in enumerate(counts):
            tags = realistic_tags(rng, count)
            stored += len(tags)
            value = encode_tags(tags)
            payload += len(value)
            pipe.set(store.keys.tags(f"ImageRepository/ns{index % 50}/image-{index}"), value)
            if index % 500 == 499:
                pipe.execute()
        pipe.execute()
    elapsed = time.monotonic() - started

    # Then Redis spends well under 40 MiB on them
    keys = [store.keys.tags(f"ImageRepository/ns{i % 50}/image-{i}") for i in range(IMAGES)]
    with store.client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.memory_usage(key, samples=0)
        usage = sum(int(u or 0) for u in pipe.execute())
    grown = int(store.client.info("memory")["used_memory"]) - before
    print(
        f"\n{IMAGES} images, {stored} tags: payload {payload} B ({payload / stored:.2f} B/tag), "
        f"MEMORY USAGE {usage} B ({usage / 2**20:.1f} MiB), used_memory +{grown} B, {elapsed:.1f}s"
    )
    assert abs(stored - TOTAL_TAGS) < TOTAL_TAGS * 0.01
    assert usage <= BUDGET_BYTES
    assert grown <= BUDGET_BYTES
    # And a popular image reads back whole
    assert len(store.get("ImageRepository/ns0/image-0") or []) == counts[0]
    for key in keys:
        store.client.delete(key)
