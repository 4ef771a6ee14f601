"""Child processes started through ``gitops_tasks.children``: real processes, real signals.

A deadline kills the child's whole tree; a parent killed with SIGKILL takes every process it
started with it, daemons that left the child's session included (as gpg-agent does).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gitops_tasks import children
from tests.procs import alive, wait_for


def read_pids(path: Path) -> list[int]:
    text = path.read_text() if path.exists() else ""
    return [int(word) for word in text.split()] if text.endswith("\n") else []


def test_a_deadline_kills_the_childs_whole_process_tree(tmp_path: Path) -> None:
    # Given a child that starts a grandchild in the background and waits for it
    pids = tmp_path / "pids"
    script = f"sleep 300 & echo $$ $! > {pids}; wait"

    # When its deadline expires
    with pytest.raises(subprocess.TimeoutExpired):
        children.run(["sh", "-c", script], timeout_s=1.0)

    # Then the child and the grandchild are both dead
    started = read_pids(pids)
    assert len(started) == 2, started
    assert not any(alive(pid) for pid in started)


def test_children_are_marked_for_the_watchdog() -> None:
    out = children.run(["sh", "-c", f'echo "${children.MARK_ENV}"'], timeout_s=10).stdout.decode().strip()
    assert out.startswith(f"{os.getpid()}-"), out


def test_a_killed_parent_takes_its_children_and_their_daemons_with_it(tmp_path: Path) -> None:
    # Given a process (as a worker) running a child that started a daemon in a session of its own
    pids = tmp_path / "pids"
    parent_code = textwrap.dedent(
        f"""
        from gitops_tasks import children
        children.run(["sh", "-c", "setsid sleep 300 & echo $$ $! > {pids}; sleep 300"], timeout_s=600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stderr=subprocess.PIPE)
    try:
        started = wait_for(lambda: read_pids(pids), timeout_s=30, what="the child and its daemon")
        assert all(alive(pid) for pid in started)

        # When the parent alone is killed with SIGKILL
        os.kill(parent.pid, signal.SIGKILL)
        _, err = parent.communicate(timeout=30)

        # Then the child and the daemon are gone, and the watchdog said what it killed
        wait_for(lambda: not any(alive(pid) for pid in started), timeout_s=30, what=f"{started} to end")
        said = err.decode()
        assert "ended; killed the" in said and all(f"[{pid}]" in said for pid in started), said
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_output_past_the_bound_kills_the_child_once_the_bound_is_read(tmp_path: Path) -> None:
    # Given a child that would print 100 MB, and a bound of 100 kB on its stdout
    pid_file = tmp_path / "pid"
    code = (
        f"import os, sys; open({str(pid_file)!r}, 'w').write(str(os.getpid())); sys.stdout.write('x' * 10**8)"
    )
    limit = 100_000

    # When it runs
    with pytest.raises(children.OutputTooLarge) as info:
        children.run([sys.executable, "-c", code], timeout_s=60, max_stdout_bytes=limit)

    # Then it was stopped at the bound: killed, and no more than a chunk past the bound was read
    error = info.value
    assert (error.stream, error.limit) == ("stdout", limit)
    assert limit < error.read_bytes <= limit + children.READ_CHUNK_BYTES
    assert str(error).endswith(f"printed more than {limit} bytes on stdout; stopped after {error.read_bytes}")
    assert not alive(int(pid_file.read_text()))


def test_stderr_has_its_own_bound() -> None:
    with pytest.raises(children.OutputTooLarge) as info:
        children.run(["sh", "-c", "yes error >&2"], timeout_s=60, max_stdout_bytes=10, max_stderr_bytes=1000)
    assert (info.value.stream, info.value.limit) == ("stderr", 1000)
    assert info.value.read_bytes <= 1000 + children.READ_CHUNK_BYTES


def test_output_within_the_bounds_is_returned_whole_with_input_fed_through() -> None:
    # Given input larger than a pipe's buffer, echoed on stdout while stderr is written too
    data = bytes(range(256)) * 1000
    done = children.run(
        ["sh", "-c", "cat; echo done >&2"],
        input=data,
        timeout_s=60,
        max_stdout_bytes=len(data),
        max_stderr_bytes=5,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, data, b"done\n")
