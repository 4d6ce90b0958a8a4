"""Settings come from the environment; production refuses to start half-configured."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.conf import settings

from console.celery import app

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "ENCRYPTION_KEYS", "DEBUG", "CONSOLE_ENV", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    clean.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )


PRODUCTION = {
    "CONSOLE_ENV": "production",
    "SECRET_KEY": "Zq8-production-secret-key-with-enough-entropy-1234567890-abcdefghijklmnop",
    "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    "ALLOWED_HOSTS": "console.example.com",
}


def test_production_refuses_to_start_without_a_secret_key() -> None:
    result = manage("check", **{**PRODUCTION, "SECRET_KEY": ""})
    assert result.returncode != 0
    assert "SECRET_KEY must be set in production" in result.stderr


def test_production_refuses_to_start_without_an_encryption_key() -> None:
    result = manage("check", **{**PRODUCTION, "ENCRYPTION_KEYS": ""})
    assert result.returncode != 0
    assert "ENCRYPTION_KEYS must be set in production" in result.stderr


def test_check_deploy_reports_nothing_under_production_settings() -> None:
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "System check identified no issues" in result.stdout


def test_development_keeps_a_generated_secret_key_in_the_data_folder() -> None:
    key_file = settings.DATA_DIR / "secret-key"
    assert key_file.exists()
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    if not os.environ.get("SECRET_KEY"):
        assert key_file.read_text().strip() == settings.SECRET_KEY


def settings_seen_by_a_new_process(expression: str, **env: str) -> str:
    dropped = {"SECRET_KEY", "ENCRYPTION_KEYS", "DEBUG", "CONSOLE_ENV", "DATABASE_URL", "CELERY_BROKER_URL"}
    clean = {k: v for k, v in os.environ.items() if k not in dropped}
    code = f"import django; django.setup(); from django.conf import settings as s; print({expression})"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, "DJANGO_SETTINGS_MODULE": "console.settings", **env},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_database_url_drives_the_database() -> None:
    seen = settings_seen_by_a_new_process(
        "s.DATABASES['default']['ENGINE'], s.DATABASES['default']['NAME']",
        DATABASE_URL="postgres://someone@db.example:5432/console_prod",
    )
    assert seen == "django.db.backends.postgresql console_prod"
    assert settings_seen_by_a_new_process("s.DATABASES['default']['NAME']").endswith("console.sqlite3")


def test_the_default_broker_needs_no_server_and_tasks_are_never_eager() -> None:
    assert settings_seen_by_a_new_process("s.CELERY_BROKER_URL").startswith("sqla+sqlite:///")
    assert settings_seen_by_a_new_process("s.CELERY_BROKER_URL", CELERY_BROKER_URL="redis://r:6379/0") == (
        "redis://r:6379/0"
    )
    assert app.conf.task_always_eager is False
    assert settings.CELERY_TASK_ALWAYS_EAGER is False


@pytest.mark.parametrize("value", ["staging", "prod"])
def test_an_unknown_environment_name_is_an_error(value: str) -> None:
    result = manage("check", CONSOLE_ENV=value)
    assert result.returncode != 0
    assert "CONSOLE_ENV must be" in result.stderr
