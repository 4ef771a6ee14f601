"""Status summarising and next-run math (pure)."""

from __future__ import annotations

import random

import pytest

from gitops_tasks.objects.outcome import Outcome
from gitops_tasks.store.summary import condition, next_delay_s, reconciling, summarise

NOW = 1_700_000_000.0


def delay(outcome: Outcome, failures: int = 0, interval_s: float = 60.0) -> float:
    return next_delay_s(
        outcome,
        interval_s=interval_s,
        failures=failures,
        jitter=0.05,
        backoff_base_s=5,
        backoff_max_s=600,
        wait_retry_s=2,
        rng=random.Random(1),
    )


def test_success_runs_again_at_the_interval_with_jitter() -> None:
    assert 57 <= delay(Outcome("success", "Succeeded", "ok")) <= 63


def test_stalled_is_not_retried_faster_than_the_interval() -> None:
    assert delay(Outcome("stalled", "AuthenticationFailed", "no"), failures=5) >= 57


@pytest.mark.parametrize(("failures", "low", "high"), [(1, 2.5, 5), (2, 5, 10), (3, 10, 20), (10, 30, 60)])
def test_transient_errors_back_off_exponentially_capped_by_interval(
    failures: int, low: float, high: float
) -> None:
    assert low <= delay(Outcome("transient", "GitOperationFailed", "x"), failures=failures) <= high


def test_waiting_uses_its_retry_after() -> None:
    assert delay(Outcome("waiting", "DependencyNotReady", "x", retry_after_s=7)) == 7
    assert delay(Outcome("waiting", "LockHeld", "x")) == 2


def test_summary_keeps_last_good_artifact_after_a_failure_and_counts_failures() -> None:
    good = summarise(
        {},
        Outcome("success", "Succeeded", "ok", facts={"artifact": {"revision": "r1"}}),
        generation=1,
        now=NOW,
    )
    assert condition(good, "Ready")["status"] == "True"
    failed = summarise(good, Outcome("transient", "GitOperationFailed", "boom"), generation=1, now=NOW + 5)
    assert failed["artifact"] == {"revision": "r1"}
    assert condition(failed, "Ready") == {
        "type": "Ready",
        "status": "False",
        "reason": "GitOperationFailed",
        "message": "boom",
        "lastTransitionTime": "2023-11-14T22:13:25Z",
    }
    assert failed["failures"] == 1
    again = summarise(failed, Outcome("transient", "GitOperationFailed", "boom"), generation=1, now=NOW + 9)
    assert again["failures"] == 2
    assert condition(again, "Ready")["lastTransitionTime"] == "2023-11-14T22:13:25Z"


def test_stalled_sets_the_stalled_condition_and_reconciling_marks_progress() -> None:
    stalled = summarise({}, Outcome("stalled", "HostKeyVerificationFailed", "changed"), generation=3, now=NOW)
    assert condition(stalled, "Stalled")["status"] == "True"
    assert stalled["observedGeneration"] == 3
    running = reconciling(stalled, generation=4, now=NOW)
    assert condition(running, "Reconciling")["status"] == "True"
    done = summarise(
        running, Outcome("success", "Succeeded", "ok"), generation=4, now=NOW, request_token="t1"
    )
    assert condition(done, "Reconciling") is None and condition(done, "Stalled") is None
    assert done["lastHandledReconcileAt"] == "t1"
