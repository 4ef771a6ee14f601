"""Git work for the poll benchmark: many small repositories, and the baselines run on them.

The baselines are what gitops-tasks is compared with: a sequential ``git fetch`` over local bare
mirrors (one Flux v1 daemon per repository amounts to that, run one after the other), and the
same number of ``git ls-remote`` calls on a thread pool (the least any poller must do).
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.gitservers import GIT_ENV, GitDaemon, RemoteRepo, free_port, stop_process, wait_for_port

#: Threads used to build repositories and mirrors (setup only, not measured).
DEFAULT_SETUP_THREADS = 4
#: Seconds one git command of a baseline may take before the benchmark gives up.
DEFAULT_GIT_TIMEOUT_S = 60
#: Listen backlog of :class:`InetdGitDaemon` (``git daemon`` itself hard-codes 5).
DEFAULT_INETD_BACKLOG = 512

_ENV = {**os.environ, **GIT_ENV}


def _git(*args: str, protocol: int | None = None) -> None:
    flags = ["-c", f"protocol.version={protocol}"] if protocol is not None else []
    subprocess.run(
        ["git", *flags, *args],
        env=_ENV,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=DEFAULT_GIT_TIMEOUT_S,
    )


def make_repos(daemon: GitDaemon, count: int) -> list[RemoteRepo]:
    """``count`` bare repositories served by ``daemon``, each with one commit of its own on main."""

    def one(i: int) -> RemoteRepo:
        name = f"repo-{i:04d}"
        return daemon.new_repo(
            name, {"README.md": f"# {name}\n", "deploy.yaml": f"name: {name}\nreplicas: 1\n"}
        )

    with ThreadPoolExecutor(DEFAULT_SETUP_THREADS) as pool:
        return list(pool.map(one, range(count)))


def clone_mirrors(urls: list[str], dest: Path) -> list[Path]:
    """A ``git clone --mirror`` of every URL under ``dest`` (the sequential baseline's caches)."""
    dest.mkdir(parents=True, exist_ok=True)

    def one(item: tuple[int, str]) -> Path:
        path = dest / f"{item[0]:04d}.git"
        _git("clone", "--quiet", "--mirror", item[1], str(path))
        return path

    with ThreadPoolExecutor(DEFAULT_SETUP_THREADS) as pool:
        return list(pool.map(one, enumerate(urls)))


def children_cpu_s() -> float:
    """CPU seconds (user + system) of this process's finished children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def sequential_fetch(mirrors: list[Path], *, protocol: int | None) -> None:
    """``git -C <mirror> fetch origin`` for each mirror, one after the other."""
    for mirror in mirrors:
        _git("-C", str(mirror), "fetch", "--quiet", "origin", protocol=protocol)


def ls_remote_pool(urls: list[str], *, concurrency: int, protocol: int | None) -> None:
    """``git ls-remote <url>`` for every URL, ``concurrency`` at a time (threads running subprocesses)."""
    with ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(_git, "ls-remote", url, protocol=protocol) for url in urls]:
            future.result()


def set_origin(mirrors: list[Path], urls: list[str]) -> None:
    """Point each mirror's ``origin`` at the matching URL (to fetch the same repository elsewhere)."""
    for mirror, url in zip(mirrors, urls, strict=True):
        _git("-C", str(mirror), "remote", "set-url", "origin", url)


class InetdGitDaemon:
    """``git daemon --inetd`` per connection behind socat, serving the same directory as a GitDaemon.

    Same server program and protocol as :class:`~tests.gitservers.GitDaemon`, but the listening
    socket is socat's, with a backlog of :data:`DEFAULT_INETD_BACKLOG` instead of git daemon's 5,
    so bursts of concurrent connections are not dropped (and retried by the client after 1 s).
    """

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("socat") is not None

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}.git"

    def start(self) -> InetdGitDaemon:
        self.port = free_port()
        serve = f"git daemon --inetd --base-path={self.base_dir} --export-all {self.base_dir}"
        self.proc = subprocess.Popen(
            [
                "socat",
                f"TCP-LISTEN:{self.port},bind=127.0.0.1,reuseaddr,fork,backlog={DEFAULT_INETD_BACKLOG}",
                f"EXEC:{serve}",
            ],
            env=_ENV,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_port(self.port, self.proc)
        return self

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None
