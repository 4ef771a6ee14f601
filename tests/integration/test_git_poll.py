"""Polling GitRepositories against real servers: file://, git daemon, smart HTTP, sshd.

Run with ``-p tests.gitfixtures`` until tests/conftest.py registers the plugin.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gitops_tasks.objects.model import Object
from gitops_tasks.sources.api import checkout_revision
from gitops_tasks.sources.credentials import open_remote
from gitops_tasks.sources.errors import GitError
from gitops_tasks.sources.gitcli import ls_remote
from gitops_tasks.sources.mirror import Mirror, mirror_path
from gitops_tasks.sources.poll import PollResult, poll
from gitops_tasks.sources.reconcile import reconcile
from tests.gitfixtures import HTTP_PASSWORD, HTTP_TOKEN, HTTP_USERNAME
from tests.gitservers import (
    FileRemotes,
    GitDaemon,
    RemoteRepo,
    SilentServer,
    SmartHTTPServer,
    SSHServer,
    generate_keypair,
    git,
)


def git_object(
    url: str, *, ref: dict[str, str] | None = None, secret: str | None = None, timeout: str | None = None
) -> Object:
    spec: dict[str, Any] = {"url": url, "interval": "1m"}
    if ref is not None:
        spec["ref"] = ref
    if secret is not None:
        spec["secretRef"] = {"name": secret}
    if timeout is not None:
        spec["timeout"] = timeout
    return Object("source.toolkit.fluxcd.io/v1", "GitRepository", "app", "default", spec)


def write_secret(secrets_dir: Path, name: str, **keys: str) -> None:
    directory = secrets_dir / "default" / name
    directory.mkdir(parents=True, exist_ok=True)
    for key, value in keys.items():
        (directory / key).write_text(value)


def snapshot(path: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``path`` with its size and mtime: equal snapshots mean nothing was written."""
    return {
        str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in path.rglob("*")
        if p.is_file()
    }


def all_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.rglob("*") if p.is_file() and not p.is_symlink())


@pytest.fixture
def secrets_dir(git_workdir: Path) -> Path:
    return git_workdir / "secrets"


@pytest.fixture
def cache_dir(git_workdir: Path) -> Path:
    return git_workdir / "cache"


@dataclass
class Served:
    """A repository plus what a GitRepository needs to reach it."""

    repo: RemoteRepo
    url: str
    secret: str | None = None
    #: Text that must never appear in messages, exceptions or the cache.
    sensitive: list[str] = field(default_factory=list)

    def obj(self, **kwargs: Any) -> Object:
        return git_object(self.url, secret=self.secret, **kwargs)


def ssh_secret(secrets_dir: Path, server: SSHServer, name: str = "deploy", **overrides: str) -> str:
    keys = {"identity": server.deploy_key_path.read_text(), "known_hosts": server.known_hosts_line + "\n"}
    keys.update(overrides)
    write_secret(secrets_dir, name, **{k: v for k, v in keys.items() if v is not None})
    return name


TRANSPORTS = ["file", "git-daemon", "http", "http-basic", "http-bearer", "http-url-credentials", "ssh"]


@pytest.fixture(params=TRANSPORTS)
def served(
    request: pytest.FixtureRequest, git_workdir: Path, git_repo_name: str, secrets_dir: Path
) -> Served:
    kind = request.param
    if kind == "file":
        repo = FileRemotes(git_workdir / "remotes").new_repo(git_repo_name)
        return Served(repo, repo.url)
    if kind == "git-daemon":
        repo = request.getfixturevalue("git_daemon").new_repo(git_repo_name)
        return Served(repo, repo.url)
    if kind == "http":
        repo = request.getfixturevalue("smart_http").new_repo(git_repo_name)
        return Served(repo, repo.url)
    if kind == "ssh":
        server: SSHServer = request.getfixturevalue("sshd_server")
        repo = server.new_repo(git_repo_name)
        key = server.deploy_key_path.read_text()
        return Served(repo, repo.url, ssh_secret(secrets_dir, server), [key.splitlines()[1]])
    repo = request.getfixturevalue("smart_http_auth").new_repo(git_repo_name)
    if kind == "http-basic":
        write_secret(secrets_dir, "basic", username=HTTP_USERNAME, password=HTTP_PASSWORD)
        return Served(repo, repo.url, "basic", [HTTP_PASSWORD])
    if kind == "http-bearer":
        write_secret(secrets_dir, "bearer", bearerToken=HTTP_TOKEN)
        return Served(repo, repo.url, "bearer", [HTTP_TOKEN])
    url = repo.url.replace("http://", f"http://{HTTP_USERNAME}:{HTTP_PASSWORD}@")
    return Served(repo, url, None, [HTTP_PASSWORD])


def test_poll_finds_the_default_branch_then_follows_new_commits(
    served: Served, secrets_dir: Path, cache_dir: Path
) -> None:
    obj = served.obj()
    # When the object is polled for the first time
    first = poll(obj, secrets_dir=secrets_dir, cache_dir=cache_dir, known_commit=None)
    # Then the remote HEAD's branch is chosen and its commit fetched into the mirror
    assert first == PollResult(
        f"main@sha1:{served.repo.head}", served.repo.head, "refs/heads/main", True, True
    )
    mirror = Mirror(cache_dir, served.url)
    assert mirror.has_commit(first.commit)
    before = snapshot(mirror.path)

    # When nothing changed, nothing is fetched and the mirror is untouched
    again = poll(obj, secrets_dir=secrets_dir, cache_dir=cache_dir, known_commit=first.commit)
    assert (again.revision, again.fetched, again.changed) == (first.revision, False, False)
    assert snapshot(mirror.path) == before

    # When a commit is pushed, the next poll reports and fetches it
    new = served.repo.commit({"app.yaml": "replicas: 2\n"})
    third = poll(obj, secrets_dir=secrets_dir, cache_dir=cache_dir, known_commit=first.commit)
    assert (third.revision, third.fetched, third.changed) == (f"main@sha1:{new}", True, True)
    assert mirror.has_commit(new)
    for text in served.sensitive:
        assert text.encode() not in all_bytes(cache_dir)


def test_unchanged_poll_costs_one_ls_remote(
    smart_http: SmartHTTPServer, git_repo_name: str, secrets_dir: Path, cache_dir: Path
) -> None:
    repo = smart_http.new_repo(git_repo_name)
    first = poll(git_object(repo.url), secrets_dir=secrets_dir, cache_dir=cache_dir, known_commit=None)
    with open_remote(repo.url, None) as remote:
        start = smart_http.requests
        ls_remote(remote, timeout_s=10)
        per_ls_remote = smart_http.requests - start
    start = smart_http.requests
    poll(git_object(repo.url), secrets_dir=secrets_dir, cache_dir=cache_dir, known_commit=first.commit)
    assert smart_http.requests - start == per_ls_remote


def test_known_commit_missing_from_this_workers_mirror_is_fetched_at_checkout(
    file_remote: RemoteRepo, secrets_dir: Path, git_workdir: Path
) -> None:
    # Given another worker recorded the commit, and this worker's cache is empty
    cache = git_workdir / "other-worker"
    repository = git_object(file_remote.url)
    result = poll(repository, secrets_dir=secrets_dir, cache_dir=cache, known_commit=file_remote.head)

    # Then the unchanged poll fetched nothing (one ls-remote is the whole cost)
    assert (result.fetched, result.changed) == (False, False)
    assert not Mirror(cache, file_remote.url).has_commit(file_remote.head)

    # And a checkout of the recorded revision fetches it on demand
    checkout_revision(
        repository, file_remote.head, git_workdir / "tree", secrets_dir=secrets_dir, cache_dir=cache
    )
    assert Mirror(cache, file_remote.url).has_commit(file_remote.head)
    assert (git_workdir / "tree" / "README.md").exists()


# --------------------------------------------------------------------------- refs


@pytest.fixture
def daemon_repo(git_daemon: GitDaemon, git_repo_name: str) -> RemoteRepo:
    return git_daemon.new_repo(git_repo_name)


def _poll(repo: RemoteRepo, secrets_dir: Path, cache_dir: Path, ref: dict[str, str]) -> PollResult:
    return poll(
        git_object(repo.url, ref=ref), secrets_dir=secrets_dir, cache_dir=cache_dir, known_commit=None
    )


def test_branch_ref(daemon_repo: RemoteRepo, secrets_dir: Path, cache_dir: Path) -> None:
    base = daemon_repo.head
    daemon_repo.commit({"main.txt": "1"})
    daemon_repo.branch("release", rev=base)
    result = _poll(daemon_repo, secrets_dir, cache_dir, {"branch": "release"})
    assert (result.revision, result.ref_name) == (f"release@sha1:{base}", "refs/heads/release")


def test_annotated_tag_resolves_to_its_commit(
    daemon_repo: RemoteRepo, secrets_dir: Path, cache_dir: Path
) -> None:
    tag_object = daemon_repo.tag("v1.0.0", message="release 1.0.0")
    assert tag_object != daemon_repo.head
    result = _poll(daemon_repo, secrets_dir, cache_dir, {"tag": "v1.0.0"})
    assert (result.revision, result.commit) == (f"v1.0.0@sha1:{daemon_repo.head}", daemon_repo.head)
    assert Mirror(cache_dir, daemon_repo.url).has_commit(daemon_repo.head)


def test_lightweight_tag(daemon_repo: RemoteRepo, secrets_dir: Path, cache_dir: Path) -> None:
    daemon_repo.tag("stable")
    daemon_repo.commit({"later": "x"})
    result = _poll(daemon_repo, secrets_dir, cache_dir, {"tag": "stable"})
    assert result.revision.startswith("stable@sha1:") and result.commit != daemon_repo.head


def test_semver_picks_the_highest_tag_in_range(
    daemon_repo: RemoteRepo, secrets_dir: Path, cache_dir: Path
) -> None:
    commits = {}
    for version in ("v1.0.0", "v1.2.0", "v1.10.1", "v2.0.0-rc.1", "v2.0.0"):
        commits[version] = daemon_repo.commit({"version": version}, publish=False)
        daemon_repo.tag(version, message=version, publish=False)
    daemon_repo.publish()
    assert _poll(daemon_repo, secrets_dir, cache_dir, {"semver": ">=1.0.0 <2.0.0"}).revision == (
        f"v1.10.1@sha1:{commits['v1.10.1']}"
    )
    assert _poll(daemon_repo, secrets_dir, cache_dir, {"semver": "~1.2"}).commit == commits["v1.2.0"]
    assert _poll(daemon_repo, secrets_dir, cache_dir, {"semver": "*"}).commit == commits["v2.0.0"]
    # a new matching tag moves the revision
    newer = daemon_repo.commit({"version": "1.11.0"}, publish=False)
    daemon_repo.tag("1.11.0")
    assert _poll(daemon_repo, secrets_dir, cache_dir, {"semver": "^1"}).revision == f"1.11.0@sha1:{newer}"


def test_name_ref(daemon_repo: RemoteRepo, secrets_dir: Path, cache_dir: Path) -> None:
    pr = daemon_repo.commit({"pr.txt": "change"}, publish=False)
    daemon_repo.publish("HEAD:refs/pull/1/head")
    result = _poll(daemon_repo, secrets_dir, cache_dir, {"name": "refs/pull/1/head"})
    assert (result.revision, result.ref_name) == (f"refs/pull/1/head@sha1:{pr}", "refs/pull/1/head")
    assert Mirror(cache_dir, daemon_repo.url).has_commit(pr)


def test_commit_pinned_on_its_branch(daemon_repo: RemoteRepo, secrets_dir: Path, cache_dir: Path) -> None:
    pinned = daemon_repo.head
    daemon_repo.commit({"later": "x"})
    result = _poll(daemon_repo, secrets_dir, cache_dir, {"branch": "main", "commit": pinned})
    assert (result.revision, result.commit, result.fetched) == (f"main@sha1:{pinned}", pinned, True)
    bare = _poll(daemon_repo, secrets_dir, cache_dir, {"commit": pinned})
    assert bare.revision == f"sha1:{pinned}"


def test_commit_pinned_elsewhere_is_found_by_sha(
    daemon_repo: RemoteRepo, secrets_dir: Path, cache_dir: Path
) -> None:
    git("checkout", "-q", "-b", "feature", cwd=daemon_repo.work)
    only_on_feature = daemon_repo.commit({"f": "1"})
    daemon_repo.commit({"f": "2"})  # so the pinned commit is not a ref tip
    result = _poll(daemon_repo, secrets_dir, cache_dir, {"commit": only_on_feature})
    assert result.revision == f"sha1:{only_on_feature}"
    assert Mirror(cache_dir, daemon_repo.url).has_commit(only_on_feature)


def test_commit_not_on_the_given_branch_waits(
    daemon_repo: RemoteRepo, secrets_dir: Path, cache_dir: Path
) -> None:
    git("checkout", "-q", "-b", "feature", cwd=daemon_repo.work)
    elsewhere = daemon_repo.commit({"f": "1"})
    outcome = reconcile(
        git_object(daemon_repo.url, ref={"branch": "main", "commit": elsewhere}),
        {},
        secrets_dir=secrets_dir,
        cache_dir=cache_dir,
    )
    assert (outcome.result, outcome.reason) == ("waiting", "CommitNotFound")
    assert elsewhere in outcome.message and "branch 'main'" in outcome.message


@pytest.mark.parametrize(
    ("ref", "reason"), [({"branch": "nope"}, "RefNotFound"), ({"semver": ">=5.0.0"}, "NoMatchingTag")]
)
def test_missing_refs_wait_for_the_next_interval(
    daemon_repo: RemoteRepo, secrets_dir: Path, cache_dir: Path, ref: dict[str, str], reason: str
) -> None:
    outcome = reconcile(
        git_object(daemon_repo.url, ref=ref), {}, secrets_dir=secrets_dir, cache_dir=cache_dir
    )
    assert (outcome.result, outcome.reason, outcome.retry_after_s) == ("waiting", reason, 60.0)


# --------------------------------------------------------------------------- reconcile


def test_reconcile_reports_a_new_artifact_once(
    file_remote: RemoteRepo, secrets_dir: Path, cache_dir: Path
) -> None:
    obj = git_object(file_remote.url)
    first = reconcile(obj, {}, secrets_dir=secrets_dir, cache_dir=cache_dir)
    revision = f"main@sha1:{file_remote.head}"
    assert (first.result, first.reason, first.changed, first.event_reason) == (
        "success",
        "Succeeded",
        True,
        "NewArtifact",
    )
    assert first.message == f"stored artifact for revision '{revision}'"
    artifact = first.facts["artifact"]
    assert (artifact["revision"], artifact["commit"], artifact["ref"]) == (
        revision,
        file_remote.head,
        "refs/heads/main",
    )
    assert artifact["lastUpdateTime"].endswith("Z")

    second = reconcile(obj, first.facts, secrets_dir=secrets_dir, cache_dir=cache_dir)
    assert (second.result, second.changed, second.event_reason) == ("success", False, None)
    assert second.facts["artifact"]["lastUpdateTime"] == artifact["lastUpdateTime"]


# --------------------------------------------------------------------------- failures


def _assert_failed(outcome: Any, result: str, reason: str, hidden: list[str]) -> None:
    assert (outcome.result, outcome.reason) == (result, reason), outcome.message
    for text in hidden:
        assert text not in outcome.message


def test_wrong_http_password_is_stalled_and_never_shown(
    smart_http_auth: SmartHTTPServer, git_repo_name: str, secrets_dir: Path, cache_dir: Path
) -> None:
    repo = smart_http_auth.new_repo(git_repo_name)
    write_secret(secrets_dir, "wrong", username=HTTP_USERNAME, password="not-the-password-77")
    write_secret(secrets_dir, "wrong-token", bearerToken="not-the-token-88")
    for secret in ("wrong", "wrong-token", None):
        outcome = reconcile(
            git_object(repo.url, secret=secret), {}, secrets_dir=secrets_dir, cache_dir=cache_dir
        )
        _assert_failed(
            outcome, "stalled", "AuthenticationFailed", ["not-the-password-77", "not-the-token-88"]
        )
    embedded = repo.url.replace("http://", f"http://{HTTP_USERNAME}:wrong-embedded-99@")
    with pytest.raises(GitError) as info:
        poll(git_object(embedded), secrets_dir=secrets_dir, cache_dir=cache_dir, known_commit=None)
    assert info.value.reason == "AuthenticationFailed"
    assert "wrong-embedded-99" not in str(info.value) and "wrong-embedded-99" not in repr(info.value)
    assert f"{HTTP_USERNAME}:***@" in info.value.message
    assert b"wrong-embedded-99" not in all_bytes(cache_dir)


def test_wrong_deploy_key_is_stalled(
    sshd_server: SSHServer, git_repo_name: str, git_workdir: Path, secrets_dir: Path, cache_dir: Path
) -> None:
    repo = sshd_server.new_repo(git_repo_name)
    other_key, _ = generate_keypair(git_workdir / "keys" / "not-authorized")
    ssh_secret(secrets_dir, sshd_server, "other-key", identity=other_key.read_text())
    outcome = reconcile(
        git_object(repo.url, secret="other-key"), {}, secrets_dir=secrets_dir, cache_dir=cache_dir
    )
    _assert_failed(outcome, "stalled", "AuthenticationFailed", [other_key.read_text().splitlines()[1]])
    assert "Permission denied (publickey)" in outcome.message


def test_changed_or_unknown_host_key_is_stalled(
    sshd_server: SSHServer, git_repo_name: str, git_workdir: Path, secrets_dir: Path, cache_dir: Path
) -> None:
    repo = sshd_server.new_repo(git_repo_name)
    _, impostor = generate_keypair(git_workdir / "keys" / "impostor-host")
    host = sshd_server.known_hosts_line.split()[0]
    ssh_secret(secrets_dir, sshd_server, "changed", known_hosts=f"{host} {' '.join(impostor.split()[:2])}\n")
    ssh_secret(
        secrets_dir, sshd_server, "unknown", known_hosts=f"[127.0.0.1]:1 {' '.join(impostor.split()[:2])}\n"
    )
    for secret in ("changed", "unknown"):
        outcome = reconcile(
            git_object(repo.url, secret=secret), {}, secrets_dir=secrets_dir, cache_dir=cache_dir
        )
        _assert_failed(outcome, "stalled", "HostKeyVerificationFailed", [])


def test_ssh_secret_without_known_hosts_is_stalled_before_connecting(
    sshd_server: SSHServer, git_repo_name: str, secrets_dir: Path, cache_dir: Path
) -> None:
    repo = sshd_server.new_repo(git_repo_name)
    write_secret(secrets_dir, "no-kh", identity=sshd_server.deploy_key_path.read_text())
    outcome = reconcile(
        git_object(repo.url, secret="no-kh"), {}, secrets_dir=secrets_dir, cache_dir=cache_dir
    )
    _assert_failed(outcome, "stalled", "InvalidSecret", [])
    assert "'known_hosts' missing" in outcome.message and "default/no-kh" in outcome.message


def test_missing_secret_is_stalled(file_remote: RemoteRepo, secrets_dir: Path, cache_dir: Path) -> None:
    outcome = reconcile(
        git_object(file_remote.url, secret="absent"), {}, secrets_dir=secrets_dir, cache_dir=cache_dir
    )
    _assert_failed(outcome, "stalled", "SecretNotFound", [])
    assert "default/absent" in outcome.message


@pytest.mark.parametrize("kind", ["file", "git-daemon", "http", "ssh"])
def test_removed_repository_is_transient(
    request: pytest.FixtureRequest,
    kind: str,
    git_workdir: Path,
    git_repo_name: str,
    secrets_dir: Path,
    cache_dir: Path,
) -> None:
    secret = None
    if kind == "file":
        repo = FileRemotes(git_workdir / "remotes").new_repo(git_repo_name)
    else:
        fixture = {"git-daemon": "git_daemon", "http": "smart_http", "ssh": "sshd_server"}[kind]
        server = request.getfixturevalue(fixture)
        repo = server.new_repo(git_repo_name)
        if kind == "ssh":
            secret = ssh_secret(secrets_dir, server)
    obj = git_object(repo.url, secret=secret)
    assert reconcile(obj, {}, secrets_dir=secrets_dir, cache_dir=cache_dir).ready
    shutil.rmtree(repo.bare)
    outcome = reconcile(obj, {}, secrets_dir=secrets_dir, cache_dir=cache_dir)
    _assert_failed(outcome, "transient", "RepositoryNotFound", [])


@pytest.mark.parametrize("scheme", ["git", "http", "ssh"])
def test_silent_server_times_out_at_spec_timeout(
    request: pytest.FixtureRequest, scheme: str, secrets_dir: Path, cache_dir: Path
) -> None:
    secret = None
    if scheme == "ssh":
        secret = ssh_secret(secrets_dir, request.getfixturevalue("sshd_server"))
    with SilentServer() as silent:
        url = f"{scheme}://git@127.0.0.1:{silent.port}/app.git".replace("git://git@", "git://").replace(
            "http://git@", "http://"
        )
        start = time.monotonic()
        outcome = reconcile(
            git_object(url, secret=secret, timeout="1s"), {}, secrets_dir=secrets_dir, cache_dir=cache_dir
        )
        elapsed = time.monotonic() - start
    _assert_failed(outcome, "transient", "GitOperationTimedOut", [])
    assert 0.9 < elapsed < 4, elapsed
    assert "timed out (spec.timeout 1s)" in outcome.message


def test_no_mirror_is_made_for_a_failed_poll(
    file_remote: RemoteRepo, secrets_dir: Path, cache_dir: Path
) -> None:
    reconcile(
        git_object(file_remote.url, ref={"branch": "nope"}), {}, secrets_dir=secrets_dir, cache_dir=cache_dir
    )
    assert not mirror_path(cache_dir, file_remote.url).exists()
