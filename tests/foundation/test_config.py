"""Settings: defaults, normalisation, and start-up errors that name the variable."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from pydantic import ValidationError

from app.config import DEFAULT_SECRET_KEY, Settings, describe_settings_error
from tests.conftest import ROOT


def build(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_defaults_run_locally_on_sqlite() -> None:
    settings = build()
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.max_file_size == 10 * 1024 * 1024
    assert settings.allowed_extensions == [".txt", ".md"]
    assert settings.max_batch_files == 25
    assert settings.rate_limit == "100/minute"
    assert settings.task_lease_seconds == 30
    assert settings.shutdown_grace_seconds == 10


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ],
)
def test_database_url_is_normalised_to_async_drivers(given: str, expected: str) -> None:
    assert build(database_url=given).database_url == expected


def test_lists_accept_commas_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOWED_EXTENSIONS", "txt, .MD")
    monkeypatch.setenv("CORS_ORIGINS", '["http://a.example", "http://b.example"]')
    settings = build()
    assert settings.allowed_extensions == [".txt", ".md"]
    assert settings.cors_origins == ["http://a.example", "http://b.example"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MAX_FILE_SIZE", "-1"),
        ("MAX_FILE_SIZE", "ten"),
        ("WORKER_CONCURRENCY", "-2"),
        ("DATABASE_URL", "mysql://x/y"),
        ("RATE_LIMIT", "lots"),
        ("LOG_FORMAT", "xml"),
        ("TASK_LEASE_SECONDS", "0"),
        ("API_PORT", "70000"),
    ],
)
def test_bad_values_fail_with_a_message_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as info:
        build()
    assert describe_settings_error(info.value).startswith(f"invalid configuration: {variable}:")


def test_production_refuses_the_default_secret_key() -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY must be set"):
        build(environment="production", secret_key=DEFAULT_SECRET_KEY)
    assert build(environment="production", secret_key="x" * 40).environment == "production"


def test_admin_email_and_password_come_together() -> None:
    with pytest.raises(ValidationError, match="ADMIN_EMAIL and ADMIN_PASSWORD"):
        build(admin_email="a@example.com")


def test_env_example_lists_every_setting_with_its_default() -> None:
    text = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#? ?([A-Z0-9_]+)=", text, flags=re.MULTILINE))
    expected = {name.upper() for name in Settings.model_fields}
    assert expected - listed == set()
    assert listed - expected == set()


def test_the_service_refuses_to_start_on_a_bad_variable() -> None:
    env = {"PATH": "/usr/bin:/bin", "MAX_BATCH_FILES": "0", "HOME": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", "import app.main; app.main.app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "invalid configuration: MAX_BATCH_FILES:" in result.stderr
    assert "Traceback" not in result.stderr


def test_logs_are_json_in_production_and_console_elsewhere() -> None:
    assert build().log_format == "console"
    assert build(environment="production", secret_key="x" * 40).log_format == "json"
    assert build(
        environment="production", secret_key="x" * 40, log_format="console"
    ).log_format == ("console")
