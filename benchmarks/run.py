"""Run the benchmarks and rewrite ``BENCHMARKS.md``.

``python -m benchmarks.run`` runs all of them; ``--only poll`` (repeatable) runs some and keeps
the other sections of ``BENCHMARKS.md`` as they were. The header (machine facts) is rewritten on
every run; each section says when, with which command and at which commit it was measured.

Each run saves its raw figures in the temp dir; ``--render-only`` rewrites the sections from them
(after editing the prose in :mod:`benchmarks.notes`) without measuring again. A benchmark here is a
module ``benchmarks/bench_<name>.py`` with ``measure() -> dict`` and ``render(figures, command=)``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from benchmarks import machine
from benchmarks.report import Section, read_sections, render
from benchmarks.stack import exit_cleanly_on_signals
from tests.procs import REPO_ROOT

#: Where the figures go.
BENCHMARKS_MD = REPO_ROOT / "BENCHMARKS.md"
#: Section names, in the order they appear.
ORDER = ("poll", "scheduler", "registry", "automation", "sync", "fleet", "sops", "receiver", "notify")


def _run(name: str, command: str) -> Section:
    module = importlib.import_module(f"benchmarks.bench_{name}")
    figures = module.measure()
    figures["measured_at"] = datetime.now(UTC)
    figures["code"] = machine.code_version()
    section: Section = module.render(figures, command=command)
    return section


#: Benchmarks ``run.py`` knows: each is ``benchmarks/bench_<name>.py`` with ``measure()`` and ``render()``.
BENCHMARKS = ORDER


def header(command: str) -> str:
    facts = machine.facts()
    lines = [
        "# Benchmarks",
        "",
        "Written by `benchmarks/run.py`; do not edit by hand (run `make bench`, or "
        "`python -m benchmarks.run --only NAME` to redo one section and keep the others).",
        "",
        f"Written {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} by `{command}` on:",
        "",
        *[f"- {label}: {value}" for label, value in facts.items()],
        "",
        "Every process ran on this one machine (servers, workers, beat and the benchmark itself share "
        "its cores), on 127.0.0.1. Each section names the date and command it was measured with.",
    ]
    return "\n".join(lines) + "\n"


def write(sections: Sequence[Section], *, command: str | None = None) -> None:
    """Replace ``sections`` in BENCHMARKS.md, keep the others, rewrite the header."""
    command = command or "python -m " + " ".join(["benchmarks.run", *sys.argv[1:]])
    kept = read_sections(BENCHMARKS_MD)
    kept.update({s.name: s.markdown for s in sections})
    BENCHMARKS_MD.write_text(render(header(command), kept, ORDER))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run benchmarks and rewrite BENCHMARKS.md.")
    parser.add_argument(
        "--only", action="append", choices=sorted(BENCHMARKS), help="run only this benchmark (repeatable)"
    )
    args = parser.parse_args(argv)
    exit_cleanly_on_signals()
    command = "python -m " + " ".join(["benchmarks.run", *(sys.argv[1:] if argv is None else argv)])
    names = [n for n in ORDER if not args.only or n in args.only]
    sections = []
    for name in names:
        print(f"=== {name}", flush=True)
        sections.append(_run(name, command))
        write(sections, command=command)  # after each one, so a later failure keeps earlier figures
    print(f"wrote {BENCHMARKS_MD}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
