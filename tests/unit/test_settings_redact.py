"""Settings parsing and credential masking (pure)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gitops_tasks.redact import RedactingFilter, redact
from gitops_tasks.settings import ENV_VARS, Settings


def test_settings_read_environment_with_types() -> None:
    settings = Settings.from_env(
        {
            "GITOPS_TASKS_REDIS_URL": "redis://r:6379/2",
            "GITOPS_TASKS_WORKER_CONCURRENCY": "16",
            "GITOPS_TASKS_JITTER": "0.1",
            "GITOPS_TASKS_REDIS_PERSIST": "yes",
            "GITOPS_TASKS_CATALOG_PATHS": "/a:/b",
            "GITOPS_TASKS_DATA_DIR": "/tmp/x",
        }
    )
    assert settings.effective_broker_url() == "redis://r:6379/2"
    assert settings.worker_concurrency == 16 and settings.jitter == 0.1 and settings.redis_persist is True
    assert settings.catalog_paths == ("/a", "/b")
    assert settings.resolved_cache_dir == Path("/tmp/x/cache")


def test_bad_setting_names_the_variable() -> None:
    with pytest.raises(ValueError, match="GITOPS_TASKS_WORKER_CONCURRENCY='many'"):
        Settings.from_env({"GITOPS_TASKS_WORKER_CONCURRENCY": "many"})


def test_settings_file_rejects_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text("jitter: 0.2\nworker_concurency: 3\n")
    with pytest.raises(ValueError, match="unknown setting"):
        Settings.from_env({"GITOPS_TASKS_CONFIG": str(path)})


def test_every_environment_variable_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    missing = [var for var in ENV_VARS.values() if var not in readme]
    assert not missing, f"README configuration table lacks {missing}"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("fatal: could not read from https://bob:s3cr3tpass@git.example.test/x.git", "s3cr3tpass"),
        ("GET https://ghp_tokenvalue123@github.test/org/repo", "ghp_tokenvalue123"),
        ("Authorization: Bearer abcdef123456", "abcdef123456"),
        ("curl -H 'aUtHoRiZaTiOn: token abcdef123456'", "abcdef123456"),
        ("proxy said AUTHORIZATION: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
        ("amqp://guest:rabbitpass@127.0.0.1:5672//", "rabbitpass"),
    ],
)
def test_redact_masks_credentials(text: str, secret: str) -> None:
    masked = redact(text)
    assert secret not in masked
    assert "***" in masked


def test_redact_leaves_text_without_credentials_unchanged() -> None:
    text = "stored artifact for revision main@sha1:0123abcd (no fetch: unchanged)"
    assert redact(text) == text


def test_redact_keeps_ssh_user_names_and_masks_given_secrets() -> None:
    assert redact("ssh://git@github.test/org/repo.git") == "ssh://git@github.test/org/repo.git"
    assert redact("the key is hunter22 here", ["hunter22"]) == "the key is *** here"


def test_log_filter_masks_urls_in_formatted_messages() -> None:
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "cloning %s", ("https://u:pw123456@h/r",), None
    )
    RedactingFilter().filter(record)
    assert "pw123456" not in record.getMessage()
