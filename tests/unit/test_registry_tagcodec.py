"""The compact tag-list encoding and the in-memory tag store."""

from __future__ import annotations

import random

import pytest

from gitops_tasks.registry.scan import DEFAULT_EXCLUSION_LIST, exclusion_patterns, without_excluded
from gitops_tasks.registry.tags import MemoryTagStore, decode_tags, encode_tags, sorted_tags, tags_revision
from tests.registryfixtures import image_repository
from tests.registryservers import realistic_tags


def test_round_trip_sorts_and_deduplicates() -> None:
    tags = ["1.10.0", "1.2.0", "latest", "1.2.0", "v2", ""]
    assert decode_tags(encode_tags(tags)) == sorted(set(tags))
    assert decode_tags(encode_tags([])) == []


def test_revision_depends_on_the_set_only() -> None:
    assert tags_revision(["b", "a", "a"]) == tags_revision(["a", "b"])
    assert tags_revision(["a", "b"]) != tags_revision(["a", "b", "c"])
    assert tags_revision([]).startswith("sha256:")


def test_a_list_already_sorted_is_not_sorted_again() -> None:
    ordered = ["1.0.0", "1.1.0", "latest"]
    assert sorted_tags(ordered) is ordered
    assert sorted_tags(["1.1.0", "1.0.0", "1.1.0"]) == ["1.0.0", "1.1.0"]
    assert sorted_tags(["1.0.0", "1.0.0", "1.1.0"]) == ["1.0.0", "1.1.0"]
    assert sorted_tags(iter(ordered)) == ordered and sorted_tags([]) == []
    assert tags_revision(ordered) == tags_revision(reversed(ordered))


def test_unknown_format_and_newlines_are_refused() -> None:
    with pytest.raises(ValueError, match="format"):
        decode_tags(b"\x09junk")
    with pytest.raises(ValueError, match="newline"):
        encode_tags(["a\nb"])
    with pytest.raises(ValueError, match="newline"):
        MemoryTagStore().put("ImageRepository/default/app", ["1.0.0", "2.0.0\n3.0.0"])


def test_realistic_lists_take_a_few_bytes_per_tag() -> None:
    rng = random.Random(7)
    total_tags = total_bytes = 0
    for count in (10, 300, 4_500, 8_000):
        tags = realistic_tags(rng, count)
        assert len(tags) == count
        total_tags += count
        total_bytes += len(encode_tags(tags))
    assert total_bytes / total_tags < 12, total_bytes / total_tags


def test_memory_store_skips_rewriting_an_unchanged_list() -> None:
    store = MemoryTagStore()
    revision = store.put("ImageRepository/default/app", ["1.0.0", "1.1.0"])
    assert store.get("ImageRepository/default/app") == ["1.0.0", "1.1.0"]
    assert (
        store.put("ImageRepository/default/app", ["1.1.0", "1.0.0"], previous_revision=revision) == revision
    )
    assert store.writes == 1
    store.put("ImageRepository/default/app", ["1.2.0"], previous_revision=revision)
    assert store.get("ImageRepository/default/app") == ["1.2.0"] and store.writes == 2
    store.delete("ImageRepository/default/app")
    assert store.get("ImageRepository/default/app") is None


def test_exclusion_list_defaults_to_signature_tags_and_can_be_emptied() -> None:
    tags = ["1.0.0", "sha256-" + "a" * 64 + ".sig", "1.0.0-rc.1", "latest"]
    default = exclusion_patterns(image_repository("app", "ghcr.io/a/b"))
    assert [p.pattern for p in default] == list(DEFAULT_EXCLUSION_LIST)
    assert without_excluded(tags, default) == ["1.0.0", "1.0.0-rc.1", "latest"]
    nothing = exclusion_patterns(image_repository("app", "ghcr.io/a/b", exclusionList=[]))
    assert without_excluded(tags, nothing) == tags
    custom = exclusion_patterns(image_repository("app", "ghcr.io/a/b", exclusionList=["^latest$", "-rc"]))
    assert without_excluded(tags, custom) == ["1.0.0", tags[1]]
