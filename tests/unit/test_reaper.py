"""The watchdog's search for a dead worker's processes (a /proc laid out in a temp dir)."""

from __future__ import annotations

from pathlib import Path

from gitops_tasks import reaper

MARK = b"GITOPS_TASKS_CHILD_OF=42-abc"


def fake_proc(root: Path, pid: str, environ: bytes, comm: str | None = "git") -> None:
    (root / pid).mkdir()
    (root / pid / "environ").write_bytes(environ)
    if comm is not None:
        (root / pid / "comm").write_text(comm + "\n")


def test_only_processes_carrying_the_exact_mark_are_found(tmp_path: Path) -> None:
    fake_proc(tmp_path, "10", b"PATH=/bin\0" + MARK + b"\0HOME=/root\0", "git")
    fake_proc(tmp_path, "11", MARK + b"\0", "ssh")
    fake_proc(tmp_path, "12", b"PATH=/bin\0GITOPS_TASKS_CHILD_OF=42-abcdef\0")  # another worker's token
    fake_proc(tmp_path, "13", b"X=" + MARK + b"\0")  # the mark inside another variable's value
    fake_proc(tmp_path, "14", b"")  # a zombie: its environment reads empty
    fake_proc(tmp_path, "15", MARK + b"\0", comm=None)  # gone while being read
    (tmp_path / "self").mkdir()

    assert reaper.marked(MARK, proc_dir=str(tmp_path)) == {10: "git", 11: "ssh"}


def test_a_missing_proc_finds_nothing(tmp_path: Path) -> None:
    assert reaper.marked(MARK, proc_dir=str(tmp_path / "absent")) == {}
