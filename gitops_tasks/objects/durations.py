"""Go-style durations (``1m30s``, ``5m``, ``1h``, ``500ms``) as Flux writes them."""

from __future__ import annotations

import re

_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Return seconds for a Go duration string. Raises ``ValueError`` with the expected form."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"expected a duration such as 30s, 5m or 1h30m, got {text!r}")
    pos = 0
    total = 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_S[match.group(2)]
        pos = match.end()
    if pos != len(text) or (text == "0"):
        if text == "0":
            return 0.0
        raise ValueError(f"expected a duration such as 30s, 5m or 1h30m, got {text!r}")
    return total


def format_duration(seconds: float) -> str:
    """The shortest Go-style text for ``seconds`` (``90`` → ``1m30s``)."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    out = ""
    if hours:
        out += f"{hours}h"
    if minutes:
        out += f"{minutes}m"
    if secs or not out:
        out += f"{secs}s"
    return out
