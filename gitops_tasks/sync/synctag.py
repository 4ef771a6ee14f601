"""Flux v1's sync tag: after a successful sync, move a Git tag to the applied commit.

Off unless a tag name is configured (Flux v1 used ``flux-sync``). A failure to push (a read-only
deploy key, a protected tag) never fails the sync: it is reported in the Kustomization's message.
"""

from __future__ import annotations

from pathlib import Path

from gitops_tasks.sync.source import Source


def move_sync_tag(source: Source, checkout_dir: Path, tag: str, *, secrets_dir: Path) -> str | None:
    """Force-push ``refs/tags/<tag>`` at the source's commit; returns an error message or ``None``."""
    from gitops_tasks.sources import GitError, GitSpec, open_spec_remote, run_git

    try:
        spec = GitSpec.from_object(source.repository)
        with open_spec_remote(spec, secrets_dir=secrets_dir) as remote:
            run_git(
                ["push", "--force", "--quiet", remote.url, f"{source.commit}:refs/tags/{tag}"],
                remote=remote,
                cwd=checkout_dir,
                timeout_s=spec.timeout_s,
                operation="git push",
            )
    except GitError as exc:
        return f"sync tag {tag!r} not moved: {exc.message}"
    return None
