"""Secrets, git's environment, URL handling and error classification (no servers)."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from gitops_tasks.sources.credentials import open_remote, read_secret, split_credentials, transport_of
from gitops_tasks.sources.errors import GitError
from gitops_tasks.sources.gitcli import classify
from gitops_tasks.sources.mirror import canonical_url, mirror_path

KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAfakefakefakefakefakefake\n-----END OPENSSH PRIVATE KEY-----\n"


def _header(env: dict[str, str]) -> str:
    assert env["GIT_CONFIG_COUNT"] == "1" and env["GIT_CONFIG_KEY_0"] == "http.extraHeader"
    return env["GIT_CONFIG_VALUE_0"]


def test_basic_auth_goes_into_an_env_header_not_the_url() -> None:
    with open_remote(
        "https://h/r.git", {"username": "bob", "password": "pw-xyz\n"}, secret_ref="ns/s"
    ) as remote:
        assert remote.url == "https://h/r.git"
        assert _header(dict(remote.env)) == "Authorization: Basic " + base64.b64encode(b"bob:pw-xyz").decode()
        assert "pw-xyz" in remote.secrets
        assert remote.env["GIT_TERMINAL_PROMPT"] == "0" and remote.env["LC_ALL"] == "C"


def test_bearer_token_wins_over_basic() -> None:
    secret = {"bearerToken": "tok-123", "username": "u", "password": "p"}
    with open_remote("https://h/r.git", secret) as remote:
        assert _header(dict(remote.env)) == "Authorization: Bearer tok-123"


def test_credentials_in_the_url_move_into_the_header() -> None:
    with open_remote("https://bob:pa%40ss@h/r.git", None) as remote:
        assert remote.url == "https://h/r.git"
        assert remote.display_url == "https://bob:***@h/r.git"
        assert _header(dict(remote.env)).endswith(base64.b64encode(b"bob:pa@ss").decode())
        assert "pa@ss" in remote.secrets


def test_half_a_basic_secret_is_stalled_naming_the_key() -> None:
    with (
        pytest.raises(GitError) as info,
        open_remote("https://h/r.git", {"username": "u"}, secret_ref="ns/s"),
    ):
        pass
    assert (info.value.reason, info.value.stalled) == ("InvalidSecret", True)
    assert "ns/s" in info.value.message and "'password'" in info.value.message


def test_ssh_writes_private_key_files_and_checks_host_keys_strictly() -> None:
    with open_remote(
        "ssh://git@h:2222/r.git", {"identity": KEY, "known_hosts": "h ssh-ed25519 AAAA"}
    ) as remote:
        command = remote.env["GIT_SSH_COMMAND"]
        for option in ("StrictHostKeyChecking=yes", "IdentitiesOnly=yes", "BatchMode=yes", "ConnectTimeout="):
            assert option in command
        assert "accept-new" not in command and KEY not in command
        key_path = Path(command.split(" -i ", 1)[1].split()[0])
        assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
        assert stat.S_IMODE(key_path.parent.stat().st_mode) == 0o700
        assert key_path.read_text() == KEY
    assert not key_path.exists()


def test_ssh_url_without_user_logs_in_as_git() -> None:
    with open_remote("ssh://h/r.git", {"identity": KEY, "known_hosts": "h k"}) as remote:
        assert remote.url == "ssh://git@h/r.git"
    with open_remote("h:org/r.git", {"identity": KEY, "known_hosts": "h k"}) as remote:
        assert remote.url == "git@h:org/r.git"


@pytest.mark.parametrize(
    ("secret", "key"),
    [
        ({"identity": KEY}, "known_hosts"),
        ({"known_hosts": "h k"}, "identity"),
        ({"identity": KEY, "known_hosts": " "}, "known_hosts"),
    ],
)
def test_ssh_without_known_hosts_or_key_is_stalled(secret: dict[str, str], key: str) -> None:
    with pytest.raises(GitError) as info, open_remote("git@h:r.git", secret, secret_ref="default/deploy"):
        pass
    assert (info.value.reason, info.value.result) == ("InvalidSecret", "stalled")
    assert f"'{key}' missing" in info.value.message and "default/deploy" in info.value.message


def test_ssh_without_secret_ref_is_stalled() -> None:
    with (
        pytest.raises(GitError, match=r"spec\.secretRef is required") as info,
        open_remote("ssh://git@h/r", None),
    ):
        pass
    assert info.value.stalled


def test_read_secret_reads_a_mounted_volume_layout(tmp_path: Path) -> None:
    # Given a Secret volume as the kubelet writes it: keys are symlinks into a ..data dir
    secret_dir = tmp_path / "default" / "creds"
    data = secret_dir / "..2026_01_01_00_00_00.000"
    data.mkdir(parents=True)
    (data / "username").write_text("u")
    (secret_dir / "..data").symlink_to(data.name)
    (secret_dir / "username").symlink_to("..data/username")
    assert read_secret(tmp_path, "default", "creds") == {"username": "u"}


def test_missing_secret_is_stalled_naming_it(tmp_path: Path) -> None:
    with pytest.raises(GitError) as info:
        read_secret(tmp_path, "default", "nope")
    assert (info.value.reason, info.value.stalled) == ("SecretNotFound", True)
    assert "default/nope" in info.value.message


@pytest.mark.parametrize(
    ("url", "transport"),
    [
        ("https://h/r", "http"),
        ("HTTP://h/r", "http"),
        ("ssh://git@h/r", "ssh"),
        ("git@github.com:org/r.git", "ssh"),
        ("git://h/r", "git"),
        ("file:///srv/r.git", "file"),
    ],
)
def test_transport_of(url: str, transport: str) -> None:
    assert transport_of(url) == transport


@pytest.mark.parametrize(
    "url", ["", "/srv/r.git", "ftp://h/r", "-oProxyCommand=x", "-oProxyCommand=x:y", "https//h"]
)
def test_unusable_urls_are_stalled(url: str) -> None:
    with pytest.raises(GitError) as info:
        transport_of(url)
    assert (info.value.reason, info.value.stalled) == ("InvalidURL", True)


def test_split_credentials_keeps_ssh_login_only() -> None:
    assert split_credentials("https://u:p@h/r") == ("https://h/r", "u", "p")
    assert split_credentials("ssh://git:p@h/r") == ("ssh://git@h/r", "git", "p")
    assert split_credentials("https://h/r") == ("https://h/r", None, None)


def test_mirror_is_shared_by_urls_differing_only_in_credentials(tmp_path: Path) -> None:
    assert canonical_url("HTTPS://u:p@Example.test/r.git/") == "https://example.test/r.git"
    assert mirror_path(tmp_path, "https://u:p@h/r.git") == mirror_path(tmp_path, "https://h/r.git")
    assert mirror_path(tmp_path, "https://h/r.git") != mirror_path(tmp_path, "https://h/other.git")
    assert len(mirror_path(tmp_path, "https://h/r.git").name) == 16


@pytest.mark.parametrize(
    ("stderr", "reason", "stalled"),
    [
        (
            "git@h: Permission denied (publickey).\nfatal: Could not read from remote repository.",
            "AuthenticationFailed",
            True,
        ),
        ("fatal: Authentication failed for 'https://h/r.git/'", "AuthenticationFailed", True),
        (
            "fatal: could not read Username for 'http://h': terminal prompts disabled",
            "AuthenticationFailed",
            True,
        ),
        (
            "fatal: unable to access 'https://h/r/': The requested URL returned error: 403",
            "AuthenticationFailed",
            True,
        ),
        (
            "No ED25519 host key is known for [h]:22 and you have requested strict checking.\n"
            "Host key verification failed.",
            "HostKeyVerificationFailed",
            True,
        ),
        (
            "@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n",
            "HostKeyVerificationFailed",
            True,
        ),
        ("fatal: '/srv/x.git' does not appear to be a git repository", "RepositoryNotFound", False),
        ("fatal: repository 'http://h/x.git/' not found", "RepositoryNotFound", False),
        (
            "fatal: remote error: access denied or repository not exported: /x.git",
            "RepositoryNotFound",
            False,
        ),
        ("ssh: connect to host h port 22: Connection timed out", "GitOperationTimedOut", False),
        ("ssh: connect to host h port 1: Connection refused", "GitOperationFailed", False),
        (
            "fatal: unable to access 'https://h/r/': The requested URL returned error: 502",
            "GitOperationFailed",
            False,
        ),
    ],
)
def test_classify_git_failures(stderr: str, reason: str, stalled: bool) -> None:
    err = classify(stderr, operation="ls-remote", display_url="https://h/r.git")
    assert (err.reason, err.stalled) == (reason, stalled)
    assert err.message.startswith("ls-remote https://h/r.git failed: ")
    assert "make sure you have the correct access rights" not in err.message


def test_classified_messages_are_redacted() -> None:
    err = classify(
        "fatal: bad header with tok-42 in it", operation="fetch", display_url="h", secrets=["tok-42"]
    )
    assert "tok-42" not in err.message and "***" in err.message


def test_git_runs_without_user_or_system_config() -> None:
    with open_remote("https://h/r.git", None) as remote:
        assert remote.env["GIT_CONFIG_NOSYSTEM"] == "1" and remote.env["GIT_CONFIG_GLOBAL"] == os.devnull
        assert "GIT_CONFIG_COUNT" not in remote.env
