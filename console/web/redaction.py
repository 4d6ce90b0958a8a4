"""Remove secrets from anything that is stored or logged."""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[redacted]"
SECRET_KEY_PATTERN = re.compile(
    r"(pass(word)?|secret|token|api[_-]?key|authorization|private[_-]?key|credential|cookie|session)", re.I
)
BEARER_PATTERN = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
API_KEY_PATTERN = re.compile(r"\blck_[A-Za-z0-9]+_[A-Za-z0-9_-]+")


def redact(value: Any, key: str = "") -> Any:
    """Return a copy of ``value`` with secret-looking keys and token strings masked."""
    if key and SECRET_KEY_PATTERN.search(key):
        return REDACTED if value not in (None, "") else value
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def redact_text(text: str) -> str:
    text = BEARER_PATTERN.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return API_KEY_PATTERN.sub(REDACTED, text)
