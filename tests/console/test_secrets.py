"""Secrets at rest are encrypted; log lines never carry them."""

from __future__ import annotations

import logging

import pytest
from cryptography.fernet import Fernet
from django.test import override_settings

from console.core.crypto import DecryptionError, decrypt, encrypt
from console.core.logging import RedactSecretsFilter


def test_a_secret_round_trips_and_the_ciphertext_does_not_contain_it() -> None:
    token = encrypt("s3cr3t-token")
    assert "s3cr3t" not in token
    assert decrypt(token) == "s3cr3t-token"
    assert encrypt("s3cr3t-token") != token  # random IV each time


def test_keys_rotate_by_prepending_a_new_one() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with override_settings(ENCRYPTION_KEYS=[old]):
        stored = encrypt("value")
    with override_settings(ENCRYPTION_KEYS=[new, old]):
        assert decrypt(stored) == "value"
        assert Fernet(new.encode()).decrypt(encrypt("value").encode()) == b"value"
    with override_settings(ENCRYPTION_KEYS=[new]), pytest.raises(DecryptionError):
        decrypt(stored)


def test_log_records_are_scrubbed_of_tokens_and_secret_fields(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redaction")
    logger.addFilter(RedactSecretsFilter())
    try:
        with caplog.at_level(logging.INFO, logger="test.redaction"):
            logger.info(
                "calling with Authorization: Bearer abc.def and key lck_1234abcd_zzzz and %s",
                "Basic dXNlcjpwYXNz",
                extra={"password": "hunter2", "target": "ok"},
            )
    finally:
        logger.filters.clear()
    record = caplog.records[0]
    text = record.getMessage()
    assert "abc.def" not in text
    assert "lck_1234abcd_zzzz" not in text
    assert "dXNlcjpwYXNz" not in text
    assert record.password == "[redacted]"  # type: ignore[attr-defined]
    assert record.target == "ok"  # type: ignore[attr-defined]
