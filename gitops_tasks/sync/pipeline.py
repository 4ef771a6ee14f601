"""The steps between a checkout and a plan: build, spec overlay, substitution, the plan; and the
target cluster.

Shared by the reconciler and the CLI (``gitops-tasks build`` / ``diff``), so both see exactly the
objects a sync would apply.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gitops_tasks.objects.model import Object
from gitops_tasks.sync import decrypt, substitute
from gitops_tasks.sync.build import DEFAULT_BUILD_TIMEOUT_S, Builder, resolve_path
from gitops_tasks.sync.cluster import Cluster
from gitops_tasks.sync.errors import KubeConfigError, SyncError
from gitops_tasks.sync.inputs import HomeCluster, SecretReader, kubeconfig_from_secret
from gitops_tasks.sync.manifests import Manifest
from gitops_tasks.sync.overlay import apply_common_metadata, apply_kustomize_fields, needs_kustomize
from gitops_tasks.sync.plan import Owner, Plan, Scope, make_plan


@dataclass(frozen=True)
class SyncConfig:
    """Process-wide sync settings (see ``gitops_tasks.tasks.sync.sync_config``)."""

    secrets_dir: Path
    cache_dir: Path
    #: Namespace of namespaced objects that have none and no ``spec.targetNamespace``.
    default_namespace: str = "default"
    #: Namespaces objects may be applied to (empty: any).
    allowed_namespaces: tuple[str, ...] = ()
    #: Unset ``${VAR}`` without a default is an error (Flux's StrictPostBuildSubstitutions).
    strict_substitution: bool = False
    #: Git tag moved to each applied revision (Flux v1's ``flux-sync``); empty: off.
    sync_tag: str = ""
    #: kubectl binary for kustomize builds (``None``: ``$KUBECTL`` or ``kubectl`` on PATH).
    kubectl: str | None = None
    build_timeout_s: float = DEFAULT_BUILD_TIMEOUT_S
    #: ``NAMESPACE/NAME`` of the Secret whose ``*.agekey`` keys decrypt for a ``spec.decryption``
    #: without a secretRef (Flux's ``--sops-age-secret``); empty: none.
    sops_age_secret: str = ""
    #: Decryption keys used instead of ``spec.decryption``'s Secret (``--decryption-secret``).
    decryption_keys: tuple[tuple[str, str], ...] | None = None


def owner_of(obj: Object) -> Owner:
    return Owner(obj.name, obj.namespace)


def decryptor_for(obj: Object, *, read: SecretReader, config: SyncConfig) -> decrypt.Decryptor:
    """The SOPS decryption of one render of ``obj`` (``spec.decryption``). Raises ``DecryptionError``."""
    if config.decryption_keys is not None and (obj.spec.get("decryption") or {}).get("provider") == "sops":
        return decrypt.from_keys(dict(config.decryption_keys), "--decryption-secret")
    return decrypt.for_kustomization(obj, read=read, age_secret=config.sops_age_secret)


def render(obj: Object, root: Path, *, read: SecretReader, config: SyncConfig) -> list[Manifest]:
    """Build ``spec.path`` of the checkout at ``root`` (decrypting what ``spec.decryption`` says),
    apply the spec's kustomize fields and ``commonMetadata``, then substitute ``postBuild``
    variables. Raises ``PathError``, ``BuildError``, ``DecryptionError``, ``SubstituteError`` (and
    ``ClusterError`` when ``read`` needs the cluster)."""
    path = obj.spec.get("path")
    with decryptor_for(obj, read=read, config=config) as decryptor:
        try:
            builder = Builder(
                root,
                kubectl=config.kubectl,
                timeout_s=config.build_timeout_s,
                decryptor=decryptor if decryptor.active else None,
            )
            manifests = decryptor.documents(builder.build(path))
            manifests = apply_kustomize_fields(
                manifests,
                obj.spec,
                root=builder.root,
                directory=resolve_path(builder.root, path),
                kustomize=lambda directory: builder.kustomize(directory, check_refs=False),
            )
            if needs_kustomize(obj.spec):
                manifests = decryptor.documents(manifests)
            apply_common_metadata(manifests, obj.spec)
            return substitute.post_build(
                manifests, obj.spec, read=read, namespace=obj.namespace, strict=config.strict_substitution
            )
        except SyncError as exc:  # kustomize may quote a decrypted file in its error
            exc.message = decryptor.redact(exc.message)
            exc.args = (exc.message,)
            raise


def plan_for(obj: Object, manifests: list[Manifest], *, scope: Scope, config: SyncConfig) -> Plan:
    """What a sync of ``obj`` applies: ``spec.targetNamespace`` (else each object's namespace or
    the default one), our owner labels, ``spec.force``, in apply order. Raises ``PlanError``."""
    return make_plan(
        manifests,
        owner=owner_of(obj),
        scope=scope,
        target_namespace=obj.spec.get("targetNamespace"),
        default_namespace=config.default_namespace,
        allowed_namespaces=config.allowed_namespaces,
        force=bool(obj.spec.get("force")),
    )


def impersonation(obj: Object) -> str | None:
    """The user to impersonate for ``spec.serviceAccountName`` (in the Kustomization's namespace)."""
    account = obj.spec.get("serviceAccountName")
    return f"system:serviceaccount:{obj.namespace}:{account}" if account else None


def target_cluster(
    obj: Object, *, connect: Callable[[str | None], Cluster], home: HomeCluster, config: SyncConfig
) -> Cluster:
    """The cluster ``obj`` applies to: ``spec.kubeConfig.secretRef``'s, else the configured one
    (``connect(impersonate)``), impersonating ``spec.serviceAccountName`` when set.
    Raises :class:`KubeConfigError`."""
    kube_config = obj.spec.get("kubeConfig") or {}
    user = impersonation(obj)
    if kube_config.get("configMapRef"):
        raise KubeConfigError(
            "spec.kubeConfig.configMapRef (workload identity) is not supported; use secretRef"
        )
    if kube_config.get("secretRef"):
        text, origin = kubeconfig_from_secret(
            kube_config["secretRef"], obj.namespace, secrets_dir=config.secrets_dir, home=home
        )
        return Cluster.from_kubeconfig_text(text, origin=origin, impersonate=user)
    return connect(user)
