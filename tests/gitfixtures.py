"""Pytest fixtures for real git servers (a plugin: ``pytest_plugins = ["tests.gitfixtures"]``).

Servers are started once per session on 127.0.0.1 with free ports and stopped by PID at the end;
each test makes its own repositories with a unique name (``git_repo_name``), so tests never see
each other's state (``slow_http`` is per test, since tests change its ``delay_s``).
``sshd_server`` skips with the reason when OpenSSH's sshd is not installed.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gitservers import (
    FileRemotes,
    GitDaemon,
    RemoteRepo,
    SmartHTTPServer,
    SSHServer,
    sshd_available,
)

#: Credentials the ``smart_http_auth`` server accepts.
HTTP_USERNAME = "flux-reader"
HTTP_PASSWORD = "pw-9f8e7d6c5b4a-secret"
HTTP_TOKEN = "tok-0a1b2c3d4e5f-bearer"

_counter = itertools.count()


@pytest.fixture
def git_workdir(tmp_path: Path) -> Path:
    """A fresh directory for one test's repositories, secrets and caches."""
    path = tmp_path / "git"
    path.mkdir()
    return path


@pytest.fixture
def git_repo_name(request: pytest.FixtureRequest) -> str:
    """A repository name unique in the session (servers are shared between tests)."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40]
    return f"{slug}-{next(_counter)}"


@pytest.fixture
def file_remote(git_workdir: Path, git_repo_name: str) -> RemoteRepo:
    """A bare repository reached over ``file://``, one commit on ``main``."""
    return FileRemotes(git_workdir / "remotes").new_repo(git_repo_name)


@pytest.fixture(scope="session")
def git_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitDaemon]:
    """``git daemon`` on 127.0.0.1 (``git://``); make repositories with ``.new_repo(name)``."""
    with GitDaemon(tmp_path_factory.mktemp("git-daemon") / "repos") as server:
        yield server


@pytest.fixture(scope="session")
def smart_http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmartHTTPServer]:
    """Anonymous smart HTTP (``git http-backend``)."""
    with SmartHTTPServer(tmp_path_factory.mktemp("smart-http") / "repos") as server:
        yield server


@pytest.fixture(scope="session")
def smart_http_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmartHTTPServer]:
    """Smart HTTP accepting basic auth (:data:`HTTP_USERNAME`/:data:`HTTP_PASSWORD`) or :data:`HTTP_TOKEN`."""
    base = tmp_path_factory.mktemp("smart-http-auth") / "repos"
    with SmartHTTPServer(base, username=HTTP_USERNAME, password=HTTP_PASSWORD, token=HTTP_TOKEN) as server:
        yield server


@pytest.fixture
def slow_http(git_workdir: Path) -> Iterator[SmartHTTPServer]:
    """Anonymous smart HTTP of this test's own, so it may set ``.delay_s`` to slow every request."""
    with SmartHTTPServer(git_workdir / "slow-http" / "repos") as server:
        yield server


@pytest.fixture(scope="session")
def sshd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    """OpenSSH sshd with one deploy key (``.deploy_key_path``) and ``.known_hosts_line``."""
    ok, why = sshd_available()
    if not ok:
        pytest.skip(why)
    with SSHServer(tmp_path_factory.mktemp("sshd") / "repos") as server:
        yield server
