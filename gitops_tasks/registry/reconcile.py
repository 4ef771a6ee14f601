"""ImageRepository's reconciler: the one place that decides its reasons and messages.

=========================  ==========  ========================================================
reason                     result      when
=========================  ==========  ========================================================
``Succeeded``              success     the tags were listed and stored
``ScanningDisabled``       waiting     the installation disables scanning (no request is sent)
``ImageExcluded``          waiting     the include/exclude image globs forbid this image (idem)
``RateLimited``            waiting     the registry host's limit would keep us waiting; retried
                                       after ``retry_after_s`` (re-queued, no worker slot held)
``HostBusy``               waiting     every request slot of the host in this worker is taken
                                       (a host slow to answer); re-queued after a few seconds
``InvalidImage``           stalled     ``spec.image`` has a tag, a digest or bad characters
``InvalidExclusionList``   stalled     a ``spec.exclusionList`` entry is not a regex
``SecretNotFound``         stalled     ``spec.secretRef`` / ``spec.certSecretRef`` names no Secret
``InvalidSecret``          stalled     the Secret lacks its keys or holds malformed JSON/base64
``InvalidDockerConfig``    stalled     a docker config file or credential helper failed
``AuthenticationFailed``   stalled     the registry or its token server answered 401/403
``ImageNotFound``          transient   404 / NAME_UNKNOWN: the repository does not exist (yet)
``ScanFailed``             transient   network, timeout, TLS, 5xx, malformed answers; also a
                                       host backing off after such failures (the message names
                                       its last error and when it is tried again)
``CircuitOpen``            transient   the host failed ``GITOPS_TASKS_REGISTRY_CIRCUIT_FAILURES``
                                       requests in a row: scans fail at once until the cool-down
                                       ends, then one probe request goes
``TagListTooLarge``        stalled     one answer passed ``GITOPS_TASKS_REGISTRY_MAX_RESPONSE_BYTES``
                                       or the tags passed ``GITOPS_TASKS_REGISTRY_MAX_TAGS``
``TooManyPages``           stalled     the ``Link`` chain passed ``GITOPS_TASKS_REGISTRY_MAX_PAGES``
=========================  ==========  ========================================================

Why the caps are ``stalled``: the registry will keep sending the same, and only a person (raising
the setting, or pruning tags) changes that; a stalled object is still looked at every interval.

Why ``ImageNotFound`` is transient: a repository is often declared before its first image is
pushed, and it appears without anyone touching the object; a typo also shows up at once in status
and in one error event, and the backoff is capped by ``spec.interval``. Why disabled/excluded are
``waiting``: nothing is wrong with the object, the installation chose not to scan it; the status
says why (Ready=False with that reason) and it is looked at again each interval, in case the
settings change with a restart.

Success facts (as Flux's status): ``lastScanResult`` ``{tagCount, scanTime, latestTags (the first
10 sorted descending), revision}`` and ``canonicalImageName``. ``changed`` (an event, and the
ImagePolicies re-evaluated) when the stored tag set differs from the previous scan's.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gitops_tasks.objects.kinds import interval_s
from gitops_tasks.objects.model import Object
from gitops_tasks.objects.outcome import Outcome
from gitops_tasks.registry.auth import ClusterSecrets
from gitops_tasks.registry.client import RegistryClient
from gitops_tasks.registry.errors import RegistryError
from gitops_tasks.registry.names import excluded_by, parse_image
from gitops_tasks.registry.scan import scan
from gitops_tasks.registry.tags import TagStore

SUCCEEDED = "Succeeded"
SCANNING_DISABLED = "ScanningDisabled"
IMAGE_EXCLUDED = "ImageExcluded"
RATE_LIMITED = "RateLimited"
HOST_BUSY = "HostBusy"
AUTHENTICATION_FAILED = "AuthenticationFailed"
IMAGE_NOT_FOUND = "ImageNotFound"
SCAN_FAILED = "ScanFailed"
INVALID_SPEC = "InvalidSpec"
#: Tags shown in ``lastScanResult.latestTags`` (Flux's number).
LATEST_TAGS = 10
#: Re-queue delay after a 429 that gave no Retry-After (seconds).
DEFAULT_RATE_LIMIT_RETRY_S = 10.0
#: Extra random fraction added to a rate-limit delay, so re-queued scans do not all wake together.
DEFAULT_RATE_LIMIT_JITTER = 0.2

_REASON_BY_KIND = {
    "auth": AUTHENTICATION_FAILED,
    "not_found": IMAGE_NOT_FOUND,
    "rate_limited": RATE_LIMITED,
    "invalid": INVALID_SPEC,
    "transient": SCAN_FAILED,
    "unavailable": SCAN_FAILED,
    "busy": HOST_BUSY,
    "limit": SCAN_FAILED,
}


def reconcile(
    obj: Object,
    previous_status: dict[str, Any],
    *,
    client: RegistryClient,
    store: TagStore,
    secrets_dir: Path,
    include_images: Iterable[str] = (),
    exclude_images: Iterable[str] = (),
    scanning_disabled: bool = False,
    docker_config: bool = True,
    cluster: ClusterSecrets | None = None,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> Outcome:
    """Scan ``obj`` (unless the installation forbids it) and summarise it as an :class:`Outcome`.

    Never raises :class:`RegistryError`. ``previous_status`` is the last stored status (``{}`` at
    first); its ``lastScanResult.revision`` decides ``changed``.
    """
    try:
        image = parse_image(str(obj.spec.get("image", "")))
    except RegistryError as exc:
        return _failed(obj, exc, rng)
    facts: dict[str, Any] = {"canonicalImageName": image.canonical}
    retry_s = interval_s(obj)
    if scanning_disabled:
        message = (
            "registry scanning is disabled on this installation (GITOPS_TASKS_REGISTRY_DISABLE_SCANNING)"
        )
        return Outcome("waiting", SCANNING_DISABLED, message, facts=facts, retry_after_s=retry_s)
    why = excluded_by(image, include=include_images, exclude=exclude_images)
    if why is not None:
        message = f"image {image} is not scanned on this installation: it {why}"
        return Outcome("waiting", IMAGE_EXCLUDED, message, facts=facts, retry_after_s=retry_s)
    previous = previous_status.get("lastScanResult") or {}
    try:
        result = scan(
            obj,
            client=client,
            store=store,
            secrets_dir=secrets_dir,
            previous_revision=previous.get("revision"),
            docker_config=docker_config,
            cluster=cluster,
            image=image,
        )
    except RegistryError as exc:
        outcome = _failed(obj, exc, rng)
        outcome.facts.update(facts)
        return outcome
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    facts["lastScanResult"] = {
        "tagCount": len(result.tags),
        "scanTime": stamp,
        "latestTags": result.tags[: -LATEST_TAGS - 1 : -1],  # result.tags is sorted
        "revision": result.revision,
    }
    count = f"{len(result.tags)} tag" + ("" if len(result.tags) == 1 else "s")
    changed = result.revision != previous.get("revision")
    return Outcome(
        "success",
        SUCCEEDED,
        f"successful scan: found {count}",
        facts=facts,
        revision=result.revision,
        changed=changed,
    )


def _failed(obj: Object, exc: RegistryError, rng: random.Random | None) -> Outcome:
    reason = exc.reason or _REASON_BY_KIND[exc.kind]
    message = f"{obj.ref}: {exc.message}" if not exc.message.startswith(str(obj.ref)) else exc.message
    if exc.kind in ("rate_limited", "busy"):
        base = exc.retry_after_s if exc.retry_after_s is not None else DEFAULT_RATE_LIMIT_RETRY_S
        delay = base * (1 + (rng or random.Random()).uniform(0, DEFAULT_RATE_LIMIT_JITTER)) + 0.05
        return Outcome("waiting", reason, f"{message}; scan re-queued", retry_after_s=delay)
    if exc.kind in ("auth", "invalid", "limit"):
        return Outcome("stalled", reason, message)
    return Outcome("transient", reason, message)
