"""Git sources: polling remotes for the wanted revision and the local mirror cache.

The concern behind GitRepository. A poll asks the remote for its refs (one ``ls-remote``, or
for ``git://`` one protocol v0 conversation in-process: :mod:`.wire`), chooses the wanted ref
(branch, tag, semver range, name or commit: :mod:`.refs`), and fetches into a per-URL bare
mirror only when the chosen commit is new to this worker (:mod:`.mirror`).
:mod:`.reconcile` is the one place that turns a poll into an :class:`~gitops_tasks.objects.outcome.Outcome`
(reasons and messages for GitRepository); everything else raises :class:`.errors.GitError`.

Imports: ``gitops_tasks.objects`` and the standard library only (not ``store``, ``tasks``,
Celery or Redis). I/O: runs ``git`` (and ``ssh``) as subprocesses, talks to ``git://`` servers
over TCP (:mod:`.wire`), reads secrets from a mounted Secret-volume directory, writes key
files to private temp dirs and mirrors under the cache dir. :mod:`.refs`, the parsers in
:mod:`.wire` and the masking helpers in :mod:`.credentials` are pure.
"""

from gitops_tasks.sources.api import GitSpec, Remote, checkout_revision, open_spec_remote
from gitops_tasks.sources.credentials import mask_url
from gitops_tasks.sources.errors import GitError
from gitops_tasks.sources.gitcli import ls_remote, run_git

__all__ = [
    "GitError",
    "GitSpec",
    "Remote",
    "checkout_revision",
    "ls_remote",
    "mask_url",
    "open_spec_remote",
    "run_git",
]
