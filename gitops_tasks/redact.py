"""Masking credentials in text: userinfo in URLs and known secret values.

Used by every log handler (see :class:`RedactingFormatter`) and by every message that reaches status,
events or Flower, so a credential that slipped into an exception still never leaves the process.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

# scheme://user:password@host → scheme://user:***@host ; scheme://token@host → scheme://***@host
# Userinfo runs to the authority's last "@": a password may hold a raw "@".
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/\s?#]+)@")
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
    """A logging filter that masks credentials in every record's final message.

    A filter sees only the message; the exception text and stack a formatter appends are masked by
    :class:`RedactingFormatter`, which every handler the project configures carries.
    """

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


class RedactingFormatter(logging.Formatter):
    """Wraps a handler's formatter and masks credentials in all it writes: the message, the
    exception text (every exception of a chain, ``raise … from`` included) and ``stack_info``.

    The exception text is masked where the formatter caches it (``record.exc_text``), so another
    handler that formats the same record later reuses the masked text.
    """

    def __init__(self, inner: logging.Formatter | None = None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        return redact(self.inner.format(record))

    def formatException(self, ei: Any) -> str:
        return redact(self.inner.formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return redact(self.inner.formatStack(stack_info))

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return self.inner.formatTime(record, datefmt)


def install_log_redaction(handlers: Iterable[logging.Handler] | None = None) -> None:
    """Give each handler (default: the root logger's) a :class:`RedactingFormatter` around its own
    formatter (idempotent), so nothing a handler writes carries a credential."""
    for handler in logging.getLogger().handlers if handlers is None else handlers:
        if not isinstance(handler.formatter, RedactingFormatter):
            handler.setFormatter(RedactingFormatter(handler.formatter))
