"""Native git:// listing (sources.wire) against real servers, checked against `git ls-remote`.

Every comparison runs both paths on the same server: ``gitcli.ls_remote`` (native for git://)
and ``git -c protocol.version=0 ls-remote --symref`` through ``gitcli.run_git`` (what
``ls_remote`` ran before). A scripted TCP server plays misbehaving git servers and records the
bytes each client sent, so the native request can be compared with git's byte for byte.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import pytest

from gitops_tasks.sources.credentials import open_remote
from gitops_tasks.sources.errors import GitError
from gitops_tasks.sources.gitcli import ls_remote, run_git
from gitops_tasks.sources.refs import RemoteRefs
from gitops_tasks.sources.wire import pkt_line
from tests.gitservers import GIT_ENV, GitDaemon, RemoteRepo, SilentServer, git, make_bare, stop_process

TIMEOUT_S = 10.0


def _ipv6_loopback() -> str:
    """Why ``[::1]`` cannot be used here, or ``""`` when it can."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError as exc:
        return f"no IPv6 loopback: {exc}"
    return ""


NO_IPV6 = _ipv6_loopback()


def native_refs(url: str, timeout_s: float = TIMEOUT_S) -> RemoteRefs:
    with open_remote(url, None, timeout_s=timeout_s) as remote:
        return ls_remote(remote, timeout_s=timeout_s)


def git_refs(url: str, timeout_s: float = TIMEOUT_S) -> RemoteRefs:
    """What ``ls_remote`` returned before: ``git ls-remote --symref`` with protocol v0."""
    with open_remote(url, None, timeout_s=timeout_s) as remote:
        args = ["ls-remote", "--symref", "--end-of-options", remote.url]
        return RemoteRefs.parse(run_git(args, timeout_s=timeout_s, remote=remote, operation="ls-remote"))


def failure(list_refs: Any, url: str, timeout_s: float = TIMEOUT_S) -> GitError:
    with pytest.raises(GitError) as info:
        list_refs(url, timeout_s)
    return info.value


# --------------------------------------------------------------------------- a scripted server


class ScriptedServer:
    """Answers every connection on loopback with ``reply`` once the request pkt-line is in.

    Then, with ``trickle``, it sends ``trickle`` one byte every ``interval_s``; at the end it
    shuts down its side and reads what the client still sends until the client closes.
    ``received`` holds, per connection, every byte the client sent.
    """

    def __init__(
        self, reply: bytes, *, host: str = "127.0.0.1", trickle: bytes = b"", interval_s: float = 0.05
    ) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.bind((host, 0))
        self._sock.listen(16)
        self.port = int(self._sock.getsockname()[1])
        self.reply, self.trickle, self.interval_s = reply, trickle, interval_s
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, name="scripted-server", daemon=True)]

    def _accept(self) -> None:
        self._sock.settimeout(0.1)
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                conn, _ = self._sock.accept()
                thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
                self._threads.append(thread)
                thread.start()

    def _serve(self, conn: socket.socket) -> None:
        data = bytearray()
        with conn, contextlib.suppress(OSError):
            conn.settimeout(5)
            while len(data) < 4 or len(data) < int(data[:4], 16):
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            conn.sendall(self.reply)
            for byte in self.trickle:
                if self._stop.wait(self.interval_s):
                    break
                conn.sendall(bytes([byte]))
            conn.shutdown(socket.SHUT_WR)
            while chunk := conn.recv(65536):
                data += chunk
        self.received.append(bytes(data))

    def __enter__(self) -> Self:
        self._threads[0].start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in list(self._threads):
            thread.join(timeout=5)
        self._sock.close()


A = "a" * 40
ADVERTISEMENT = (
    pkt_line(f"{A} HEAD\0multi_ack symref=HEAD:refs/heads/main agent=git/2.39.5\n".encode())
    + pkt_line(f"{A} refs/heads/main\n".encode())
    + b"0000"
)


# --------------------------------------------------------------------------- same refs as git


@pytest.fixture
def daemon_repo(git_daemon: GitDaemon, git_repo_name: str) -> RemoteRepo:
    return git_daemon.new_repo(git_repo_name)


def test_native_listing_equals_git_ls_remote(daemon_repo: RemoteRepo) -> None:
    # Given branches, lightweight and annotated tags (one tagging another tag) and a pull ref
    first = daemon_repo.head
    daemon_repo.tag("v1.0.0", message="one")
    daemon_repo.tag("stable")
    second = daemon_repo.commit({"b.txt": "2"}, publish=False)
    daemon_repo.branch("release", rev=first, publish=False)
    daemon_repo.tag("v2.0.0", message="two", publish=False)
    git("tag", "-a", "v2-signed-off", "-m", "tag of a tag", "v2.0.0", cwd=daemon_repo.work)
    daemon_repo.publish()
    daemon_repo.publish("HEAD:refs/pull/7/head")

    native = native_refs(daemon_repo.url)

    assert native == git_refs(daemon_repo.url)
    assert native.head_target == "refs/heads/main"
    assert native.commit_of("refs/tags/v1.0.0") == first != native.refs["refs/tags/v1.0.0"]
    assert native.commit_of("refs/tags/v2-signed-off") == second
    assert native.commit_of("refs/tags/stable") == first
    assert {"HEAD", "refs/heads/release", "refs/pull/7/head", "refs/tags/v2.0.0^{}"} <= set(native.refs)


def test_default_branch_other_than_main(git_daemon: GitDaemon, git_repo_name: str) -> None:
    repo = git_daemon.new_repo(git_repo_name, branch="trunk")
    native = native_refs(repo.url)
    assert native == git_refs(repo.url)
    assert native.head_target == "refs/heads/trunk"


def test_detached_head_has_no_symref(daemon_repo: RemoteRepo) -> None:
    git("update-ref", "--no-deref", "HEAD", daemon_repo.head, cwd=daemon_repo.bare)
    native = native_refs(daemon_repo.url)
    assert native == git_refs(daemon_repo.url)
    assert (native.head_target, native.refs["HEAD"]) == (None, daemon_repo.head)


def test_empty_repository_lists_nothing(git_daemon: GitDaemon, git_repo_name: str) -> None:
    make_bare(git_daemon.base_dir / f"{git_repo_name}.git")
    url = git_daemon.url(git_repo_name)
    assert native_refs(url) == git_refs(url) == RemoteRefs({}, None)


def test_percent_encoded_path_reaches_the_same_repository(git_daemon: GitDaemon, git_repo_name: str) -> None:
    repo = git_daemon.new_repo(f"{git_repo_name} spaced")
    url = repo.url.replace(" ", "%20")
    assert native_refs(url) == git_refs(url)
    assert native_refs(url).refs["refs/heads/main"] == repo.head


def test_host_name_is_resolved_and_every_address_tried(daemon_repo: RemoteRepo) -> None:
    # localhost may resolve to ::1 first, where git daemon does not listen
    url = daemon_repo.url.replace("127.0.0.1", "localhost")
    assert native_refs(url) == git_refs(url) == native_refs(daemon_repo.url)


def test_native_listing_starts_no_process(daemon_repo: RemoteRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_process(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a process was started: {args}")

    expected = git_refs(daemon_repo.url)
    monkeypatch.setattr(subprocess, "Popen", no_process)
    assert native_refs(daemon_repo.url) == expected


class IPv6GitDaemon(GitDaemon):
    """``git daemon`` on ``[::1]`` (the shared fixture listens on 127.0.0.1 only)."""

    def url(self, name: str) -> str:
        return f"git://[::1]:{self.port}/{name}.git"

    def start(self) -> Self:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
            self.port = int(probe.getsockname()[1])
        argv = ["git", "daemon", "--reuseaddr", "--listen=::1", f"--port={self.port}"]
        argv += [f"--base-path={self.base_dir}", "--export-all", str(self.base_dir)]
        self.proc = subprocess.Popen(
            argv,
            env={**os.environ, **GIT_ENV},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.proc.poll() is None:
            with contextlib.suppress(OSError), socket.create_connection(("::1", self.port), timeout=0.2):
                return self
            time.sleep(0.01)
        stop_process(self.proc)
        raise RuntimeError("git daemon did not listen on [::1]")


@pytest.fixture
def ipv6_daemon(git_workdir: Path) -> Iterator[IPv6GitDaemon]:
    if NO_IPV6:
        pytest.skip(NO_IPV6)
    with IPv6GitDaemon(git_workdir / "ipv6" / "repos") as server:
        yield server


def test_ipv6_literal_host(ipv6_daemon: IPv6GitDaemon, git_repo_name: str) -> None:
    repo = ipv6_daemon.new_repo(git_repo_name)
    repo.tag("v1", message="v1")
    assert native_refs(repo.url) == git_refs(repo.url)
    assert native_refs(repo.url).commit_of("refs/tags/v1") == repo.head


# --------------------------------------------------------------------------- same request as git


@pytest.mark.parametrize(
    ("host", "path"),
    [
        ("127.0.0.1", "/app.git"),
        ("127.0.0.1", "/~alice/app.git"),
        ("127.0.0.1", "/org/my%20app%2b+%00x.git"),
        pytest.param("::1", "/x.git", marks=pytest.mark.skipif(bool(NO_IPV6), reason=NO_IPV6)),
    ],
)
def test_request_and_goodbye_are_byte_for_byte_gits(host: str, path: str) -> None:
    with ScriptedServer(ADVERTISEMENT, host=host) as server:
        hostport = f"[{host}]:{server.port}" if ":" in host else f"{host}:{server.port}"
        url = f"git://{hostport}{path}"
        assert (
            native_refs(url)
            == git_refs(url)
            == RemoteRefs({"HEAD": A, "refs/heads/main": A}, "refs/heads/main")
        )
    native, by_git = server.received
    assert native == by_git
    assert native[4:].startswith(b"git-upload-pack ")
    assert native.endswith(b"\0host=" + hostport.encode() + b"\x000000")


# --------------------------------------------------------------------------- same errors as git


def test_missing_repository_is_repository_not_found(git_daemon: GitDaemon, git_repo_name: str) -> None:
    url = git_daemon.url(f"{git_repo_name}-absent")
    native, by_git = failure(native_refs, url), failure(git_refs, url)
    assert (
        (native.reason, native.result)
        == (by_git.reason, by_git.result)
        == ("RepositoryNotFound", "transient")
    )
    assert native.message == (
        f"ls-remote {url} failed: remote error: access denied or repository not exported: "
        f"/{git_repo_name}-absent.git"
    )


def test_closed_port_is_a_transient_failure() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"git://127.0.0.1:{sock.getsockname()[1]}/app.git"  # bound, not listening: refused
        native, by_git = failure(native_refs, url), failure(git_refs, url)
    assert (
        (native.reason, native.result)
        == (by_git.reason, by_git.result)
        == ("GitOperationFailed", "transient")
    )
    assert native.message.startswith(f"ls-remote {url} failed: unable to connect to 127.0.0.1:")
    assert "errno=Connection refused" in native.message


def test_unknown_host_is_a_transient_failure() -> None:
    url = "git://no-such-host.invalid/app.git"
    native, by_git = failure(native_refs, url), failure(git_refs, url)
    assert (native.reason, native.result) == (by_git.reason, by_git.result)
    assert native.result == "transient"
    if native.reason == "GitOperationFailed":
        assert native.message.startswith(
            f"ls-remote {url} failed: unable to look up no-such-host.invalid (port 9418)"
        )


def test_silent_server_times_out_within_the_timeout() -> None:
    with SilentServer() as silent:
        url = f"git://127.0.0.1:{silent.port}/app.git"
        start = time.monotonic()
        error = failure(native_refs, url, 1.0)
        elapsed = time.monotonic() - start
    assert (error.reason, error.result) == ("GitOperationTimedOut", "transient")
    assert error.message == f"ls-remote {url} timed out (spec.timeout 1s)"
    assert 0.9 < elapsed < 2.0, elapsed


def test_trickling_server_cannot_stretch_the_deadline() -> None:
    # Given a server that sends a pkt-line one byte every 50 ms, far slower than it promises
    with ScriptedServer(b"0fff", trickle=b"x" * 200) as server:
        url = f"git://127.0.0.1:{server.port}/app.git"
        start = time.monotonic()
        error = failure(native_refs, url, 1.0)
        elapsed = time.monotonic() - start
        by_git = failure(git_refs, url, 1.0)
    assert error.reason == by_git.reason == "GitOperationTimedOut"
    assert 0.9 < elapsed < 2.0, elapsed


@pytest.mark.parametrize(
    ("reply", "reason", "detail"),
    [
        (
            pkt_line(b"ERR no such repository: /app.git"),
            "RepositoryNotFound",
            "remote error: no such repository",
        ),
        (
            pkt_line(b"ERR access denied or repository not exported: /app.git"),
            "RepositoryNotFound",
            "not exported",
        ),
        (pkt_line(b"ERR service busy, try later"), "GitOperationFailed", "remote error: service busy"),
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", "GitOperationFailed", "bad line length character: 'HTTP'"),
        (pkt_line(b"version 2\n") + pkt_line(b"ls-refs\n") + b"0000", "GitOperationFailed", "unexpected"),
        (pkt_line(f"{A} HEAD\0caps\n".encode()), "GitOperationFailed", "hung up"),
        (b"", "GitOperationFailed", "hung up"),
    ],
    ids=[
        "no-such-repository",
        "not-exported",
        "other-err",
        "not-pkt-lines",
        "v2-reply",
        "cut-short",
        "no-reply",
    ],
)
def test_bad_answers_classify_as_git_classifies_them(reply: bytes, reason: str, detail: str) -> None:
    with ScriptedServer(reply) as server:
        url = f"git://127.0.0.1:{server.port}/app.git"
        native, by_git = failure(native_refs, url), failure(git_refs, url)
    assert native.reason == by_git.reason == reason, (native.message, by_git.message)
    assert native.message.startswith(f"ls-remote {url} failed: ")
    assert detail in native.message
