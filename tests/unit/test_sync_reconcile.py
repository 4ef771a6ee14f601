"""Kustomization reconcile decisions that need no cluster: source, dependencies, reasons."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gitops_tasks.objects.model import Object, ObjectRef
from gitops_tasks.sync.errors import DependencyError, SourceError
from gitops_tasks.sync.pipeline import SyncConfig
from gitops_tasks.sync.reconcile import reconcile
from gitops_tasks.sync.source import check_dependencies, resolve_source

REVISION = "main@sha1:" + "a" * 40


class Lookup:
    def __init__(self) -> None:
        self.objects: dict[ObjectRef, Object] = {}
        self.statuses: dict[ObjectRef, dict[str, Any]] = {}

    def object(self, ref: ObjectRef) -> Object | None:
        return self.objects.get(ref)

    def status(self, ref: ObjectRef) -> dict[str, Any]:
        return self.statuses.get(ref, {})

    def add(self, obj: Object, status: dict[str, Any] | None = None) -> Object:
        self.objects[obj.ref] = obj
        if status is not None:
            self.statuses[obj.ref] = status
        return obj


def ks(name: str, **spec: Any) -> Object:
    base = {"sourceRef": {"kind": "GitRepository", "name": "repo"}, "interval": "1m", "prune": True}
    return Object(
        "kustomize.toolkit.fluxcd.io/v1",
        "Kustomization",
        name,
        "default",
        {**base, **spec},
        {"generation": 1},
    )


def repo() -> Object:
    return Object(
        "source.toolkit.fluxcd.io/v1",
        "GitRepository",
        "repo",
        "default",
        {"url": "file:///x", "interval": "1m"},
    )


READY = {"conditions": [{"type": "Ready", "status": "True"}], "observedGeneration": 1}
ARTIFACT = {"artifact": {"revision": REVISION, "commit": "a" * 40, "ref": "refs/heads/main"}}


def test_source_revision_comes_from_the_recorded_artifact() -> None:
    lookup = Lookup()
    lookup.add(repo(), {**ARTIFACT, "conditions": [{"type": "Ready", "status": "False"}]})
    source = resolve_source(ks("app"), lookup)
    assert (source.revision, source.commit, source.ref_name) == (REVISION, "a" * 40, "refs/heads/main")


@pytest.mark.parametrize(
    ("setup", "message", "result"),
    [
        (lambda lk: None, "Source 'GitRepository/default/repo' not found", "waiting"),
        (lambda lk: lk.add(repo(), {}), "is not ready: no artifact yet", "waiting"),
    ],
)
def test_source_problems(setup: Any, message: str, result: str) -> None:
    lookup = Lookup()
    setup(lookup)
    with pytest.raises(SourceError, match=message) as err:
        resolve_source(ks("app"), lookup)
    assert err.value.result == result


def test_unsupported_source_kinds_stall() -> None:
    obj = ks("app", sourceRef={"kind": "OCIRepository", "name": "oci"})
    with pytest.raises(SourceError, match="OCIRepository is not supported") as err:
        resolve_source(obj, Lookup())
    assert err.value.result == "stalled"


def test_dependencies_must_be_ready_at_their_sources_revision() -> None:
    lookup = Lookup()
    lookup.add(repo(), ARTIFACT)
    app = ks("app", dependsOn=[{"name": "infra"}, {"name": "crds", "namespace": "other"}])
    with pytest.raises(DependencyError, match="dependency 'default/infra' not found"):
        check_dependencies(app, lookup)
    infra = lookup.add(ks("infra"), {"conditions": [{"type": "Ready", "status": "False"}]})
    with pytest.raises(DependencyError, match="dependency 'default/infra' is not ready"):
        check_dependencies(app, lookup)
    lookup.statuses[infra.ref] = {**READY, "lastAppliedRevision": "main@sha1:old"}
    with pytest.raises(DependencyError, match="revision is not up to date"):
        check_dependencies(app, lookup)
    lookup.statuses[infra.ref] = {**READY, "lastAppliedRevision": REVISION}
    crds = lookup.add(
        Object(
            "kustomize.toolkit.fluxcd.io/v1",
            "Kustomization",
            "crds",
            "other",
            ks("crds").spec,
            {"generation": 2},
        ),
        {**READY, "lastAppliedRevision": REVISION},
    )
    with pytest.raises(DependencyError, match="'other/crds' has not reconciled its latest generation"):
        check_dependencies(app, lookup)
    lookup.statuses[crds.ref]["observedGeneration"] = 2
    check_dependencies(app, lookup)


def test_waiting_outcomes_retry_at_the_retry_interval_and_keep_the_inventory(tmp_path: Path) -> None:
    lookup = Lookup()
    lookup.add(repo(), ARTIFACT)
    config = SyncConfig(secrets_dir=tmp_path, cache_dir=tmp_path)
    previous = {"inventory": {"entries": [{"id": "default_a__ConfigMap", "v": "v1"}]}}

    def connect(_: str | None) -> Any:
        raise AssertionError("no cluster is needed before the dependencies are ready")

    for obj, retry in (
        (ks("app", dependsOn=[{"name": "x"}]), 5.0),
        (ks("app", dependsOn=[{"name": "x"}], retryInterval="30s"), 30.0),
    ):
        outcome = reconcile(obj, previous, lookup=lookup, connect=connect, config=config)
        assert (outcome.result, outcome.reason, outcome.retry_after_s) == (
            "waiting",
            "DependencyNotReady",
            retry,
        )
        assert outcome.facts == {"lastAttemptedRevision": REVISION}
        assert outcome.revision == REVISION
