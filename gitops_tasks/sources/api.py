"""What other concerns (sync, automation) may use from Git sources: check out a recorded revision.

The recorded revision in a GitRepository's status is the truth; any worker can materialise it
here, fetching into its own mirror first when the commit is new to it.
"""

from __future__ import annotations

from pathlib import Path

from gitops_tasks.objects.model import Object
from gitops_tasks.sources.credentials import Remote
from gitops_tasks.sources.mirror import checkout
from gitops_tasks.sources.poll import GitSpec, open_spec_remote


def checkout_revision(
    repository: Object,
    commit: str,
    dest_dir: Path,
    *,
    secrets_dir: Path,
    cache_dir: Path,
    ref_name: str | None = None,
    dissociate: bool = False,
) -> Path:
    """Check out ``commit`` of GitRepository ``repository`` into ``dest_dir`` (detached HEAD).

    ``ref_name`` (from ``status.artifact.ref``) lets the fetch use the advertised ref; ``None``
    fetches the commit by SHA. Bounded by the repository's ``spec.timeout``. Raises
    :class:`~gitops_tasks.sources.errors.GitError` (already redacted and classified).
    """
    spec = GitSpec.from_object(repository)
    with open_spec_remote(spec, secrets_dir=secrets_dir) as remote:
        return checkout(
            remote,
            commit,
            dest_dir,
            cache_dir=cache_dir,
            timeout_s=spec.timeout_s,
            ref_name=ref_name,
            dissociate=dissociate,
        )


__all__ = ["GitSpec", "Remote", "checkout_revision", "open_spec_remote"]
