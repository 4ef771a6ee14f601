"""GitRepository's reconciler: the one place that decides its reasons and messages.

Reasons an :class:`Outcome` can carry:

============================  ==========  ====================================================
reason                        result      when
============================  ==========  ====================================================
``Succeeded``                 success     the wanted revision is in this worker's mirror
``AuthenticationFailed``      stalled     credentials refused (401/403, publickey denied)
``HostKeyVerificationFailed`` stalled     host key unknown to, or different from, known_hosts
``SecretNotFound``            stalled     ``spec.secretRef`` names no Secret
``InvalidSecret``             stalled     a required key is missing (``known_hosts``...)
``InvalidURL``                stalled     ``spec.url`` is not a git URL
``InvalidSpec``               stalled     another spec field cannot be used
``InvalidRef``                stalled     ``spec.ref.semver`` or ``spec.ref.commit`` malformed
``RefNotFound``               waiting     the branch, tag or name is not on the remote (yet)
``NoMatchingTag``             waiting     no tag matches ``spec.ref.semver`` (yet)
``CommitNotFound``            waiting     the pinned commit is not on its branch (yet)
``MirrorLocked``              waiting     another fetch of the same URL held the mirror too long
``RepositoryNotFound``        transient   the remote says the repository does not exist
``GitOperationTimedOut``      transient   ``spec.timeout`` expired
``GitOperationFailed``        transient   any other git failure (connection refused, 5xx...)
``StorageOperationFailed``    transient   the local cache dir failed (disk full, permissions)
============================  ==========  ====================================================

``waiting`` retries after ``spec.interval``: polling is how a new ref would be noticed.
A new revision sets ``changed`` with event reason ``NewArtifact``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gitops_tasks.objects.durations import parse_duration
from gitops_tasks.objects.model import Object
from gitops_tasks.objects.outcome import Outcome
from gitops_tasks.sources.credentials import redact
from gitops_tasks.sources.errors import GitError
from gitops_tasks.sources.poll import DEFAULT_INTERVAL_S, poll

#: Event reason when a poll finds a revision different from the stored one.
NEW_ARTIFACT = "NewArtifact"


def _interval_s(obj: Object) -> float:
    try:
        return parse_duration(obj.spec["interval"]) if obj.spec.get("interval") else DEFAULT_INTERVAL_S
    except ValueError:
        return DEFAULT_INTERVAL_S


def reconcile(
    obj: Object,
    previous_status: dict[str, Any],
    *,
    secrets_dir: Path,
    cache_dir: Path,
    now: datetime | None = None,
) -> Outcome:
    """Poll ``obj`` and summarise the result as an :class:`Outcome` (never raises :class:`GitError`).

    ``previous_status`` is the last stored status (``{}`` at first); its ``artifact.commit``
    spares the fetch when nothing changed and its ``artifact.revision`` decides ``changed``.
    Success facts: ``{"artifact": {"revision", "commit", "ref", "lastUpdateTime"}}`` where
    ``lastUpdateTime`` (ISO 8601, UTC) moves only when the revision does.
    """
    previous = previous_status.get("artifact") or {}
    try:
        result = poll(obj, secrets_dir=secrets_dir, cache_dir=cache_dir, known_commit=previous.get("commit"))
    except GitError as exc:
        return Outcome(
            result=exc.result,
            reason=exc.reason,
            message=exc.message,
            retry_after_s=_interval_s(obj) if exc.waiting else None,
        )
    except OSError as exc:
        url = str(obj.spec.get("url", ""))
        return Outcome(
            result="transient",
            reason="StorageOperationFailed",
            message=redact(f"git cache for {url} failed: {exc}"),
        )
    changed = result.revision != previous.get("revision")
    stamp = (now or datetime.now(UTC)).isoformat().replace("+00:00", "Z")
    artifact = {
        "revision": result.revision,
        "commit": result.commit,
        "ref": result.ref_name,
        "lastUpdateTime": stamp
        if changed or not previous.get("lastUpdateTime")
        else previous["lastUpdateTime"],
    }
    return Outcome(
        result="success",
        reason="Succeeded",
        message=f"stored artifact for revision '{result.revision}'",
        facts={"artifact": artifact},
        revision=result.revision,
        changed=changed,
        event_reason=NEW_ARTIFACT if changed else None,
    )
