"""Log output is masked at the formatter: message, exception text (whole chains) and stack (pure)."""

from __future__ import annotations

import io
import logging
import subprocess
import sys

import pytest

from gitops_tasks.redact import RedactingFormatter, install_log_redaction, redact

TOKEN = "ghp_s3cr3tT0kenValue"
URL = f"https://deploy:{TOKEN}@git.example.test/org/fleet.git"


@pytest.fixture
def logged() -> tuple[logging.Logger, io.StringIO]:
    """A logger writing through a plain handler that :func:`install_log_redaction` wrapped."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    install_log_redaction([handler])
    logger = logging.getLogger(f"test.redaction.{id(stream)}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    return logger, stream


def test_exception_text_is_masked(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = logged
    try:
        raise RuntimeError(f"fetch of {URL} failed")
    except RuntimeError:
        logger.exception("poll failed")
    out = stream.getvalue()
    assert TOKEN not in out
    assert "RuntimeError: fetch of https://deploy:***@git.example.test/org/fleet.git failed" in out
    assert "Traceback (most recent call last)" in out


def test_every_exception_of_a_chain_is_masked(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = logged
    try:
        try:
            raise ConnectionError(f"cannot reach {URL}")
        except ConnectionError as cause:
            try:
                raise ValueError(f"bad answer from https://{TOKEN}@registry.example.test/v2/") from cause
            except ValueError:
                raise KeyError(f"while handling {URL}")  # noqa: B904 - the implicit context is the point
    except KeyError:
        logger.error("scan failed", exc_info=True)
    out = stream.getvalue()
    assert TOKEN not in out
    assert "ConnectionError: cannot reach https://deploy:***@git.example.test" in out
    assert "ValueError: bad answer from https://***@registry.example.test/v2/" in out
    assert "The above exception was the direct cause" in out
    assert "During handling of the above exception" in out
    assert "KeyError: 'while handling https://deploy:***@git.example.test/org/fleet.git'" in out


def test_stack_info_and_message_arguments_are_masked(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = logged

    def clone(url: str) -> None:
        logger.warning("cloning %s", url, stack_info=True)

    clone(URL)
    out = stream.getvalue()
    assert TOKEN not in out
    assert "cloning https://deploy:***@git.example.test/org/fleet.git" in out
    assert "Stack (most recent call last)" in out


def test_the_cached_exception_text_is_masked_for_other_handlers() -> None:
    try:
        raise RuntimeError(URL)
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    RedactingFormatter(logging.Formatter()).format(record)
    plain = logging.Formatter().format(record)  # a handler without the wrapper formats it next
    assert TOKEN not in plain and "deploy:***@" in plain


def test_wrapping_is_idempotent_and_keeps_the_inner_format() -> None:
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(logging.Formatter("<%(message)s>"))
    install_log_redaction([handler])
    install_log_redaction([handler])
    formatter = handler.formatter
    assert isinstance(formatter, RedactingFormatter)
    assert not isinstance(formatter.inner, RedactingFormatter)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "at %s", (URL,), None)
    assert formatter.format(record) == "<at https://deploy:***@git.example.test/org/fleet.git>"


def test_a_password_holding_a_raw_at_sign_is_masked_whole() -> None:
    assert redact("https://bob:p@ss@git.example.test/x") == "https://bob:***@git.example.test/x"
    assert redact("see https://git.example.test/x?to=a@b") == "see https://git.example.test/x?to=a@b"


def test_an_exception_escaping_the_cli_is_printed_masked() -> None:
    # The CLI's excepthook (gitops_tasks.logsetup) masks the traceback of a crash.
    code = f"from gitops_tasks import logsetup; logsetup.configure()\nraise RuntimeError({URL!r})\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert TOKEN not in result.stderr
    assert "RuntimeError: https://deploy:***@git.example.test/org/fleet.git" in result.stderr
