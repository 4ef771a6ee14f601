"""A test world for cluster sync (no tests here): a git remote, a catalog and status in memory, the
cluster (the emulator, or a real one named by ``GITOPS_TASKS_TEST_KUBECONFIG``) and the config.

Each test uses namespaces from :func:`tests.kubeapi.fixtures.unique_name`, so a real cluster can be
shared; :meth:`World.cleanup` deletes what the test created there.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import yaml

from gitops_tasks.objects.model import Object, ObjectRef
from gitops_tasks.objects.outcome import Outcome
from gitops_tasks.sources.reconcile import reconcile as poll_git
from gitops_tasks.store.summary import summarise
from gitops_tasks.sync.cluster import Cluster
from gitops_tasks.sync.errors import ClusterError
from gitops_tasks.sync.pipeline import SyncConfig
from gitops_tasks.sync.reconcile import reconcile
from tests.gitservers import RemoteRepo
from tests.kubeapi.fixtures import KubeTarget, unique_name

#: A tiny image that exists everywhere (real clusters must pull it).
IMAGE = "registry.k8s.io/pause:3.9"


def dump(*objects: dict[str, Any]) -> str:
    return "---\n".join(yaml.safe_dump(o, sort_keys=False) for o in objects)


def namespace(name: str, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, **meta}}


def configmap(
    name: str, ns: str | None = None, data: dict[str, Any] | None = None, **meta: Any
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, **meta}
    if ns:
        metadata["namespace"] = ns
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data or {"k": "v"}}


def deployment(
    name: str, ns: str, *, image: str = IMAGE, replicas: int | None = None, **meta: Any
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "main", "image": image}]},
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, **meta},
        "spec": spec,
    }


class World:
    """One test's sync world; also the ``Lookup`` the reconciler reads the catalog through."""

    def __init__(self, tmp_path: Path, kube: KubeTarget, remote: RemoteRepo) -> None:
        self.kube = kube
        self.remote = remote
        self.secrets_dir = tmp_path / "secrets"
        self.cache_dir = tmp_path / "cache"
        self.secrets_dir.mkdir(exist_ok=True)
        self.objects: dict[ObjectRef, Object] = {}
        self.statuses: dict[ObjectRef, dict[str, Any]] = {}
        self.ns = unique_name("sync")
        self.config = SyncConfig(secrets_dir=self.secrets_dir, cache_dir=self.cache_dir)
        self.cluster = Cluster.from_kubeconfig(kube.kubeconfig)
        self.cleanups: list[tuple[str, str, str, str | None]] = [("v1", "Namespace", self.ns, None)]

    # -- the Lookup protocol -----------------------------------------------------------------

    def object(self, ref: ObjectRef) -> Object | None:
        return self.objects.get(ref)

    def status(self, ref: ObjectRef) -> dict[str, Any]:
        return self.statuses.get(ref, {})

    # -- declaring and reconciling -----------------------------------------------------------

    def connect(self, impersonate: str | None) -> Cluster:
        return Cluster.from_kubeconfig(self.kube.kubeconfig, impersonate=impersonate)

    def repository(self, name: str = "repo") -> Object:
        spec = {"url": self.remote.url, "interval": "1m", "ref": {"branch": "main"}}
        obj = Object("source.toolkit.fluxcd.io/v1", "GitRepository", name, "default", spec, {"generation": 1})
        self.objects[obj.ref] = obj
        self.poll(name)
        return obj

    def poll(self, name: str = "repo") -> None:
        ref = ObjectRef("GitRepository", "default", name)
        previous = self.statuses.get(ref, {})
        outcome = poll_git(
            self.objects[ref], previous, secrets_dir=self.secrets_dir, cache_dir=self.cache_dir
        )
        assert outcome.ready, outcome.message
        self.statuses[ref] = summarise(previous, outcome, generation=1, now=time.time())

    def commit(self, files: dict[str, str | None], repository: str = "repo") -> str:
        self.remote.commit(files)
        if ObjectRef("GitRepository", "default", repository) in self.objects:
            self.poll(repository)
        return f"main@sha1:{self.remote.head}"

    def kustomization(self, name: str, generation: int = 1, **spec: Any) -> Object:
        base = {
            "sourceRef": {"kind": "GitRepository", "name": "repo"},
            "interval": "1m",
            "prune": True,
            "path": "./",
        }
        obj = Object(
            "kustomize.toolkit.fluxcd.io/v1",
            "Kustomization",
            name,
            "default",
            {**base, **spec},
            {"generation": generation},
        )
        self.objects[obj.ref] = obj
        return obj

    def sync(self, name: str, config: SyncConfig | None = None) -> Outcome:
        ref = ObjectRef("Kustomization", "default", name)
        obj = self.objects[ref]
        previous = self.statuses.get(ref, {})
        outcome = reconcile(obj, previous, lookup=self, connect=self.connect, config=config or self.config)
        generation = int(obj.metadata.get("generation", 1))
        self.statuses[ref] = summarise(previous, outcome, generation=generation, now=time.time())
        return outcome

    # -- looking at the cluster --------------------------------------------------------------

    def get(
        self, kind: str, name: str, ns: str | None = None, api_version: str = "v1"
    ) -> dict[str, Any] | None:
        return self.cluster.get(api_version, kind, name, ns)

    def status_of(self, name: str) -> dict[str, Any]:
        return self.statuses.get(ObjectRef("Kustomization", "default", name), {})

    def inventory(self, name: str) -> list[str]:
        status = self.statuses.get(ObjectRef("Kustomization", "default", name), {})
        return [e["id"] for e in (status.get("inventory") or {}).get("entries", [])]

    def cleanup(self) -> None:
        for api_version, kind, name, ns in self.cleanups:
            with contextlib.suppress(ClusterError):
                self.cluster.delete(api_version, kind, name, ns)
        self.cluster.close()
