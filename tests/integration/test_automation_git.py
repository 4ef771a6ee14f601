"""Image update automation against real git servers: commits, pushes, races, failures.

Each test builds a repository with marked manifests, runs the ImageUpdateAutomation reconciler
with in-memory catalog and status views, and inspects the remote's bare repository directly.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gitops_tasks.automation.locking import process_branch_lock
from gitops_tasks.automation.reconcile import Options, reconcile
from gitops_tasks.objects.model import Object, ObjectRef
from gitops_tasks.objects.outcome import Outcome
from tests.gitservers import FileRemotes, RemoteRepo, SSHServer, generate_keypair, git

WEB = """\
# web tier
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: apps
spec:
  template:
    spec:
      containers:
        - name: web
          image: "ghcr.io/org/web:1.0.0"   # {"$imagepolicy": "apps:web"}
        - name: proxy
          image: nginx:1.25 # not automated
"""
CHART = (
    "kind: HelmRelease\r\nmetadata:\r\n  name: chart\r\nspec:\r\n  values:\r\n"
    '    image:\r\n      repository: ghcr.io/org/api # {"$imagepolicy": "apps:api:name"}\r\n'
    '      tag: \'2.0.0\' # {"$imagepolicy": "apps:api:tag"}'
)
README = "# deploy repo\n"


@dataclass
class World:
    """In-memory catalog and status views, plus the objects under test."""

    objects: dict[ObjectRef, Object] = field(default_factory=dict)
    statuses: dict[ObjectRef, dict[str, Any]] = field(default_factory=dict)

    def add(self, obj: Object, status: dict[str, Any] | None = None) -> Object:
        self.objects[obj.ref] = obj
        if status is not None:
            self.statuses[obj.ref] = status
        return obj

    def get(self, ref: ObjectRef) -> Object | None:
        return self.objects.get(ref)

    def iter_kind(self, kind: str | None = None, namespace: str | None = None) -> Iterator[Object]:
        return iter(
            [o for o in self.objects.values() if kind in (None, o.kind) and namespace in (None, o.namespace)]
        )

    def get_many(self, refs: list[ObjectRef]) -> list[dict[str, Any]]:
        return [self.statuses.get(r, {}) for r in refs]

    def policy(self, name: str, image: str, tag: str, **labels: str) -> None:
        obj = Object("image.toolkit.fluxcd.io/v1", "ImagePolicy", name, "apps", {}, {"labels": labels})
        self.add(obj, {"latestImage": f"{image}:{tag}", "latestRef": {"name": image, "tag": tag}})

    def run(
        self, automation: Object, dirs: Dirs, previous: dict[str, Any] | None = None, **opts: Any
    ) -> Outcome:
        options = Options(dirs.secrets, dirs.cache, **opts)
        return reconcile(automation, previous or {}, catalog=self, statuses=self, options=options)


@dataclass
class Dirs:
    secrets: Path
    cache: Path


@pytest.fixture
def dirs(git_workdir: Path) -> Dirs:
    return Dirs(git_workdir / "secrets", git_workdir / "cache")


def source(url: str, *, branch: str | None = "main", secret: str | None = None) -> Object:
    spec: dict[str, Any] = {"url": url, "interval": "1m", "timeout": "20s"}
    if branch:
        spec["ref"] = {"branch": branch}
    if secret:
        spec["secretRef"] = {"name": secret}
    return Object("source.toolkit.fluxcd.io/v1", "GitRepository", "deploy", "apps", spec)


def automation(name: str = "auto", *, git_spec: dict[str, Any] | None = None, **spec: Any) -> Object:
    git_spec = git_spec or {}
    git_spec.setdefault("commit", {"author": {"name": "Image Bot", "email": "bot@example.test"}})
    full = {
        "interval": "5m",
        "sourceRef": {"kind": "GitRepository", "name": "deploy"},
        "git": git_spec,
        "update": {"path": "./apps", "strategy": "Setters"},
        **spec,
    }
    return Object("image.toolkit.fluxcd.io/v1", "ImageUpdateAutomation", name, "apps", full)


def world_for(url: str, **source_args: Any) -> World:
    world = World()
    world.add(source(url, **source_args))
    world.policy("web", "ghcr.io/org/web", "1.1.0", tier="web")
    world.policy("api", "ghcr.io/org/api", "2.1.0", tier="api")
    return world


def new_repo(server: Any, name: str) -> RemoteRepo:
    return server.new_repo(name, {"apps/web.yaml": WEB, "apps/chart.yaml": CHART, "README.md": README})


def tip(repo: RemoteRepo, branch: str = "main") -> str:
    return git("rev-parse", f"refs/heads/{branch}", cwd=repo.bare)


def changed_lines(repo: RemoteRepo, rev: str) -> list[str]:
    """The +/- lines of ``rev``'s diff against its parent (no headers, no context)."""
    diff = subprocess.run(
        ["git", "diff", "--unified=0", "--no-color", f"{rev}~1", rev],
        cwd=repo.bare,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [ln for ln in diff.splitlines(keepends=True) if ln[:1] in "+-" and ln[:3] not in ("+++", "---")]


def show(repo: RemoteRepo, rev: str, path: str) -> bytes:
    return subprocess.run(
        ["git", "show", f"{rev}:{path}"], cwd=repo.bare, capture_output=True, check=True
    ).stdout


EXPECTED_DIFF = [
    '-          image: "ghcr.io/org/web:1.0.0"   # {"$imagepolicy": "apps:web"}\n',
    '+          image: "ghcr.io/org/web:1.1.0"   # {"$imagepolicy": "apps:web"}\n',
    '-      tag: \'2.0.0\' # {"$imagepolicy": "apps:api:tag"}\n',
    '+      tag: \'2.1.0\' # {"$imagepolicy": "apps:api:tag"}\n',
]


@pytest.mark.parametrize("transport", ["file", "git-daemon", "http"])
def test_a_run_commits_exactly_the_marked_lines(
    request: pytest.FixtureRequest, transport: str, git_workdir: Path, git_repo_name: str, dirs: Dirs
) -> None:
    fixture = {"git-daemon": "git_daemon", "http": "smart_http"}.get(transport)
    server = request.getfixturevalue(fixture) if fixture else FileRemotes(git_workdir / "remotes")
    repo = new_repo(server, git_repo_name)
    before = tip(repo)
    world = world_for(repo.url)
    # When the automation runs
    outcome = world.run(automation(), dirs)
    # Then one commit on main changes exactly the marked values, nothing else
    assert (outcome.result, outcome.reason, outcome.changed) == ("success", "Succeeded", True)
    head = tip(repo)
    assert git("rev-parse", f"{head}~1", cwd=repo.bare) == before
    lines = [ln for ln in changed_lines(repo, head) if not ln.startswith("\\ No newline")]
    assert sorted(lines) == sorted(EXPECTED_DIFF)
    assert show(repo, head, "apps/web.yaml") == WEB.replace("web:1.0.0", "web:1.1.0").encode()
    assert show(repo, head, "apps/chart.yaml") == CHART.replace("'2.0.0'", "'2.1.0'").encode()
    assert git("log", "-1", "--format=%an <%ae>|%cn <%ce>|%B", head, cwd=repo.bare) == (
        "Image Bot <bot@example.test>|Image Bot <bot@example.test>|Update from image update automation"
    )
    assert outcome.message.startswith(f"pushed commit '{head}' to branch 'main'\n")
    assert outcome.revision == f"main@sha1:{head}"
    assert outcome.facts["lastPushCommit"] == head
    assert outcome.facts["observedPolicies"] == {
        "api": {"name": "ghcr.io/org/api", "tag": "2.1.0"},
        "web": {"name": "ghcr.io/org/web", "tag": "1.1.0"},
    }
    assert outcome.facts["observedSourceRevision"] == f"main@sha1:{before}"
    # And a second run finds nothing to do and commits nothing
    again = world.run(automation(), dirs, outcome.facts)
    assert (again.result, again.changed, tip(repo)) == ("success", False, head)
    assert (
        again.message == f"repository up-to-date; last commit {head[:7]} at {outcome.facts['lastPushTime']}"
    )


def test_push_to_another_branch_rebuilds_it_on_the_checkout_branch(
    git_daemon: Any, git_repo_name: str, dirs: Dirs
) -> None:
    repo = new_repo(git_daemon, git_repo_name)
    main = tip(repo)
    world = world_for(repo.url)
    auto = automation(git_spec={"checkout": {"ref": {"branch": "main"}}, "push": {"branch": "image-updates"}})
    first = world.run(auto, dirs)
    assert first.changed and tip(repo) == main
    assert git("rev-parse", "image-updates~1", cwd=repo.bare) == main
    # A run with nothing new leaves the push branch alone (no fresh commit every interval)
    pushed = tip(repo, "image-updates")
    idle = world.run(auto, dirs, first.facts)
    assert (idle.changed, tip(repo, "image-updates")) == (False, pushed)
    # When main moves on and a policy changes, the push branch is main + one new commit again
    repo.commit({"README.md": "# moved\n"}, "docs")
    world.policy("web", "ghcr.io/org/web", "1.2.0", tier="web")
    second = world.run(auto, dirs, first.facts)
    assert second.changed
    assert git("rev-parse", "image-updates~1", cwd=repo.bare) == tip(repo) != main
    assert git("show", "image-updates:apps/web.yaml", cwd=repo.bare).count("web:1.2.0") == 1


def test_refspec_is_pushed_with_the_branch(file_remote: RemoteRepo, dirs: Dirs) -> None:
    file_remote.commit({"apps/web.yaml": WEB})
    world = world_for(file_remote.url)
    auto = automation(git_spec={"push": {"refspec": "refs/heads/main:refs/heads/review"}})
    assert world.run(auto, dirs).changed
    assert tip(file_remote, "review") == tip(file_remote, "main")


def test_two_automations_on_one_branch_both_land(git_daemon: Any, git_repo_name: str, dirs: Dirs) -> None:
    repo = new_repo(git_daemon, git_repo_name)
    before = tip(repo)
    world = world_for(repo.url)
    web = automation("web", policySelector={"matchLabels": {"tier": "web"}})
    api = automation("api", policySelector={"matchLabels": {"tier": "api"}})
    lock = process_branch_lock()
    barrier = threading.Barrier(2)
    outcomes: dict[str, Outcome] = {}

    def run(auto: Object) -> None:
        barrier.wait()
        outcomes[auto.name] = world.run(auto, dirs, lock=lock)

    threads = [threading.Thread(target=run, args=(a,)) for a in (web, api)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # Then both pushed, one after the other, and neither change was lost
    assert {name: (o.result, o.changed) for name, o in outcomes.items()} == {
        "web": ("success", True),
        "api": ("success", True),
    }
    assert git("rev-list", "--count", f"{before}..main", cwd=repo.bare) == "2"
    assert "web:1.1.0" in git("show", "main:apps/web.yaml", cwd=repo.bare)
    assert "'2.1.0'" in git("show", "main:apps/chart.yaml", cwd=repo.bare)


def test_two_automations_without_a_lock_still_both_land_by_retrying(
    git_daemon: Any, git_repo_name: str, dirs: Dirs
) -> None:
    repo = new_repo(git_daemon, git_repo_name)
    world = world_for(repo.url)
    gate = threading.Barrier(2)
    pushes: list[str] = []

    def hold(name: str) -> Any:
        def before_push(attempt: int) -> None:
            pushes.append(f"{name}{attempt}")
            if attempt == 1:
                gate.wait(20)  # both have committed on the same tip before either pushes

        return before_push

    outcomes: dict[str, Outcome] = {}
    autos = {
        "web": automation("web", policySelector={"matchLabels": {"tier": "web"}}),
        "api": automation("api", policySelector={"matchLabels": {"tier": "api"}}),
    }
    threads = [
        threading.Thread(
            target=lambda n=n: outcomes.__setitem__(n, world.run(autos[n], dirs, before_push=hold(n)))
        )
        for n in autos
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(o.changed for o in outcomes.values()), outcomes
    # Both committed on the same tip; the loser of the race retried once on a fresh checkout
    assert sorted(pushes) in (["api1", "api2", "web1"], ["api1", "web1", "web2"])
    assert "web:1.1.0" in git("show", "main:apps/web.yaml", cwd=repo.bare)
    assert "'2.1.0'" in git("show", "main:apps/chart.yaml", cwd=repo.bare)


def test_a_rejected_push_is_retried_on_a_fresh_checkout(file_remote: RemoteRepo, dirs: Dirs) -> None:
    file_remote.commit({"apps/web.yaml": WEB})
    world = world_for(file_remote.url)
    attempts: list[int] = []

    def someone_else_pushes(attempt: int) -> None:
        attempts.append(attempt)
        if attempt == 1:
            file_remote.commit({"NOTES.md": "meanwhile\n"}, "meanwhile")

    outcome = world.run(automation(), dirs, before_push=someone_else_pushes)
    assert (outcome.result, outcome.changed, attempts) == ("success", True, [1, 2])
    head = tip(file_remote)
    assert git("log", "-1", "--format=%s", f"{head}~1", cwd=file_remote.bare) == "meanwhile"
    assert [ln for ln in changed_lines(file_remote, head)] == [
        '-          image: "ghcr.io/org/web:1.0.0"   # {"$imagepolicy": "apps:web"}\n',
        '+          image: "ghcr.io/org/web:1.1.0"   # {"$imagepolicy": "apps:web"}\n',
    ]


def test_losing_every_race_is_transient_and_pushes_nothing(file_remote: RemoteRepo, dirs: Dirs) -> None:
    file_remote.commit({"apps/web.yaml": WEB})
    world = world_for(file_remote.url)

    def always_beaten(attempt: int) -> None:
        file_remote.commit({"NOTES.md": f"meanwhile {attempt}\n"}, f"meanwhile {attempt}")

    outcome = world.run(automation(), dirs, before_push=always_beaten, max_attempts=2)
    assert (outcome.result, outcome.reason) == ("transient", "PushRejected")
    assert "2 attempts" in outcome.message
    assert git("log", "-1", "--format=%s", "main", cwd=file_remote.bare) == "meanwhile 2"
    assert "web:1.0.0" in git("show", "main:apps/web.yaml", cwd=file_remote.bare)


def test_read_only_mode_reports_and_pushes_nothing(file_remote: RemoteRepo, dirs: Dirs) -> None:
    file_remote.commit({"apps/web.yaml": WEB})
    before = tip(file_remote)
    outcome = world_for(file_remote.url).run(automation(), dirs, read_only=True)
    assert (outcome.result, outcome.changed, tip(file_remote)) == ("success", False, before)
    assert outcome.message.startswith(
        "read-only: would commit 1 change(s) to branch 'main':\napps/web.yaml:12: "
    )
    assert outcome.facts["pendingChanges"] == [
        "apps/web.yaml:12: ghcr.io/org/web:1.0.0 -> ghcr.io/org/web:1.1.0"
    ]
    assert "lastPushCommit" not in outcome.facts


def test_a_refused_push_leaves_the_remote_and_the_disk_as_they_were(
    file_remote: RemoteRepo, dirs: Dirs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file_remote.commit({"apps/web.yaml": WEB})
    before = tip(file_remote)
    hook = file_remote.bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected branch' >&2\nexit 1\n")
    hook.chmod(0o755)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    outcome = world_for(file_remote.url).run(automation(), dirs)
    assert (outcome.result, outcome.reason) == ("transient", "GitOperationFailed")
    assert "pre-receive hook declined" in outcome.message
    assert tip(file_remote) == before
    assert list(scratch.iterdir()) == []


def test_nothing_to_change_makes_no_commit(file_remote: RemoteRepo, dirs: Dirs) -> None:
    file_remote.commit({"apps/web.yaml": WEB.replace("1.0.0", "1.1.0")})
    before = tip(file_remote)
    world = World()
    world.add(source(file_remote.url))
    world.policy("web", "ghcr.io/org/web", "1.1.0")
    outcome = world.run(automation(), dirs)
    assert (outcome.result, outcome.reason, outcome.message, outcome.changed) == (
        "success",
        "Succeeded",
        "repository up-to-date",
        False,
    )
    assert tip(file_remote) == before


def test_unparsable_files_are_skipped_and_reported(file_remote: RemoteRepo, dirs: Dirs) -> None:
    broken = 'image: [ghcr.io/org/web:1.0.0 # {"$imagepolicy": "apps:web"}\n'
    file_remote.commit({"apps/web.yaml": WEB, "apps/broken.yaml": broken})
    outcome = world_for(file_remote.url).run(automation(), dirs)
    assert outcome.changed
    assert outcome.facts["skippedFiles"][0]["path"] == "apps/broken.yaml"
    assert "\nskipped apps/broken.yaml: not valid YAML" in outcome.message
    assert git("show", "main:apps/broken.yaml", cwd=file_remote.bare) + "\n" == broken


@pytest.mark.parametrize(
    ("change", "result", "reason"),
    [
        ({"update": {"path": "../outside"}}, "stalled", "InvalidUpdatePath"),
        ({"update": {"path": "./missing"}}, "waiting", "UpdatePathNotFound"),
        ({"sourceRef": {"kind": "GitRepository", "name": "nope"}}, "waiting", "SourceNotFound"),
        ({"sourceRef": {"kind": "OCIRepository", "name": "deploy"}}, "stalled", "InvalidSourceConfiguration"),
        ({"git": {}}, "stalled", "InvalidSourceConfiguration"),
        (
            {"git": {"checkout": {"ref": {"semver": ">=1"}}, "commit": {"author": {"email": "a@b"}}}},
            "stalled",
            "InvalidSourceConfiguration",
        ),
        (
            {"git": {"checkout": {"ref": {"branch": "gone"}}, "commit": {"author": {"email": "a@b"}}}},
            "waiting",
            "RefNotFound",
        ),
        (
            {"git": {"commit": {"author": {"email": "a@b"}}, "push": {"refspec": "+refs/heads/main:x"}}},
            "stalled",
            "InvalidSourceConfiguration",
        ),
        ({"update": {"strategy": "Other"}}, "stalled", "InvalidUpdateStrategy"),
    ],
)
def test_spec_and_source_problems(
    file_remote: RemoteRepo, dirs: Dirs, change: dict[str, Any], result: str, reason: str
) -> None:
    auto = automation()
    auto.spec.update(change)
    outcome = world_for(file_remote.url).run(auto, dirs)
    assert (outcome.result, outcome.reason) == (result, reason), outcome.message
    if result == "waiting" and reason != "BranchLocked":
        assert outcome.retry_after_s == 300.0


def test_template_ci_skip_and_ssh_signing_over_ssh(
    sshd_server: SSHServer, git_repo_name: str, dirs: Dirs, git_workdir: Path
) -> None:
    repo = new_repo(sshd_server, git_repo_name)
    write_secret(dirs.secrets, "deploy", identity=sshd_server.deploy_key_path.read_text(),
                 known_hosts=sshd_server.known_hosts_line + "\n")  # fmt: skip
    key, public = generate_keypair(git_workdir / "signing" / "key", "signer")
    write_secret(dirs.secrets, "signing", identity=key.read_text())
    world = world_for(repo.url, secret="deploy")
    template = (
        "Update {{ .AutomationObject }}\n\n"
        "{{ range .Changed.Changes }}- {{ .OldValue }} -> {{ .NewValue }}\n{{ end }}"
    )
    auto = automation(
        git_spec={
            "commit": {
                "author": {"name": "Bot", "email": "bot@example.test"},
                "messageTemplate": template,
                "signingKey": {"type": "ssh", "secretRef": {"name": "signing"}},
            }
        }
    )
    outcome = world.run(auto, dirs, ci_skip=True)
    assert outcome.changed, outcome.message
    head = tip(repo)
    assert git("log", "-1", "--format=%B", head, cwd=repo.bare) == (
        "Update apps/auto\n\n- 2.0.0 -> 2.1.0\n- ghcr.io/org/web:1.0.0 -> ghcr.io/org/web:1.1.0\n\n[ci skip]"
    )
    allowed = git_workdir / "signing" / "allowed"
    allowed.write_text(f"bot@example.test {public}\n")
    verified = subprocess.run(
        ["git", "-c", f"gpg.ssh.allowedSignersFile={allowed}", "verify-commit", head],
        cwd=repo.bare,
        capture_output=True,
        text=True,
        check=False,
    )
    assert verified.returncode == 0, verified.stderr
    assert 'Good "git" signature for bot@example.test' in verified.stderr


@pytest.mark.skipif(shutil.which("gpg") is None, reason="gpg not installed")
def test_gpg_signed_commit(file_remote: RemoteRepo, dirs: Dirs, tmp_path: Path) -> None:
    file_remote.commit({"apps/web.yaml": WEB})
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    env = {"GNUPGHOME": str(home)}
    gpg = ["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "sekret"]
    try:
        subprocess.run([*gpg, "--quick-gen-key", "Bot <bot@example.test>", "ed25519", "sign", "never"],
                       env=env, check=True, capture_output=True)  # fmt: skip
        armored = subprocess.run([*gpg, "--armor", "--export-secret-keys"], env=env, check=True,
                                 capture_output=True).stdout.decode()  # fmt: skip
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False, capture_output=True)
    write_secret(dirs.secrets, "gpg", **{"git.asc": armored, "passphrase": "sekret\n"})
    auto = automation(
        git_spec={
            "commit": {"author": {"email": "bot@example.test"}, "signingKey": {"secretRef": {"name": "gpg"}}}
        }
    )
    outcome = world_for(file_remote.url).run(auto, dirs)
    assert outcome.changed, outcome.message
    raw = git("cat-file", "commit", tip(file_remote), cwd=file_remote.bare)
    assert "gpgsig -----BEGIN PGP SIGNATURE-----" in raw
    assert "author gitops-tasks <bot@example.test>" in raw


def test_missing_signing_secret_is_stalled(file_remote: RemoteRepo, dirs: Dirs) -> None:
    auto = automation(
        git_spec={"commit": {"author": {"email": "a@b"}, "signingKey": {"secretRef": {"name": "none"}}}}
    )
    outcome = world_for(file_remote.url).run(auto, dirs)
    assert (outcome.result, outcome.reason) == ("stalled", "InvalidSigningKey")


def write_secret(secrets_dir: Path, name: str, **keys: str) -> None:
    directory = secrets_dir / "apps" / name
    directory.mkdir(parents=True, exist_ok=True)
    for key, value in keys.items():
        (directory / key).write_text(value)


@pytest.mark.parametrize("ref_kind", ["tag", "commit"])
def test_checkout_of_a_tag_or_commit_pushes_to_the_push_branch(
    file_remote: RemoteRepo, dirs: Dirs, ref_kind: str
) -> None:
    base = file_remote.commit({"apps/web.yaml": WEB})
    file_remote.tag("v1.0.0", message="release")
    file_remote.commit({"README.md": "# later\n"})
    ref = {"tag": "v1.0.0"} if ref_kind == "tag" else {"commit": base}
    auto = automation(git_spec={"checkout": {"ref": ref}, "push": {"branch": "hotfix"}})
    outcome = world_for(file_remote.url).run(auto, dirs)
    assert outcome.changed, outcome.message
    assert git("rev-parse", "hotfix~1", cwd=file_remote.bare) == base
    without_push_branch = automation(git_spec={"checkout": {"ref": ref}})
    refused = world_for(file_remote.url).run(without_push_branch, dirs)
    assert (refused.result, refused.reason) == ("stalled", "InvalidSourceConfiguration")
