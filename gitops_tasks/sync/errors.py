"""The exceptions of the sync concern, one per step, each knowing what should happen next.

Steps raise these; :mod:`gitops_tasks.sync.reconcile` alone turns them into Flux reasons and an
:class:`~gitops_tasks.objects.outcome.Outcome`. Messages name the object (``Deployment/apps/web``) or
the file (``apps/web.yaml: document 2 (line 14)``), what was wrong and, where it helps, what was
expected. They never contain credentials.
"""

from __future__ import annotations

from typing import Literal

from gitops_tasks.sync.inventory import Inventory

#: What the caller should do after a :class:`SyncError` (a subset of ``Outcome.result``).
ErrorResult = Literal["transient", "stalled", "waiting"]


class SyncError(Exception):
    """Base class: ``message`` is safe for status and events; ``result`` says what happens next."""

    #: Default classification of the subclass.
    default_result: ErrorResult = "stalled"

    def __init__(self, message: str, *, result: ErrorResult | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.result: ErrorResult = result or self.default_result


class PathError(SyncError):
    """``spec.path`` is missing, not a directory, or leads out of the repository."""


class BuildError(SyncError):
    """The manifests could not be built: invalid YAML, a kustomize failure, no ``kubectl``."""


class SubstituteError(SyncError):
    """Post-build substitution failed: a bad variable name or expression, a strict-mode miss, or a
    ``substituteFrom`` source that is missing (``transient``: it may appear) or unreadable."""


class DecryptionError(SyncError):
    """SOPS decryption failed (``spec.decryption``): no key for a file, a MAC mismatch, an
    unreadable decryption Secret (``transient`` when it is missing: it may appear). The message
    names the file or object and never holds a value, decrypted or not."""


class PlanError(SyncError):
    """The built objects cannot be applied as declared: a namespace outside the allow-list, a
    duplicate object, a kind the cluster does not serve (``transient``: its CRD may come)."""


class ClusterError(SyncError):
    """The Kubernetes API refused a request or could not be reached.

    ``status`` is the HTTP status (0 when the API was unreachable) and ``reason`` the API's
    ``Status.reason`` (``Invalid``, ``NotFound``, ``Conflict``...). 400, 403, 422 and an
    unauthorised client need a person (``stalled``); everything else is worth retrying.
    """

    def __init__(self, message: str, *, status: int = 0, reason: str = "") -> None:
        stalled = status in (400, 401, 403, 422)
        super().__init__(message, result="stalled" if stalled else "transient")
        self.status = status
        self.reason = reason

    @property
    def immutable(self) -> bool:
        """True for a 422 caused by a change to a field that cannot change after creation."""
        text = self.message.lower()
        return self.status == 422 and any(
            hint in text for hint in ("immutable", "may not change", "cannot change", "cannot be changed")
        )


class ApplyError(SyncError):
    """An object could not be applied (its dry run or its apply failed); names the object."""

    def __init__(self, object_name: str, cause: ClusterError) -> None:
        super().__init__(f"{object_name}: {cause.message}", result=cause.result)
        self.object_name = object_name
        self.cause = cause


class PruneError(SyncError):
    """Deleting stale objects failed; ``remaining`` are the inventory ids that still exist."""

    default_result: ErrorResult = "transient"

    def __init__(self, message: str, *, remaining: Inventory) -> None:
        super().__init__(message)
        self.remaining = remaining


class HealthError(SyncError):
    """Health checks failed or did not pass within ``spec.timeout``."""

    default_result: ErrorResult = "transient"


class KubeConfigError(SyncError):
    """No usable cluster configuration: a missing or invalid kubeconfig (file or Secret)."""


class NoClusterConfigured(KubeConfigError):
    """No cluster is configured at all: no kubeconfig setting, ``$KUBECONFIG``, ``~/.kube/config``
    or pod service account (the engine then runs cluster-less: catalog objects only)."""


class OwnershipError(SyncError):
    """An object of the build is managed by another Kustomization (Flux's "already managed")."""


class SourceError(SyncError):
    """The source is missing, of an unsupported kind, or has no artifact yet (``waiting``)."""

    default_result: ErrorResult = "waiting"


class DependencyError(SyncError):
    """A ``dependsOn`` Kustomization is missing or not ready at its source's revision."""

    default_result: ErrorResult = "waiting"
