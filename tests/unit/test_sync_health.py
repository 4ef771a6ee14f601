"""Health checks: kstatus-like verdicts per kind, and waiting for them within a timeout."""

from __future__ import annotations

from typing import Any

import pytest

from gitops_tasks.sync.errors import HealthError
from gitops_tasks.sync.health import Target, status_of, wait_healthy


def o(kind: str, spec: dict | None = None, status: dict | None = None, **meta: Any) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": "x", **meta}, "spec": spec or {}, "status": status or {}}


def cond(kind: str, status: str, reason: str = "", message: str = "") -> dict[str, str]:
    return {"type": kind, "status": status, "reason": reason, "message": message}


DEPLOY_OK = {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (o("Deployment", {"replicas": 3}, DEPLOY_OK, generation=2), "Current"),
        (o("Deployment", {"replicas": 3}, DEPLOY_OK, generation=3), "InProgress"),
        (o("Deployment", {"replicas": 3}, {**DEPLOY_OK, "availableReplicas": 2}, generation=2), "InProgress"),
        (o("Deployment", {"replicas": 3}, {**DEPLOY_OK, "updatedReplicas": 1}, generation=2), "InProgress"),
        (o("Deployment", {"replicas": 3}, {**DEPLOY_OK, "replicas": 4}, generation=2), "InProgress"),
        (
            o("Deployment", {}, {"conditions": [cond("Progressing", "False", "ProgressDeadlineExceeded")]}),
            "Failed",
        ),
        (o("StatefulSet", {"replicas": 2}, {"readyReplicas": 2, "updatedReplicas": 2}), "Current"),
        (
            o(
                "StatefulSet",
                {"replicas": 2},
                {"readyReplicas": 2, "updatedReplicas": 2, "currentRevision": "a", "updateRevision": "b"},
            ),
            "InProgress",
        ),
        (o("StatefulSet", {"replicas": 2}, {"readyReplicas": 1, "updatedReplicas": 2}), "InProgress"),
        (
            o(
                "DaemonSet",
                {},
                {
                    "desiredNumberScheduled": 2,
                    "currentNumberScheduled": 2,
                    "updatedNumberScheduled": 2,
                    "numberAvailable": 1,
                },
            ),
            "InProgress",
        ),
        (o("Job", {}, {"conditions": [cond("Complete", "True")]}), "Current"),
        (o("Job", {}, {"conditions": [cond("Failed", "True", message="BackoffLimitExceeded")]}), "Failed"),
        (o("Job", {}, {"active": 1}), "InProgress"),
        (o("Pod", {}, {"phase": "Running", "conditions": [cond("Ready", "True")]}), "Current"),
        (o("Pod", {}, {"phase": "Pending"}), "InProgress"),
        (o("PersistentVolumeClaim", {}, {"phase": "Bound"}), "Current"),
        (o("PersistentVolumeClaim", {}, {"phase": "Pending"}), "InProgress"),
        (o("CustomResourceDefinition", {}, {"conditions": [cond("Established", "True")]}), "Current"),
        (o("Service", {"type": "LoadBalancer"}, {}), "InProgress"),
        (o("Service", {"type": "ClusterIP"}, {}), "Current"),
        (o("ConfigMap"), "Current"),
        (o("HelmRelease", {}, {"conditions": [cond("Ready", "True")]}), "Current"),
        (o("HelmRelease", {}, {"conditions": [cond("Ready", "False")]}), "InProgress"),
        (o("HelmRelease", {}, {"conditions": [cond("Ready", "False"), cond("Stalled", "True")]}), "Failed"),
        (o("Widget", {}, {"conditions": [cond("Reconciling", "True")]}), "InProgress"),
        (o("ConfigMap", deletionTimestamp="2024-01-01T00:00:00Z"), "InProgress"),
    ],
)
def test_status_of(obj: dict[str, Any], expected: str) -> None:
    assert status_of(obj)[0] == expected


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


WEB = Target("apps/v1", "Deployment", "web", "apps")
JOB = Target("batch/v1", "Job", "migrate", "apps")


def test_waits_until_every_target_is_current() -> None:
    clock = FakeClock()
    ready_at = {WEB: 2.0, JOB: 3.0}

    def get(t: Target) -> dict[str, Any]:
        if t == WEB:
            avail = 1 if clock.now >= ready_at[WEB] else 0
            return o("Deployment", {"replicas": 1}, {"updatedReplicas": 1, "availableReplicas": avail})
        done = clock.now >= ready_at[JOB]
        return o("Job", {}, {"conditions": [cond("Complete", "True")]} if done else {})

    wait_healthy([WEB, JOB], get, timeout_s=10, clock=clock, sleep=clock.sleep)
    assert 3.0 <= clock.now < 4.0


def test_timeout_names_each_object_still_waited_for() -> None:
    clock = FakeClock()
    with pytest.raises(HealthError) as err:
        wait_healthy(
            [WEB, JOB],
            lambda t: (
                None
                if t == JOB
                else o("Deployment", {"replicas": 2}, {"updatedReplicas": 2, "availableReplicas": 1})
            ),
            timeout_s=5,
            clock=clock,
            sleep=clock.sleep,
        )
    assert err.value.message == (
        "health check failed after 5s: timeout waiting for: [Deployment/apps/web status: 'InProgress' "
        "(available replicas: 1/2), Job/apps/migrate status: 'NotFound' (not found)]"
    )


def test_a_failed_object_fails_at_once() -> None:
    clock = FakeClock()
    with pytest.raises(HealthError, match=r"Job/apps/migrate status: 'Failed' \(Job failed: boom\)"):
        wait_healthy(
            [JOB],
            lambda t: o("Job", {}, {"conditions": [cond("Failed", "True", message="boom")]}),
            timeout_s=60,
            clock=clock,
            sleep=clock.sleep,
        )
    assert clock.now == 0.0
