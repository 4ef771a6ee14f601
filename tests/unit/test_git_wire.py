"""The git:// protocol v0 pieces that need no server: pkt-lines, the ref advertisement, URLs."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest

from gitops_tasks.sources.gitcli import classify
from gitops_tasks.sources.refs import RemoteRefs, choose_ref
from gitops_tasks.sources.wire import (
    DEFAULT_PORT,
    MAX_PKT_BYTES,
    Address,
    ProtocolError,
    WireError,
    next_pkt,
    parse_advertisement,
    parse_git_url,
    pkt_line,
    read_advertisement,
)

A, B, C = ("a" * 40, "b" * 40, "c" * 40)
T1 = "1" * 40  # an annotated tag object
ZEROS = "0" * 40
CAPS = (
    "multi_ack thin-pack side-band side-band-64k ofs-delta shallow no-progress include-tag "
    "symref=HEAD:refs/heads/main object-format=sha1 agent=git/2.39.5"
)
URL = "git://example.test/app.git"


def pkts(*lines: str, flush: bool = True) -> bytes:
    """pkt-lines as git daemon writes them (each with a trailing newline), then a flush."""
    return b"".join(pkt_line(line.encode() + b"\n") for line in lines) + (b"0000" if flush else b"")


def chunks(data: bytes, size: int = 1 << 16) -> Callable[[], bytes]:
    """A ``recv`` that hands out ``data`` ``size`` bytes at a time, then ``b""`` (end of stream)."""
    pieces: Iterator[bytes] = iter([data[i : i + size] for i in range(0, len(data), size)])
    return lambda: next(pieces, b"")


def advertised(data: bytes, size: int = 1 << 16) -> RemoteRefs:
    return parse_advertisement(read_advertisement(chunks(data, size)))


FULL = pkts(
    f"{A} HEAD\0{CAPS}",
    f"{B} refs/heads/develop",
    f"{A} refs/heads/main",
    f"{C} refs/pull/1/head",
    f"{T1} refs/tags/v1.1.0",
    f"{B} refs/tags/v1.1.0^{{}}",
    f"{C} refs/tags/stable",
)


# --------------------------------------------------------------------------- advertisement


def test_advertisement_gives_what_ls_remote_symref_prints() -> None:
    ls_remote_output = (
        f"ref: refs/heads/main\tHEAD\n{A}\tHEAD\n{B}\trefs/heads/develop\n{A}\trefs/heads/main\n"
        f"{C}\trefs/pull/1/head\n{T1}\trefs/tags/v1.1.0\n{B}\trefs/tags/v1.1.0^{{}}\n{C}\trefs/tags/stable\n"
    )
    assert advertised(FULL) == RemoteRefs.parse(ls_remote_output)


def test_annotated_tag_resolves_to_its_peeled_commit() -> None:
    refs = advertised(FULL)
    assert refs.refs["refs/tags/v1.1.0"] == T1
    assert refs.commit_of("refs/tags/v1.1.0") == B
    assert refs.tags() == ["stable", "v1.1.0"]
    assert choose_ref(refs, {"tag": "v1.1.0"}, url=URL).revision == f"v1.1.0@sha1:{B}"


def test_symref_capability_names_the_default_branch() -> None:
    refs = advertised(FULL)
    assert refs.head_target == "refs/heads/main"
    assert choose_ref(refs, None, url=URL).revision == f"main@sha1:{A}"
    trunk = pkts(f"{B} HEAD\0symref=HEAD:refs/heads/trunk agent=x", f"{B} refs/heads/trunk")
    assert advertised(trunk).head_target == "refs/heads/trunk"


def test_symref_is_ignored_when_head_is_not_advertised() -> None:
    # ls-remote prints "ref: ..." only next to the HEAD line it annotates
    refs = advertised(pkts(f"{A} refs/heads/main\0symref=HEAD:refs/heads/main"))
    assert refs == RemoteRefs({"refs/heads/main": A}, None)


def test_no_symref_capability_leaves_head_target_unknown() -> None:
    refs = advertised(pkts(f"{A} HEAD\0multi_ack agent=git/1.7", f"{A} refs/heads/master"))
    assert refs == RemoteRefs({"HEAD": A, "refs/heads/master": A}, None)


@pytest.mark.parametrize(
    "data",
    [b"0000", pkts(f"{ZEROS} capabilities^{{}}\0{CAPS}"), pkts(f"{'0' * 64} capabilities^{{}}\0x")],
    ids=["nothing", "capabilities-line", "capabilities-line-sha256"],
)
def test_empty_repository_has_no_refs(data: bytes) -> None:
    assert advertised(data) == RemoteRefs({}, None)


def test_have_lines_are_not_refs_and_shallow_lines_end_the_refs() -> None:
    data = pkts(f"{A} refs/heads/main\0{CAPS}", f"{B} .have", f"shallow {C}", f"shallow {B}")
    assert advertised(data) == RemoteRefs({"refs/heads/main": A}, None)


def test_upper_case_and_sha256_object_ids_are_accepted() -> None:
    sha256 = "ab" * 32
    data = pkts(f"{A.upper()} refs/heads/main\0object-format=sha1", f"{sha256} refs/heads/other")
    assert advertised(data).refs == {"refs/heads/main": A, "refs/heads/other": sha256}


def test_reading_in_one_byte_pieces_gives_the_same_refs() -> None:
    assert advertised(FULL, size=1) == advertised(FULL)


def test_read_stops_at_the_flush() -> None:
    # Whatever follows the flush is not read as part of the advertisement.
    assert read_advertisement(chunks(pkts(f"{A} HEAD") + b"garbage")) == [f"{A} HEAD".encode()]


# --------------------------------------------------------------------------- errors


def test_err_packet_is_a_remote_error_classified_like_gits() -> None:
    data = pkt_line(b"ERR access denied or repository not exported: /x.git")
    with pytest.raises(WireError) as info:
        advertised(data)
    assert str(info.value) == "remote error: access denied or repository not exported: /x.git"
    error = classify(str(info.value), operation="ls-remote", display_url=URL)
    assert (error.reason, error.result) == ("RepositoryNotFound", "transient")
    assert error.message == (
        f"ls-remote {URL} failed: remote error: access denied or repository not exported: /x.git"
    )


def test_other_err_packet_is_a_plain_failure_and_control_characters_are_masked() -> None:
    data = pkts(f"{A} HEAD\0{CAPS}")[:-4] + pkt_line(b"ERR server \x1b[31mbusy\n")
    with pytest.raises(WireError) as info:
        advertised(data)
    assert str(info.value) == "remote error: server ?[31mbusy"
    assert classify(str(info.value), operation="ls-remote", display_url=URL).reason == "GitOperationFailed"


def test_err_is_reported_without_waiting_for_more_data() -> None:
    def recv() -> bytes:
        if not sent:
            sent.append(True)
            return pkt_line(b"ERR no such repository")
        raise AssertionError("read again after ERR")

    sent: list[bool] = []
    with pytest.raises(WireError, match="no such repository"):
        read_advertisement(recv)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"zzzz", "bad line length character: 'zzzz'"),
        (b"+0ff", "bad line length character: '+0ff'"),
        (b"0x1f", "bad line length character: '0x1f'"),
        (b"0001", "bad line length 1"),  # v2's delim-pkt
        (b"0002", "bad line length 2"),  # v2's response-end-pkt
        (b"0003", "bad line length 3"),
        (b"fff1", "bad line length 65521"),
        (b"ffff", "bad line length 65535"),
    ],
)
def test_malformed_length_is_a_protocol_error(data: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=re.escape(message)):
        advertised(data)


def test_longest_pkt_line_is_accepted() -> None:
    name = "refs/heads/" + "n" * (MAX_PKT_BYTES - 4 - 41 - 11)
    line = f"{A} {name}".encode()
    assert len(pkt_line(line)) == MAX_PKT_BYTES
    assert advertised(pkt_line(line) + b"0000").refs == {name: A}


@pytest.mark.parametrize(
    "data",
    [
        pkts("version 2", "agent=git/2.39.5"),
        pkts(f"{A}refs/heads/main"),
        pkts(f"{A[:39]} refs/heads/main"),
        pkts(f"{A} refs/heads/main", ""),
        pkts(f"{A} refs/heads/main", f"{B} capabilities^{{}}"),
        pkts(f"{A} refs/heads/main", f"shallow {B}", f"{C} refs/heads/late"),
        pkts(f"{ZEROS} capabilities^{{}}\0x", f"{A} refs/heads/main"),
    ],
    ids=[
        "v2",
        "no-space",
        "short-oid",
        "empty-line",
        "late-capabilities",
        "ref-after-shallow",
        "ref-after-empty",
    ],
)
def test_unexpected_line_is_a_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError, match="protocol error: unexpected"):
        advertised(data)


def test_hang_up_before_the_flush_is_an_error() -> None:
    with pytest.raises(WireError, match="hung up before the end of the ref advertisement"):
        advertised(pkts(f"{A} HEAD\0{CAPS}", flush=False))
    with pytest.raises(WireError, match="hung up"):
        advertised(b"")
    with pytest.raises(WireError, match="hung up"):
        advertised(b"00")


def test_oversized_advertisement_is_refused_while_reading() -> None:
    endless = pkt_line(f"{A} refs/heads/{'x' * 1000}".encode())
    reads: list[int] = []

    def recv() -> bytes:
        reads.append(1)
        return endless

    with pytest.raises(ProtocolError, match="larger than 100000 bytes"):
        read_advertisement(recv, max_bytes=100_000)
    assert len(reads) == 100_000 // len(endless) + 1


def test_next_pkt_needs_the_whole_line() -> None:
    line = pkt_line(b"hello\n")
    assert next_pkt(line[:3], 0) is None
    assert next_pkt(line[:-1], 0) is None
    assert next_pkt(line + b"0000", 0) == (b"hello", len(line))
    assert next_pkt(line + b"0000", len(line)) == (None, len(line) + 4)


# --------------------------------------------------------------------------- URLs and the request


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("git://127.0.0.1:9419/app.git", Address(b"127.0.0.1", 9419, b"127.0.0.1:9419", b"/app.git")),
        ("git://example.test/app.git", Address(b"example.test", DEFAULT_PORT, b"example.test", b"/app.git")),
        (
            "git://example.test:/app.git",
            Address(b"example.test", DEFAULT_PORT, b"example.test:", b"/app.git"),
        ),
        ("git://[::1]:9419/x", Address(b"::1", 9419, b"[::1]:9419", b"/x")),
        ("git://[::1]/x", Address(b"::1", DEFAULT_PORT, b"[::1]", b"/x")),
        ("git://host/~alice/app.git", Address(b"host", DEFAULT_PORT, b"host", b"~alice/app.git")),
        ("git://host/org/~x", Address(b"host", DEFAULT_PORT, b"host", b"/org/~x")),
        (
            "git://host/my%20repo+x%2fy%00.git",
            Address(b"host", DEFAULT_PORT, b"host", b"/my repo+x/y%00.git"),
        ),
        ("git://host/%7Ealice/app.git", Address(b"host", DEFAULT_PORT, b"host", b"~alice/app.git")),
        ("git://host:http/x", Address(b"host:http", DEFAULT_PORT, b"host:http", b"/x")),
        ("git://host:65536/x", Address(b"host:65536", DEFAULT_PORT, b"host:65536", b"/x")),
        ("git://h/d\u00e9p\u00f4t.git", Address(b"h", DEFAULT_PORT, b"h", "/d\u00e9p\u00f4t.git".encode())),
    ],
)
def test_urls_are_read_as_git_reads_them(url: str, address: Address) -> None:
    assert parse_git_url(url) == address


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("git://host", "no path specified"),
        ("git://host/x%0a.git", "newline is forbidden"),
        ("git://ho%0ast/x.git", "newline is forbidden"),
        ("git://host/x\0.git", "NUL byte"),
    ],
)
def test_unusable_urls_are_refused_before_connecting(url: str, message: str) -> None:
    with pytest.raises(WireError, match=message):
        parse_git_url(url)


def test_request_is_the_pkt_line_git_sends() -> None:
    assert parse_git_url("git://127.0.0.1:9419/app.git").request() == (
        b"0031git-upload-pack /app.git\0host=127.0.0.1:9419\0"
    )
    assert parse_git_url("git://[::1]/~bob/r").request() == b"0026git-upload-pack ~bob/r\0host=[::1]\0"


def test_pkt_line_refuses_a_payload_that_does_not_fit() -> None:
    assert pkt_line(b"x" * (MAX_PKT_BYTES - 4))[:4] == b"fff0"
    with pytest.raises(ProtocolError):
        pkt_line(b"x" * (MAX_PKT_BYTES - 3))
