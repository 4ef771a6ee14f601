"""Listing a ``git://`` remote's refs by speaking protocol v0 directly, without a git process.

What ``git -c protocol.version=0 ls-remote --symref git://...`` does, in Python: connect to
host:port (9418 by default), send ``git-upload-pack <path>\\0host=<host[:port]>\\0`` as one
pkt-line, read the ref advertisement up to its flush packet, send a flush to say goodbye and
close (``gitprotocol-pack(5)``, ``gitprotocol-common(5)``). The URL is read as git reads it:
the whole URL percent-decoded (``%00`` and ``+`` kept), the host as written (brackets and port
included) in the ``host=`` parameter, and ``/~user/path`` sent as ``~user/path``.

Nothing here knows :class:`~.errors.GitError` or credentials (``git://`` has none):
:mod:`.gitcli` turns the exceptions into classified errors. :class:`WireError` messages read
like the line git would print (``remote error: ...``, ``unable to connect to ...``) so the same
classification applies; :class:`ProtocolError` is a malformed or oversized answer; the builtin
``TimeoutError`` means the deadline passed. :func:`read_advertisement` and
:func:`parse_advertisement` are pure; :func:`list_refs` does the I/O.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from gitops_tasks.sources.refs import RemoteRefs

#: git daemon's port when the URL names none.
DEFAULT_PORT = 9418
#: git's LARGE_PACKET_MAX: the longest pkt-line, its 4-byte length header included (bytes).
MAX_PKT_BYTES = 65520
#: The longest ref advertisement we read before giving up (bytes).
MAX_ADVERTISEMENT_BYTES = 64 * 1024 * 1024
#: How much one ``recv`` asks for (bytes).
RECV_BYTES = 65536
#: Characters of a line from the server quoted in a protocol error.
MAX_QUOTED_CHARS = 80
#: The packet that ends the advertisement, and the one we send to end the conversation.
FLUSH_PKT = b"0000"

_HEX4 = re.compile(rb"[0-9a-fA-F]{4}")
_OID = re.compile(rb"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")
_PERCENT = re.compile(rb"%([0-9a-fA-F]{2})")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_NO_REFS = b"capabilities^{}"


class WireError(Exception):
    """The conversation failed; the message reads like git's own (``remote error: ...``)."""


class ProtocolError(WireError):
    """The server's answer is not a valid v0 ref advertisement (or is too large)."""


@dataclass(frozen=True)
class Address:
    """Where a ``git://`` URL points, as git reads it."""

    #: Host to resolve (brackets removed from an IPv6 literal).
    host: bytes
    port: int
    #: The URL's host and port as written, sent as ``host=``.
    host_header: bytes
    #: Repository path sent to the server (``/x.git``, or ``~user/x.git``).
    path: bytes

    def request(self) -> bytes:
        """The first (and only) pkt-line the client sends."""
        return pkt_line(b"git-upload-pack " + self.path + b"\0host=" + self.host_header + b"\0")


def _printable(data: bytes) -> str:
    """Server text for a message: control characters shown as ``?``, as git's ``die()`` does."""
    return _CONTROL.sub("?", data.decode("utf-8", errors="replace"))


def _quoted(data: bytes) -> str:
    text = _printable(data)
    return repr(text if len(text) <= MAX_QUOTED_CHARS else text[: MAX_QUOTED_CHARS - 3] + "...")


def pkt_line(payload: bytes) -> bytes:
    """``payload`` framed as one pkt-line (4 hex digits of total length, then the bytes)."""
    if len(payload) + 4 > MAX_PKT_BYTES:
        raise ProtocolError(f"request of {len(payload)} bytes does not fit in one pkt-line")
    return b"%04x" % (len(payload) + 4) + payload


def parse_git_url(url: str) -> Address:
    """Split a ``git://`` URL the way git's ``parse_connect_url`` and ``get_host_and_port`` do.

    Raises :class:`WireError` with git's wording for a URL without a path or with a newline.
    """
    raw = os.fsencode(url)
    _scheme, sep, rest = raw.partition(b"://")
    if not sep:
        raise WireError(f"not a git:// URL: {_quoted(raw)}")
    rest = _PERCENT.sub(lambda m: m[0] if m[1] == b"00" else bytes([int(m[1], 16)]), rest)
    host_end = rest.find(b"]") + 1 if rest.startswith(b"[") else 0
    slash = rest.find(b"/", host_end)
    if slash < 0:
        raise WireError("no path specified; see 'git help pull' for valid url syntax")
    host_header, path = rest[:slash], rest[slash:]
    if path.startswith(b"/~"):
        path = path[1:]
    if b"\n" in host_header + path:
        raise WireError("newline is forbidden in git:// hosts and repo paths")
    if b"\0" in raw:
        raise WireError("a NUL byte is not allowed in a git:// URL")
    host, port = _host_and_port(host_header)
    return Address(host, port, host_header, path)


def _host_and_port(host_header: bytes) -> tuple[bytes, int]:
    """``[::1]:9418`` → (``::1``, 9418). As in git, a port that is not a number stays part of the
    host (whose lookup then fails) and an empty one means the default."""
    bracketed = host_header.startswith(b"[") and b"]" in host_header
    if bracketed:
        close = host_header.index(b"]")
        host, rest = host_header[1:close], host_header[close + 1 :]
    else:
        host, rest = host_header, host_header
    before, colon, port = rest.partition(b":")
    if not colon or (port and not (port.isdigit() and int(port) < 65536)):
        return host, DEFAULT_PORT
    return (host if bracketed else before), int(port) if port else DEFAULT_PORT


def next_pkt(buf: bytes | bytearray, pos: int) -> tuple[bytes | None, int] | None:
    """The pkt-line at ``buf[pos:]``: ``(payload, next_pos)``, payload ``None`` for a flush.

    Returns ``None`` when the pkt-line is not complete yet. The payload loses one trailing
    newline, as git's reader chomps it. Raises :class:`ProtocolError` for a bad length header,
    the v2-only delim/response-end packets, or a length over :data:`MAX_PKT_BYTES`.
    """
    if len(buf) - pos < 4:
        return None
    head = bytes(buf[pos : pos + 4])
    if not _HEX4.fullmatch(head):
        raise ProtocolError(f"protocol error: bad line length character: {_quoted(head)}")
    size = int(head, 16)
    if size == 0:
        return None, pos + 4
    if size < 4 or size > MAX_PKT_BYTES:
        raise ProtocolError(f"protocol error: bad line length {size}")
    if len(buf) - pos < size:
        return None
    payload = bytes(buf[pos + 4 : pos + size])
    return (payload[:-1] if payload.endswith(b"\n") else payload), pos + size


def read_advertisement(recv: Callable[[], bytes], *, max_bytes: int = MAX_ADVERTISEMENT_BYTES) -> list[bytes]:
    """The advertisement's pkt-line payloads up to the flush, asking ``recv`` for more bytes.

    ``recv`` returns ``b""`` at end of stream. Raises :class:`WireError` for an ``ERR`` packet
    (``remote error: <message>``, as soon as it arrives) or a hang-up before the flush, and
    :class:`ProtocolError` for malformed pkt-lines or more than ``max_bytes`` bytes.
    """
    buf = bytearray()
    pos = 0
    lines: list[bytes] = []
    while True:
        item = next_pkt(buf, pos)
        if item is None:
            chunk = recv()
            if not chunk:
                raise WireError("the remote end hung up before the end of the ref advertisement")
            buf += chunk
            if len(buf) > max_bytes:
                raise ProtocolError(f"protocol error: ref advertisement larger than {max_bytes} bytes")
            continue
        payload, pos = item
        if payload is None:
            return lines
        if payload.startswith(b"ERR "):
            raise WireError(f"remote error: {_printable(payload[4:])}")
        lines.append(payload)


def _symrefs(capabilities: bytes) -> dict[str, str]:
    """``symref=HEAD:refs/heads/main`` capabilities as {``HEAD``: ``refs/heads/main``}."""
    found: dict[str, str] = {}
    for capability in capabilities.split(b" "):
        if capability.startswith(b"symref="):
            name, sep, target = capability[len(b"symref=") :].partition(b":")
            if sep and name and target:
                found.setdefault(name.decode("utf-8", "replace"), target.decode("utf-8", "replace"))
    return found


def parse_advertisement(lines: Sequence[bytes]) -> RemoteRefs:
    """What ``ls-remote --symref`` would list for these advertisement lines (flush excluded).

    First line ``<oid> <ref>\\0<capabilities>``, then ``<oid> <ref>``, then ``shallow <oid>``;
    an empty repository sends nothing or ``<zeros> capabilities^{}``. ``.have`` entries are not
    refs (git skips them too). HEAD's target comes from the ``symref=HEAD:...`` capability and,
    as in ``ls-remote``, only when HEAD itself is advertised. Raises :class:`ProtocolError`.
    """
    pairs: list[tuple[str, str]] = []
    symrefs: dict[str, str] = {}
    refs_done = False
    for index, line in enumerate(lines):
        ref, _, capabilities = line.partition(b"\0")
        oid, sep, name = ref.partition(b" ")
        is_ref = bool(sep) and _OID.fullmatch(oid) is not None
        if index == 0:
            symrefs = _symrefs(capabilities)
            if is_ref and name == _NO_REFS and not oid.strip(b"0"):
                refs_done = True
                continue
        if is_ref and not refs_done:
            if name == _NO_REFS:
                raise ProtocolError("protocol error: unexpected capabilities^{}")
            if name != b".have":
                pairs.append((oid.lower().decode(), name.decode("utf-8", "replace")))
            continue
        if oid == b"shallow" and sep and _OID.fullmatch(name):
            refs_done = True
            continue
        raise ProtocolError(f"protocol error: unexpected {_quoted(line)}")
    head = symrefs.get("HEAD") if any(name == "HEAD" for _, name in pairs) else None
    return RemoteRefs.from_pairs(pairs, head)


def _left(deadline: float) -> float:
    """Seconds until ``deadline``; raises ``TimeoutError`` when it has passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


def _lookup(address: Address, deadline: float) -> list[Any]:
    """``getaddrinfo`` bounded by the deadline: a name is resolved in a daemon thread, because
    the resolver has no timeout of its own; an IP literal needs no thread."""
    host = address.host

    def resolve(flags: int = 0) -> list[Any]:
        return socket.getaddrinfo(host, address.port, type=socket.SOCK_STREAM, flags=flags)

    try:
        with contextlib.suppress(socket.gaierror):
            return resolve(socket.AI_NUMERICHOST)
        future: Future[list[Any]] = Future()

        def run() -> None:
            try:
                future.set_result(resolve())
            except Exception as exc:
                future.set_exception(exc)

        threading.Thread(target=run, name="git-wire-lookup", daemon=True).start()
        return future.result(timeout=_left(deadline))
    except socket.gaierror as exc:
        shown = _printable(host)
        raise WireError(f"unable to look up {shown} (port {address.port}) ({exc.strerror})") from None


def _connect(address: Address, deadline: float) -> socket.socket:
    """A connected socket, trying each address in turn as git does (git's message on failure)."""
    errors = []
    for index, (family, kind, proto, _, sockaddr) in enumerate(_lookup(address, deadline)):
        sock = None
        try:
            sock = socket.socket(family, kind, proto)
            sock.settimeout(_left(deadline))
            sock.connect(sockaddr)
            return sock
        except TimeoutError:
            if sock is not None:
                sock.close()
            raise
        except OSError as exc:
            if sock is not None:
                sock.close()
            errors.append(f"{_printable(address.host)}[{index}: {sockaddr[0]}]: errno={exc.strerror or exc}")
    raise WireError(f"unable to connect to {_printable(address.host)}:\n" + "\n".join(errors))


def list_refs(url: str, *, timeout_s: float) -> RemoteRefs:
    """List a ``git://`` remote's refs and HEAD's symref target over protocol v0.

    ``timeout_s`` bounds the whole conversation (lookup, connect, every read and write).
    Raises ``TimeoutError``, :class:`ProtocolError` or :class:`WireError` (see module docstring).
    """
    deadline = time.monotonic() + timeout_s
    address = parse_git_url(url)
    request = address.request()
    with _connect(address, deadline) as sock:

        def recv() -> bytes:
            sock.settimeout(_left(deadline))
            return sock.recv(RECV_BYTES)

        try:
            sock.settimeout(_left(deadline))
            sock.sendall(request)
            lines = read_advertisement(recv)
        except TimeoutError:  # an OSError too, but not a connection failure
            raise
        except OSError as exc:
            where = _printable(address.host_header)
            raise WireError(f"connection to {where} failed: {exc.strerror or exc}") from None
        # The polite goodbye git sends too; the server may already be gone.
        with contextlib.suppress(OSError):
            sock.sendall(FLUSH_PKT)
    return parse_advertisement(lines)
