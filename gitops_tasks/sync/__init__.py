"""Cluster sync: apply what a Kustomization's source holds to Kubernetes, prune what left it.

The concern behind Kustomization. :mod:`.build` reads ``spec.path`` of a checkout (plain YAML or a
kustomize overlay); :mod:`.overlay` and :mod:`.substitute` apply the spec's kustomize fields and
``postBuild`` variables; :mod:`.plan` orders, namespaces and labels the objects and holds the
prune rules; :mod:`.apply` server-side applies through :class:`~.cluster.Cluster` and prunes;
:mod:`.health` waits for readiness. :mod:`.reconcile` is the one place that turns a sync into an
:class:`~gitops_tasks.objects.outcome.Outcome`; :mod:`.diff` shows what a sync would change.

Imports: ``gitops_tasks.objects``, the public API of ``gitops_tasks.sources`` (checkout, push), the
official ``kubernetes`` client, PyYAML and the standard library; never ``store``, ``tasks``, Celery
or Redis (the catalog and status arrive through a :class:`~.source.Lookup`). I/O: the Kubernetes
API (:mod:`.cluster`, :mod:`.apply`, :mod:`.health`, :mod:`.inputs`), ``kubectl kustomize`` and
reading files (:mod:`.build`), git via ``sources``. :mod:`.inventory`, :mod:`.envsubst`,
:mod:`.substitute`, :mod:`.plan` and :func:`.health.status_of` are pure.
"""

from gitops_tasks.sync.cluster import FIELD_MANAGER, Cluster
from gitops_tasks.sync.errors import SyncError
from gitops_tasks.sync.pipeline import SyncConfig
from gitops_tasks.sync.plan import OWNER_NAME_LABEL, OWNER_NAMESPACE_LABEL

__all__ = [
    "FIELD_MANAGER",
    "OWNER_NAMESPACE_LABEL",
    "OWNER_NAME_LABEL",
    "Cluster",
    "SyncConfig",
    "SyncError",
]
