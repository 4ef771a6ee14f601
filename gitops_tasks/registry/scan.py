"""One scan of one ImageRepository: name → credentials → tag list → exclusionList → store."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from gitops_tasks.objects.kinds import timeout_s
from gitops_tasks.objects.model import Object
from gitops_tasks.objects.regex import Pattern, RegexError, compile_regex
from gitops_tasks.objects.schema import regex_problem
from gitops_tasks.registry.auth import ClusterSecrets, resolve_credentials, tls_from_secret
from gitops_tasks.registry.client import RegistryClient
from gitops_tasks.registry.errors import RegistryError
from gitops_tasks.registry.names import ImageName, parse_image
from gitops_tasks.registry.tags import TagStore, sorted_tags

#: Flux's ``spec.exclusionList`` default when the field is absent: drop cosign signature tags.
DEFAULT_EXCLUSION_LIST = (r"^.*\.sig$",)


@dataclass(frozen=True)
class ScanResult:
    """What a scan stored, and what it cost."""

    image: ImageName
    #: The kept tags, sorted.
    tags: list[str]
    #: ``sha256:…`` of the kept tags (see :func:`~gitops_tasks.registry.tags.tags_revision`).
    revision: str
    #: Tags the exclusionList dropped.
    excluded: int
    pages: int
    requests: int
    token_requests: int


def exclusion_patterns(obj: Object) -> list[Pattern]:
    """``spec.exclusionList`` compiled (Flux's default when absent; an empty list excludes nothing).

    Raises :class:`RegistryError` (``invalid``, ``InvalidExclusionList``) naming a bad regex.
    """
    raw = obj.spec.get("exclusionList")
    patterns = DEFAULT_EXCLUSION_LIST if raw is None else tuple(raw)
    compiled = []
    for index, pattern in enumerate(patterns):
        try:
            compiled.append(compile_regex(str(pattern)))
        except RegexError as exc:
            raise RegistryError(
                "invalid",
                f"{obj.ref}: spec.exclusionList[{index}]: {regex_problem(str(pattern), exc)}",
                reason="InvalidExclusionList",
            ) from None
    return compiled


def without_excluded(tags: Iterable[str], patterns: list[Pattern]) -> list[str]:
    """``tags`` minus those any pattern finds (RE2 search, as Go's ``MatchString``)."""
    return [tag for tag in tags if not any(p.matches(tag) for p in patterns)]


def scan(
    obj: Object,
    *,
    client: RegistryClient,
    store: TagStore,
    secrets_dir: Path,
    previous_revision: str | None = None,
    docker_config: bool = True,
    cluster: ClusterSecrets | None = None,
    image: ImageName | None = None,
) -> ScanResult:
    """List ``obj``'s tags, drop the excluded ones and store the rest under ``obj.ref.key``.

    ``previous_revision`` (the last scan's) spares rewriting an unchanged list. ``docker_config``
    lets docker config files and credential helpers supply credentials. ``image`` is
    ``spec.image`` parsed, when the caller has it already. Raises :class:`RegistryError`; the
    stored list changes only after a complete listing.
    """
    if image is None:
        image = parse_image(str(obj.spec.get("image", "")))
    patterns = exclusion_patterns(obj)
    credentials = resolve_credentials(
        obj, image, secrets_dir=secrets_dir, docker_config=docker_config, cluster=cluster
    )
    tls = tls_from_secret(obj, secrets_dir=secrets_dir)
    listing = client.list_tags(
        image,
        credentials=credentials,
        tls=tls,
        insecure=bool(obj.spec.get("insecure", False)),
        timeout_s=timeout_s(obj),
    )
    # The one sort of the list (none when the registry sent it sorted); the store keeps this order.
    kept = sorted_tags(without_excluded(listing.tags, patterns))
    revision = store.put(obj.ref.key, kept, previous_revision=previous_revision)
    return ScanResult(
        image=image,
        tags=kept,
        revision=revision,
        excluded=len(listing.tags) - len(kept),
        pages=listing.pages,
        requests=listing.requests,
        token_requests=listing.token_requests,
    )
