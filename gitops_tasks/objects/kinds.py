"""The kinds this engine reconciles: accepted apiVersions, spec schemas, queues and defaults.

Also the pure helpers the rest of the code uses to read an object the way Flux does
(:func:`interval_s`, :func:`timeout_s`, :func:`source_ref`, :func:`dependents_of`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gitops_tasks.objects import specs, specs_image, specs_notify
from gitops_tasks.objects.durations import parse_duration
from gitops_tasks.objects.model import OWN_API_VERSION, Object, ObjectRef
from gitops_tasks.objects.schema import Obj

#: Flux's GitRepository ``spec.timeout`` default (git operations).
DEFAULT_GIT_TIMEOUT_S = 60.0
#: Flux's Provider ``spec.timeout`` default (sending one notification).
DEFAULT_PROVIDER_TIMEOUT_S = 15.0
#: One ImageUpdateAutomation run: 3 × the default git timeout plus 30 s for the branch lock.
DEFAULT_AUTOMATION_TIMEOUT_S = 210.0
#: Flux's Provider and Receiver ``spec.interval`` default.
DEFAULT_NOTIFY_INTERVAL_S = 600.0
#: Timeout for kinds whose Flux spec has no ``timeout`` (ImagePolicy, ImageUpdateAutomation...).
DEFAULT_TIMEOUT_S = 60.0
#: Flux never lets an ImageRepository scan time out sooner than this.
MIN_IMAGE_TIMEOUT_S = 1.0

_SOURCE = "source.toolkit.fluxcd.io"
_IMAGE = "image.toolkit.fluxcd.io"
_KUSTOMIZE = "kustomize.toolkit.fluxcd.io"
_NOTIFY = "notification.toolkit.fluxcd.io"


@dataclass(frozen=True)
class KindInfo:
    kind: str
    #: Accepted apiVersions, current Flux version first, our own group last.
    api_versions: tuple[str, ...]
    spec: Obj
    #: The Celery queue its reconcile task runs on.
    queue: str
    #: Lower-case names the CLI accepts besides the kind itself and its plural.
    aliases: tuple[str, ...] = ()
    #: apiVersions that still allow ``specs.LEGACY_FIELDS``.
    legacy_versions: tuple[str, ...] = ()


def _versions(group: str, *versions: str) -> tuple[str, ...]:
    return (*(f"{group}/{v}" for v in versions), OWN_API_VERSION)


_INFOS = (
    KindInfo(
        "GitRepository",
        _versions(_SOURCE, "v1", "v1beta2", "v1beta1"),
        specs.GIT_REPOSITORY,
        "git",
        ("gitrepo", "gitrepos", "git", "sourcegit"),
        (f"{_SOURCE}/v1beta2", f"{_SOURCE}/v1beta1"),
    ),
    KindInfo(
        "ImageRepository",
        _versions(_IMAGE, "v1", "v1beta2", "v1beta1"),
        specs_image.IMAGE_REPOSITORY,
        "registry",
        ("imagerepo", "imagerepos", "imgrepo", "imagerepositories"),
    ),
    KindInfo(
        "ImagePolicy",
        _versions(_IMAGE, "v1", "v1beta2", "v1beta1"),
        specs_image.IMAGE_POLICY,
        "registry",
        ("imagepol", "imgpol", "imagepolicies"),
    ),
    KindInfo(
        "ImageUpdateAutomation",
        _versions(_IMAGE, "v1", "v1beta2", "v1beta1"),
        specs_image.IMAGE_UPDATE_AUTOMATION,
        "automation",
        ("imageupdate", "imageupdates", "iua"),
    ),
    KindInfo(
        "Kustomization",
        _versions(_KUSTOMIZE, "v1", "v1beta2"),
        specs.KUSTOMIZATION,
        "sync",
        ("ks",),
        (f"{_KUSTOMIZE}/v1beta2",),
    ),
    KindInfo(
        "Provider",
        _versions(_NOTIFY, "v1beta3", "v1beta2"),
        specs_notify.PROVIDER,
        "notify",
        ("alertprovider", "alertproviders"),
    ),
    KindInfo("Alert", _versions(_NOTIFY, "v1beta3", "v1beta2"), specs_notify.ALERT, "notify"),
    KindInfo("Receiver", _versions(_NOTIFY, "v1", "v1beta2"), specs_notify.RECEIVER, "notify"),
)

KIND_INFO: dict[str, KindInfo] = {info.kind: info for info in _INFOS}
#: Every kind name, in the order above (sources first).
KINDS: tuple[str, ...] = tuple(KIND_INFO)
#: kind → accepted apiVersions.
API_VERSIONS: dict[str, tuple[str, ...]] = {info.kind: info.api_versions for info in _INFOS}
#: kind → Celery queue its reconcile runs on.
QUEUE_BY_KIND: dict[str, str] = {info.kind: info.queue for info in _INFOS}


def _plural(kind: str) -> str:
    lower = kind.lower()
    return lower[:-1] + "ies" if lower.endswith("y") else lower + "s"


_ALIASES: dict[str, str] = {}
for _info in _INFOS:
    for _alias in (_info.kind.lower(), _plural(_info.kind), *_info.aliases):
        _ALIASES[_alias] = _info.kind


def kind_from_cli(name: str) -> str:
    """The kind for a CLI spelling: any case, plural, Flux short name, ``kind.group``.

    ``gitrepo``, ``gitrepositories``, ``GitRepository`` and ``gitrepository.source.toolkit.fluxcd.io``
    all give ``GitRepository``. Raises ``ValueError`` listing the valid kinds.
    """
    key = name.strip().split(".", 1)[0].lower().replace("-", "").replace("_", "")
    kind = _ALIASES.get(key)
    if kind is None:
        raise ValueError(f"unknown kind {name!r}; valid kinds: {', '.join(KINDS)}")
    return kind


def _duration(obj: Object, field: str) -> float | None:
    value = obj.spec.get(field)
    return parse_duration(value) if value else None


def interval_s(obj: Object) -> float:
    """Seconds between reconciles (``spec.interval``, with Flux's default for the kind).

    ``0.0`` means the kind is not reconciled on a timer: an Alert, or an ImagePolicy without
    ``digestReflectionPolicy: Always`` (it is evaluated after each scan of its repository).
    """
    interval = _duration(obj, "interval")
    if interval is not None:
        return interval
    if obj.kind in ("Provider", "Receiver"):
        return DEFAULT_NOTIFY_INTERVAL_S
    return 0.0


def retry_interval_s(obj: Object) -> float:
    """Seconds before retrying a failed reconcile: Kustomization ``spec.retryInterval``, else the interval."""
    retry = _duration(obj, "retryInterval") if obj.kind == "Kustomization" else None
    return retry if retry is not None else interval_s(obj)


def timeout_s(obj: Object) -> float:
    """Seconds one reconcile may take (``spec.timeout``, else Flux's default for the kind).

    GitRepository 60s; ImageRepository and Kustomization the interval (ImageRepository at least
    1s); Provider 15s; ImageUpdateAutomation ``DEFAULT_AUTOMATION_TIMEOUT_S`` (two listings, a
    checkout and a push, each bounded by the source's timeout, plus waiting for the branch lock);
    other kinds without a timeout field ``DEFAULT_TIMEOUT_S``.
    """
    timeout = _duration(obj, "timeout")
    if obj.kind == "ImageRepository":
        return max(timeout if timeout is not None else interval_s(obj), MIN_IMAGE_TIMEOUT_S)
    if timeout is not None:
        return timeout
    if obj.kind == "GitRepository":
        return DEFAULT_GIT_TIMEOUT_S
    if obj.kind == "Kustomization":
        return interval_s(obj) or DEFAULT_TIMEOUT_S
    if obj.kind == "Provider":
        return DEFAULT_PROVIDER_TIMEOUT_S
    if obj.kind == "ImageUpdateAutomation":
        return DEFAULT_AUTOMATION_TIMEOUT_S
    return DEFAULT_TIMEOUT_S


def source_ref(obj: Object) -> ObjectRef | None:
    """What ``obj`` reads from: a Kustomization's or ImageUpdateAutomation's ``sourceRef``, an
    ImagePolicy's ``imageRepositoryRef``. The namespace defaults to the object's own."""
    if obj.kind == "ImagePolicy":
        target, kind = obj.spec.get("imageRepositoryRef"), "ImageRepository"
    elif obj.kind in ("Kustomization", "ImageUpdateAutomation"):
        target = obj.spec.get("sourceRef")
        kind = (target.get("kind") or "GitRepository") if isinstance(target, dict) else ""
    else:
        return None
    if not isinstance(target, dict) or not target.get("name"):
        return None
    return ObjectRef(kind, target.get("namespace") or obj.namespace, target["name"])


def dependents_of(ref: ObjectRef, objects: Iterable[Object]) -> list[ObjectRef]:
    """The objects to reconcile after ``ref`` changed, sorted: those whose ``sourceRef`` /
    ``imageRepositoryRef`` points at it, and Kustomizations whose ``dependsOn`` names it."""
    return sorted({obj.ref for obj in objects if source_ref(obj) == ref or ref in depends_on(obj)})


def depends_on(obj: Object) -> list[ObjectRef]:
    """A Kustomization's ``spec.dependsOn`` as references (namespace defaults to its own)."""
    if obj.kind != "Kustomization":
        return []
    out = []
    for entry in obj.spec.get("dependsOn") or []:
        if isinstance(entry, dict) and entry.get("name"):
            out.append(
                ObjectRef("Kustomization", str(entry.get("namespace") or obj.namespace), str(entry["name"]))
            )
    return out
