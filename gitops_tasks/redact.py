"""Masking credentials in text: userinfo in URLs and known secret values.

Used by every log handler (see :class:`RedactingFilter`) and by every message that reaches status,
events or Flower, so a credential that slipped into an exception still never leaves the process.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

# scheme://user:password@host → scheme://user:***@host ; scheme://token@host → scheme://***@host
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s:]*(?::[^/@\s]*)?)@")
_AUTH_HEADER = re.compile(r"(?i)(authorization:\s*(?:basic|bearer|token)\s+)\S+")


def _mask_userinfo(match: re.Match[str]) -> str:
    userinfo = match.group("userinfo")
    if ":" in userinfo:
        user = userinfo.split(":", 1)[0]
        return f"{match.group('scheme')}{user}:***@"
    if match.group("scheme").startswith(("ssh", "git+ssh")):
        return match.group(0)  # ssh://git@host: a user name, not a secret
    return f"{match.group('scheme')}***@"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with URL passwords/tokens, Authorization headers and each of ``secrets`` masked."""
    # The substring tests skip the regular expressions for the common text with nothing to mask.
    out = _URL_USERINFO.sub(_mask_userinfo, text) if "://" in text else text
    if "authorization" in out.lower():
        out = _AUTH_HEADER.sub(r"\1***", out)
    for secret in secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, "***")
    return out


class RedactingFilter(logging.Filter):
    """A logging filter that masks credentials in every record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        masked = redact(message)
        if masked != message:
            record.msg = masked
            record.args = ()
        return True


def install_log_redaction() -> None:
    """Attach :class:`RedactingFilter` to the root logger's handlers (idempotent)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
