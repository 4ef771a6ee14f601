"""Real git servers on 127.0.0.1 for tests and benchmarks, and helpers to build repositories.

Nothing here imports pytest: the classes are plain context managers so benchmarks can use them
too (``tests/gitfixtures.py`` wraps them as fixtures). Every server binds 127.0.0.1 on a free
port and is stopped by the PID (process group) it started; the smart HTTP server runs in a
thread of the calling process and is stopped with ``shutdown()``.

Transports: ``file://`` (no server), :class:`GitDaemon` (``git://``), :class:`SmartHTTPServer`
(``http://``, ``git http-backend`` as CGI, optional basic/bearer auth) and :class:`SSHServer`
(``ssh://``, OpenSSH's sshd with a deploy key and ``git-shell``).
"""

from __future__ import annotations

import base64
import contextlib
import getpass
import hmac
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from tests.httpserve import QuietHandler, QuietThreadingServer

#: Where Debian's openssh-server puts the daemon.
SSHD_PATH = "/usr/sbin/sshd"
#: How long a server may take to accept connections after start (seconds).
START_TIMEOUT_S = 10.0

#: A fixed identity and no user/system config, so helpers behave the same on every machine.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.test",
    "GIT_COMMITTER_NAME": "Test Author",
    "GIT_COMMITTER_EMAIL": "author@example.test",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",
    "LC_ALL": "C",
}


# --------------------------------------------------------------------------- repositories


def git(*args: str, cwd: Path | str | None = None, env: Mapping[str, str] | None = None) -> str:
    """Run git with :data:`GIT_ENV`; return stdout stripped. Raises ``CalledProcessError``."""
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, ["git", *args], proc.stdout, proc.stderr)
    return proc.stdout.strip()


def commit_files(work: Path, files: Mapping[str, str | None], message: str = "change") -> str:
    """Write (or delete, for ``None``) ``files`` in ``work``, commit them; return the commit SHA."""
    for rel, content in files.items():
        target = work / rel
        if content is None:
            target.unlink(missing_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    git("add", "-A", cwd=work)
    git("commit", "-q", "--allow-empty", "-m", message, cwd=work)
    return git("rev-parse", "HEAD", cwd=work)


def make_repo(path: Path, files: Mapping[str, str | None], branch: str = "main") -> str:
    """Create a work repository at ``path`` on ``branch`` with one commit; return its SHA."""
    path.mkdir(parents=True, exist_ok=True)
    git("init", "-q", "-b", branch, str(path))
    return commit_files(path, files, "initial")


def tag(work: Path, name: str, *, message: str | None = None, rev: str = "HEAD") -> str:
    """Tag ``rev``; annotated when ``message`` is given. Returns the tag object's SHA (or commit's)."""
    if message is None:
        git("tag", "-f", name, rev, cwd=work)
    else:
        git("tag", "-f", "-a", name, "-m", message, rev, cwd=work)
    return git("rev-parse", f"refs/tags/{name}", cwd=work)


def push(work: Path, dest: str | Path, *refspecs: str, env: Mapping[str, str] | None = None) -> None:
    """Force-push ``refspecs`` (default: every branch and tag) from ``work`` to ``dest``."""
    specs = refspecs or ("refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*")
    git("push", "-q", "--force", str(dest), *specs, cwd=work, env=env)


def make_bare(path: Path, *, head: str = "main") -> Path:
    """Create an empty bare repository whose HEAD points at ``refs/heads/<head>``."""
    git("init", "-q", "--bare", "-b", head, str(path))
    return path


@dataclass
class RemoteRepo:
    """A bare repository served by some transport plus the work repository that feeds it."""

    name: str
    work: Path
    bare: Path
    url: str
    #: Commit SHA of the work repository's HEAD after the last :meth:`commit`.
    head: str = ""

    def commit(
        self, files: Mapping[str, str | None], message: str = "change", *, publish: bool = True
    ) -> str:
        """Commit on the work repository's current branch and (by default) push everything."""
        self.head = commit_files(self.work, files, message)
        if publish:
            self.publish()
        return self.head

    def tag(self, name: str, *, message: str | None = None, rev: str = "HEAD", publish: bool = True) -> str:
        sha = tag(self.work, name, message=message, rev=rev)
        if publish:
            self.publish()
        return sha

    def branch(self, name: str, *, rev: str = "HEAD", publish: bool = True) -> None:
        git("branch", "-f", name, rev, cwd=self.work)
        if publish:
            self.publish()

    def publish(self, *refspecs: str) -> None:
        """Push from the work repository straight into the bare one (by path: no server involved)."""
        push(self.work, self.bare, *refspecs)


def new_remote_repo(
    base_dir: Path,
    name: str,
    url: str,
    files: Mapping[str, str | None] | None = None,
    *,
    branch: str = "main",
) -> RemoteRepo:
    """Create ``base_dir/<name>.git`` (bare) fed by ``base_dir/../work/<name>``, one commit pushed."""
    work = base_dir.parent / "work" / name
    bare = make_bare(base_dir / f"{name}.git", head=branch)
    sha = make_repo(work, files if files is not None else {"README.md": f"# {name}\n"}, branch=branch)
    repo = RemoteRepo(name=name, work=work, bare=bare, url=url, head=sha)
    repo.publish()
    return repo


def generate_keypair(path: Path, comment: str = "gitops-tasks-test") -> tuple[Path, str]:
    """Create an ed25519 key at ``path`` (no passphrase); return (private key path, public key line)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path, path.with_suffix(".pub").read_text().strip()


# --------------------------------------------------------------------------- process plumbing


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, proc: subprocess.Popen[bytes] | None = None, timeout_s: float = START_TIMEOUT_S
) -> None:
    """Return once 127.0.0.1:``port`` accepts; raise ``RuntimeError`` if ``proc`` dies or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.01)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout_s}s")


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    """Stop a server started with ``start_new_session=True``: TERM its process group, then KILL."""
    if proc is None or proc.poll() is not None:
        if proc is not None:
            proc.wait()
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class _Server:
    """Common shape: a directory of bare repositories served on one port."""

    scheme = ""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.port = 0

    def url(self, name: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/{name}.git"

    def new_repo(
        self, name: str, files: Mapping[str, str | None] | None = None, *, branch: str = "main"
    ) -> RemoteRepo:
        """A new bare repository served by this server, with one commit on ``branch``."""
        return new_remote_repo(self.base_dir, name, self.url(name), files, branch=branch)

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class FileRemotes(_Server):
    """Not a server: ``file://`` URLs for bare repositories under ``base_dir``."""

    def url(self, name: str) -> str:
        return (self.base_dir / f"{name}.git").as_uri()

    def start(self) -> Self:
        return self

    def stop(self) -> None:
        return None


# --------------------------------------------------------------------------- git daemon


class GitDaemon(_Server):
    """``git daemon`` serving ``git://127.0.0.1:<port>/<name>.git`` (fetch and push)."""

    scheme = "git"

    def __init__(self, base_dir: Path) -> None:
        super().__init__(base_dir)
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid_file = self.base_dir.parent / "git-daemon.pid"

    def start(self) -> Self:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                "git",
                "daemon",
                "--reuseaddr",
                "--listen=127.0.0.1",
                f"--port={self.port}",
                f"--base-path={self.base_dir}",
                "--export-all",
                "--enable=receive-pack",
                f"--pid-file={self.pid_file}",
                str(self.base_dir),
            ],
            env={**os.environ, **GIT_ENV},
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


# --------------------------------------------------------------------------- smart HTTP


def _read_chunked(rfile: Any) -> bytes:
    """Decode an HTTP/1.1 chunked body (git sends pushes over 1 MiB this way)."""
    out = bytearray()
    while True:
        size = int(rfile.readline().split(b";", 1)[0].strip(), 16)
        if size == 0:
            while rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return bytes(out)
        out += rfile.read(size)
        rfile.readline()


@dataclass(frozen=True)
class Served:
    """One request a :class:`SmartHTTPServer` answered (epoch seconds)."""

    repo: str
    start: float
    end: float
    #: What :attr:`SmartHTTPServer.observe` returned when the request arrived.
    seen: str | None = None


class _GitHTTPHandler(QuietHandler):
    server: _GitHTTPd

    def _authorized(self) -> bool:
        owner = self.server.owner
        if owner.username is None and owner.token is None:
            return True
        given = self.headers.get("Authorization", "")
        accepted = []
        if owner.username is not None:
            pair = f"{owner.username}:{owner.password or ''}".encode()
            accepted.append("Basic " + base64.b64encode(pair).decode())
        if owner.token is not None:
            accepted.append(f"Bearer {owner.token}")
        return any(hmac.compare_digest(given.encode(), a.encode()) for a in accepted)

    def _serve(self) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = _read_chunked(self.rfile)
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not self._authorized():
            self.server.owner.unauthorized += 1
            self._reply(401, [("WWW-Authenticate", 'Basic realm="git"')], b"unauthorized\n")
            return
        owner = self.server.owner
        started = time.time()
        seen = owner.observe() if owner.observe is not None else None
        with owner.lock:
            owner.requests += 1
            owner.in_flight += 1
            owner.max_in_flight = max(owner.max_in_flight, owner.in_flight)
        try:
            if owner.delay_s > 0:
                time.sleep(owner.delay_s)
            self._backend(body)
        finally:
            with owner.lock:
                owner.in_flight -= 1
                owner.served.append(
                    Served(self.path.lstrip("/").split("/", 1)[0], started, time.time(), seen)
                )

    def _backend(self, body: bytes) -> None:
        path, _, query = self.path.partition("?")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.server.owner.base_dir),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.receivepack",
            "GIT_CONFIG_VALUE_0": "true",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_USER": self.server.owner.username or "anonymous",
        }
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        proc = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, check=False)
        head, _, payload = proc.stdout.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode("latin-1").split("\r\n"):
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.strip().split()[0])
            elif key:
                headers.append((key, value.strip()))
        if proc.returncode != 0 and not head:
            status, payload = 500, proc.stderr
        self._reply(status, headers, payload)

    def _reply(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _GitHTTPd(QuietThreadingServer):
    owner: SmartHTTPServer


class SmartHTTPServer(_Server):
    """Smart HTTP (``git http-backend`` as CGI) on ``http://127.0.0.1:<port>/<name>.git``.

    With ``username``/``password`` and/or ``token`` set, every request must carry matching
    ``Authorization: Basic`` or ``Bearer``; otherwise the answer is 401 with ``WWW-Authenticate``.
    ``requests`` and ``unauthorized`` count served and refused requests (tests use them to prove
    that nothing was fetched). ``delay_s`` (settable while running) holds every authorised request
    that long after counting it, to imitate a slow server. ``observe`` (settable while running),
    when set, is called as each request arrives and its answer kept in the request's :class:`Served`
    (a test reads there what held the object's run lock when a request came).
    """

    scheme = "http"

    def __init__(
        self,
        base_dir: Path,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
    ) -> None:
        super().__init__(base_dir)
        self.username, self.password, self.token = username, password, token
        self.requests = 0
        self.unauthorized = 0
        self.delay_s = 0.0
        #: Requests being served now, and the most ever served at once.
        self.in_flight = 0
        self.max_in_flight = 0
        #: Every request served: which repository, when it arrived and when it was answered.
        self.served: list[Served] = []
        self.observe: Callable[[], str | None] | None = None
        self.lock = threading.Lock()
        self._httpd: _GitHTTPd | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        self._httpd = _GitHTTPd(("127.0.0.1", 0), _GitHTTPHandler)
        self._httpd.owner = self
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="smart-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd, self._thread = None, None


# --------------------------------------------------------------------------- SSH


def sshd_available() -> tuple[bool, str]:
    """Whether :class:`SSHServer` can run here, and if not, why (for ``pytest.skip``)."""
    if not Path(SSHD_PATH).is_file():
        return False, f"{SSHD_PATH} not found (apt-get install -y --no-install-recommends openssh-server)"
    for tool in ("ssh", "ssh-keygen", "git-shell"):
        if shutil.which(tool) is None:
            return False, f"{tool} not on PATH"
    return True, ""


@dataclass
class _SSHFiles:
    root: Path
    host_key: Path = field(init=False)
    deploy_key: Path = field(init=False)
    authorized_keys: Path = field(init=False)
    config: Path = field(init=False)
    pid_file: Path = field(init=False)

    def __post_init__(self) -> None:
        self.host_key = self.root / "ssh_host_ed25519_key"
        self.deploy_key = self.root / "deploy_key"
        self.authorized_keys = self.root / "authorized_keys"
        self.config = self.root / "sshd_config"
        self.pid_file = self.root / "sshd.pid"


class SSHServer(_Server):
    """OpenSSH's sshd on 127.0.0.1 serving ``base_dir`` through ``git-shell`` to one deploy key.

    URLs are ``ssh://<current user>@127.0.0.1:<port><base_dir>/<name>.git`` (the authorized_keys
    file belongs to whoever runs the tests). ``known_hosts_line`` and ``deploy_key_path`` are what
    a GitRepository secret needs (``known_hosts``, ``identity``).
    """

    scheme = "ssh"

    def __init__(self, base_dir: Path, *, user: str | None = None) -> None:
        super().__init__(base_dir)
        self.user = user or getpass.getuser()
        self.files = _SSHFiles(Path(tempfile.mkdtemp(prefix="sshd-", dir=self.base_dir.parent)))
        self.proc: subprocess.Popen[bytes] | None = None
        self.host_public_key = ""
        self.deploy_public_key = ""

    @property
    def deploy_key_path(self) -> Path:
        return self.files.deploy_key

    @property
    def known_hosts_line(self) -> str:
        return f"[127.0.0.1]:{self.port} {' '.join(self.host_public_key.split()[:2])}"

    def url(self, name: str) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{self.base_dir}/{name}.git"

    def authorize(self, public_key: str) -> None:
        """Add one more key allowed to run git (only git) through ``git-shell``."""
        line = f'restrict,command="git-shell -c \\"$SSH_ORIGINAL_COMMAND\\"" {public_key}\n'
        with self.files.authorized_keys.open("a") as fh:
            fh.write(line)

    def start(self) -> Self:
        ok, why = sshd_available()
        if not ok:
            raise RuntimeError(why)
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)
        _, self.host_public_key = generate_keypair(self.files.host_key, "host")
        _, self.deploy_public_key = generate_keypair(self.files.deploy_key, "deploy")
        self.files.authorized_keys.write_text("")
        self.authorize(self.deploy_public_key)
        self.port = free_port()
        self.files.config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {self.files.host_key}",
                    f"PidFile {self.files.pid_file}",
                    f"AuthorizedKeysFile {self.files.authorized_keys}",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "StrictModes no",
                    "PermitRootLogin prohibit-password",
                    "AcceptEnv GIT_PROTOCOL",
                    "LogLevel ERROR",
                    "",
                ]
            )
        )
        self.proc = subprocess.Popen(
            [SSHD_PATH, "-D", "-e", "-f", str(self.files.config)],
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


# --------------------------------------------------------------------------- a server that never answers


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never sends a byte (for timeout tests)."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = int(self._sock.getsockname()[1])
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent-server", daemon=True)

    def _accept(self) -> None:
        self._sock.settimeout(0.1)
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                conn, _ = self._sock.accept()
                self._conns.append(conn)

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self._conns:
            conn.close()
        self._sock.close()
