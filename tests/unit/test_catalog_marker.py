"""The catalog marker's verdicts, the command line's epoch memory and beat's outage bookkeeping (pure)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import redis

from beat_schedule.outage import Outage
from gitops_tasks.store.marker import EpochMemory, Marker, describe_loss, judge


def test_no_marker_and_none_seen_is_a_fresh_catalog_not_a_loss() -> None:
    verdict = judge(None, None)
    assert verdict.state == "fresh" and not verdict.lost


def test_a_marker_seen_for_the_first_time_is_adopted() -> None:
    marker = Marker.new("apply")
    assert judge(None, marker).state == "ok"
    assert judge(marker.epoch, marker).state == "ok"


def test_a_missing_marker_after_one_was_seen_means_the_catalog_vanished() -> None:
    verdict = judge("abc", None)
    assert verdict.state == "vanished" and verdict.lost
    text = describe_loss(verdict, "redis://127.0.0.1:6379/0 (key prefix 'gt:')")
    assert text.startswith("the catalog in redis://127.0.0.1:6379/0 (key prefix 'gt:') is gone")
    assert "epoch abc" in text and "restart without persistence" in text


def test_another_epoch_means_the_catalog_seen_was_lost_and_re_created() -> None:
    new = Marker.new("beat", replaces="abc")
    verdict = judge("abc", new)
    assert verdict.state == "replaced" and verdict.lost
    assert f"epoch abc replaced by {new.epoch}" in describe_loss(verdict, "x")
    assert "by beat" in describe_loss(verdict, "x")


def test_a_marker_survives_its_hash_form() -> None:
    marker = Marker.new("beat", replaces="abc", now=100.0)
    back = Marker.from_hash({str(k): str(v) for k, v in marker.to_hash().items()})
    assert back == marker and back.lost_at == 100.0
    assert Marker.from_hash({}) is None


def test_the_epoch_memory_remembers_per_catalog_and_ignores_a_broken_file(tmp_path: Path) -> None:
    memory = EpochMemory(tmp_path / "epochs.json")
    assert memory.seen("a") is None
    memory.remember("a", "e1")
    memory.remember("b", "e2")
    assert (memory.seen("a"), memory.seen("b")) == ("e1", "e2")
    (tmp_path / "epochs.json").write_text("{not json")
    assert memory.seen("a") is None


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outage = Outage(first_s=0.5, max_s=5.0)
    outage.recovered(where="r", now=0.0)
    caplog.set_level(logging.INFO)
    delays = [outage.failed(redis.ConnectionError("refused"), where="r", now=float(i)) for i in range(6)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    outage.recovered(where="r", now=12.0)
    outage.recovered(where="r", now=13.0)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "is unreachable (ConnectionError: refused)" in lines[0]
    assert "reachable again after 12.0 s" in lines[1]
    # And a new outage starts the backoff over
    assert outage.failed(redis.ConnectionError("refused"), where="r", now=20.0) == 0.5
