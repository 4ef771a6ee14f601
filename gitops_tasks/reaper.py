"""The watchdog of one worker process: when the worker ends, kill what it had started.

Run as a script by :mod:`gitops_tasks.children` (``python -I -S reaper.py TOKEN``), so it imports
the standard library only and starts in a few milliseconds. Its standard input is the read end of
a pipe whose only write end the worker holds; the kernel closes that end however the worker ends
(exit, ``kill -9``, the OOM killer), and the read returns end-of-file. The watchdog then kills,
with SIGKILL, every process whose environment carries ``GITOPS_TASKS_CHILD_OF=TOKEN`` (the worker
gives it to each child, and every descendant inherits it: git's ssh, remote helpers and
index-pack, gpg-agent), scanning ``/proc`` until none is left, and exits. Linux only (``/proc``);
elsewhere it finds nothing to kill.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

#: The environment variable that marks a worker's children (value: the watchdog's token).
MARK_ENV = "GITOPS_TASKS_CHILD_OF"
#: Rounds of "scan /proc, kill what is marked" at most (a process may fork while it is killed).
MAX_ROUNDS = 50
#: Seconds between rounds.
ROUND_PAUSE_S = 0.02


def marked(mark: bytes, *, proc_dir: str = "/proc") -> dict[int, str]:
    """Living processes (pid → command name) whose environment holds the entry ``mark``."""
    found: dict[int, str] = {}
    try:
        entries = os.listdir(proc_dir)
    except OSError:
        return found
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"{proc_dir}/{name}/environ", "rb") as handle:
                environ = handle.read()
            with open(f"{proc_dir}/{name}/comm", "rb") as handle:
                command = handle.read().decode(errors="replace").strip()
        except OSError:  # gone, or not ours
            continue
        # A zombie's environment reads empty: it is dead already.
        if mark in environ.split(b"\0"):
            found[int(name)] = command
    return found


def kill_marked(mark: bytes) -> dict[int, str]:
    """SIGKILL every marked process (their process groups first) until none is left."""
    killed: dict[int, str] = {}
    me = os.getpid()
    for _ in range(MAX_ROUNDS):
        found = {pid: cmd for pid, cmd in marked(mark).items() if pid != me}
        if not found:
            break
        for pid in found:
            with contextlib.suppress(OSError):
                if os.getpgid(pid) == pid:  # a session the worker started: its whole tree
                    os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        killed.update(found)
        time.sleep(ROUND_PAUSE_S)
    return killed


def main(argv: list[str]) -> int:
    token = argv[1]
    # Ctrl-C in a terminal is for the worker; this process leaves when the worker has gone.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            if not os.read(0, 4096):
                break
        except InterruptedError:
            continue
        except OSError:
            break
    killed = kill_marked(f"{MARK_ENV}={token}".encode())
    if killed:
        names = ", ".join(f"{cmd}[{pid}]" for pid, cmd in sorted(killed.items()))
        with contextlib.suppress(OSError):
            print(
                f"gitops-tasks: worker process {token.split('-', 1)[0]} ended; killed the "
                f"{len(killed)} process(es) it had left running: {names}",
                file=sys.stderr,
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
