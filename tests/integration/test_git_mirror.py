"""The per-URL mirror: concurrent use, loss and corruption, checkouts. Real git, real servers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gitops_tasks.objects.model import Object
from gitops_tasks.sources.credentials import open_remote
from gitops_tasks.sources.mirror import Mirror, checkout, ensure_commit
from gitops_tasks.sources.poll import poll
from tests.gitservers import GitDaemon, RemoteRepo, git


def git_object(url: str) -> Object:
    return Object(
        "source.toolkit.fluxcd.io/v1", "GitRepository", "app", "default", {"url": url, "interval": "1m"}
    )


def test_threads_polling_one_url_share_one_mirror(
    git_daemon: GitDaemon, git_repo_name: str, git_workdir: Path
) -> None:
    repo = git_daemon.new_repo(git_repo_name)
    cache = git_workdir / "cache"

    def one(_: int) -> str:
        return poll(git_object(repo.url), secrets_dir=git_workdir, cache_dir=cache, known_commit=None).commit

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(one, range(16))) == {repo.head}
    assert [p.name for p in (cache / "git").iterdir() if p.is_dir()] == [Mirror(cache, repo.url).path.name]


def test_processes_fetching_into_one_mirror_do_not_collide(
    git_daemon: GitDaemon, git_repo_name: str, git_workdir: Path
) -> None:
    # Given several commits on several branches, and one process per branch fetching at once
    repo = git_daemon.new_repo(git_repo_name)
    heads = {}
    for n in range(4):
        git("checkout", "-q", "-B", f"b{n}", "main", cwd=repo.work)
        heads[f"refs/heads/b{n}"] = repo.commit({f"f{n}": str(n)}, publish=False)
    repo.publish()
    cache = git_workdir / "cache"
    script = textwrap.dedent(
        """
        import json, sys
        from pathlib import Path
        from gitops_tasks.sources.credentials import open_remote
        from gitops_tasks.sources.mirror import ensure_commit
        url, ref, sha, cache = sys.argv[1:]
        with open_remote(url, None) as remote:
            print(json.dumps(ensure_commit(remote, ref, sha, cache_dir=Path(cache), timeout_s=30)))
        """
    )
    root = str(Path(__file__).resolve().parents[2])
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, repo.url, ref, sha, str(cache)],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for ref, sha in heads.items()
    ]
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), [err for _, err in results]
    assert all(json.loads(out) in (True, False) for out, _ in results)
    mirror = Mirror(cache, repo.url)
    assert all(mirror.has_commit(sha) for sha in heads.values())
    assert git("fsck", "--no-progress", cwd=mirror.path) == ""


def test_a_lost_or_corrupt_mirror_is_rebuilt(file_remote: RemoteRepo, git_workdir: Path) -> None:
    cache = git_workdir / "cache"
    obj = git_object(file_remote.url)
    first = poll(obj, secrets_dir=git_workdir, cache_dir=cache, known_commit=None)
    mirror = Mirror(cache, file_remote.url)

    (mirror.path / "HEAD").write_text("garbage\n")  # git no longer sees a repository
    new = file_remote.commit({"x": "1"})
    assert poll(obj, secrets_dir=git_workdir, cache_dir=cache, known_commit=first.commit).commit == new
    assert mirror.has_commit(new)

    shutil.rmtree(mirror.path / "objects")
    newer = file_remote.commit({"x": "2"})
    again = poll(obj, secrets_dir=git_workdir, cache_dir=cache, known_commit=new)
    assert (again.fetched, again.changed, again.commit) == (True, True, newer)

    shutil.rmtree(cache)
    newest = file_remote.commit({"x": "3"})
    assert poll(obj, secrets_dir=git_workdir, cache_dir=cache, known_commit=newer).fetched
    assert Mirror(cache, file_remote.url).has_commit(newest)


def test_checkout_gives_a_work_tree_at_exactly_the_revision(
    file_remote: RemoteRepo, git_workdir: Path
) -> None:
    old = file_remote.head
    file_remote.commit({"README.md": "# changed\n", "app.yaml": "replicas: 3\n"})
    cache = git_workdir / "cache"
    with open_remote(file_remote.url, None) as remote:
        # a worker whose mirror has never seen the repository checks out a recorded revision
        dest = checkout(
            remote, old, git_workdir / "co", cache_dir=cache, timeout_s=30, ref_name="refs/heads/main"
        )
        assert git("rev-parse", "HEAD", cwd=dest) == old
        assert (dest / "README.md").read_text() == f"# {file_remote.name}\n"
        assert not (dest / "app.yaml").exists()

        independent = checkout(
            remote, file_remote.head, git_workdir / "co2", cache_dir=cache, timeout_s=30, dissociate=True
        )
    shutil.rmtree(cache)  # the mirror is a cache: an independent checkout survives losing it
    assert git("rev-parse", "HEAD", cwd=independent) == file_remote.head
    git("fsck", "--no-progress", cwd=independent)
    assert (independent / "app.yaml").read_text() == "replicas: 3\n"


def test_ensure_commit_is_a_no_op_when_the_commit_is_present(
    file_remote: RemoteRepo, git_workdir: Path
) -> None:
    cache = git_workdir / "cache"
    with open_remote(file_remote.url, None) as remote:
        assert (
            ensure_commit(remote, "refs/heads/main", file_remote.head, cache_dir=cache, timeout_s=30) is True
        )
        assert (
            ensure_commit(remote, "refs/heads/main", file_remote.head, cache_dir=cache, timeout_s=30) is False
        )
