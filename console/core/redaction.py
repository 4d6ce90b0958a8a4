"""Remove secrets from anything that is logged, stored or audited.

:func:`redact` is the one routine for logs, call logs and audit details: it masks
secret-looking keys, bearer and basic credentials and the console's own API keys, and, given
an integration's :func:`integration_redactor`, that integration's credentials in every form an
application may echo them. The by-value half (:class:`SecretRedactor`) is also used alone on
what an application answered and the console keeps (a key named like a secret is data there).
"""

from __future__ import annotations

import base64
import functools
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

REDACTED = "[redacted]"
SECRET_KEY_PATTERN = re.compile(
    r"(pass(word)?|secret|token|api[_-]?key|authorization|private[_-]?key|credential|cookie|session)", re.I
)
BEARER_PATTERN = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
API_KEY_PATTERN = re.compile(r"\blck_[A-Za-z0-9]+_[A-Za-z0-9_-]+")


@functools.lru_cache(maxsize=4096)
def _secret_key(key: str) -> bool:
    return SECRET_KEY_PATTERN.search(key) is not None


def _patterns_struck(text: str) -> str:
    """``text`` without bearer and basic credentials or console API keys."""
    # The patterns only where their words are: a logged body has thousands of short strings.
    lowered = text.lower()
    if "bearer" in lowered or "basic" in lowered:
        text = BEARER_PATTERN.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return API_KEY_PATTERN.sub(REDACTED, text) if "lck_" in text else text


# --- by value: an integration's credentials, whatever form an application echoes them in ---------

# Shorter strings are ordinary words: striking them out everywhere would garble every text.
MIN_SECRET_LENGTH = 4
# A run of letters and digits this long stands for a form in the quick search (no encoder
# escapes letters or digits); a form without one is searched for whole.
ANCHOR_LENGTH = 8
ALPHANUMERIC_RUN = re.compile(r"[A-Za-z0-9]+")
PERCENT_ESCAPE = re.compile(r"%[0-9A-F]{2}")


def integration_secrets(integration: Any) -> list[str]:
    """The credentials an integration's requests carry: each of its ``SECRET_FIELDS`` (bearer
    token, basic password), and the base64 of ``user:password`` that the Authorization header
    holds (the user name alone is not a secret)."""
    secrets = [getattr(integration, name) or "" for name in integration.SECRET_FIELDS]
    if integration.basic_password:
        pair = f"{integration.basic_username}:{integration.basic_password}".encode()
        secrets.append(base64.b64encode(pair).decode())
    return [secret for secret in secrets if secret]


def secret_forms(secrets: Iterable[str]) -> list[str]:
    """Every form of each secret an application may echo, longest first: as sent, its base64
    (standard and URL-safe, with or without padding), and each of those URL-encoded and
    JSON-escaped (``\\/``, ``\\uXXXX`` in either case)."""
    forms: set[str] = set()
    for secret in secrets:
        if len(secret) < MIN_SECRET_LENGTH:
            continue
        raw = secret.encode()
        values = {secret, base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
        for value in values | {value.rstrip("=") for value in values}:
            forms.update(_encodings(value))
    return sorted((form for form in forms if len(form) >= MIN_SECRET_LENGTH), key=lambda form: (-len(form), form))


def _encodings(value: str) -> set[str]:
    quoted = quote(value, safe="")
    escaped = {json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    return {
        value,
        quoted,
        PERCENT_ESCAPE.sub(lambda m: m.group().lower(), quoted),
        quote_plus(value, safe=""),
        quote(value),
        *escaped,
        *(form.replace("/", "\\/") for form in escaped),
        _unicode_escaped(value, "04x"),
        _unicode_escaped(value, "04X"),
    }


def _unicode_escaped(value: str, digits: str) -> str:
    """``value`` with everything but ASCII letters and digits as JSON ``\\uXXXX`` escapes."""
    out = []
    for char in value:
        if char.isascii() and char.isalnum():
            out.append(char)
            continue
        units = char.encode("utf-16-be")  # a character beyond the BMP is a surrogate pair
        out.extend(f"\\u{int.from_bytes(units[i : i + 2]):{digits}}" for i in range(0, len(units), 2))
    return "".join(out)


def _needles(forms: list[str]) -> list[str]:
    """Few short strings, one of which is in any text that holds a form."""
    anchors = set()
    for form in forms:
        longest = max(ALPHANUMERIC_RUN.findall(form), key=len, default="")
        anchors.add(longest if len(longest) >= ANCHOR_LENGTH else form)
    needles: list[str] = []
    for anchor in sorted(anchors, key=len):
        if not any(needle in anchor for needle in needles):
            needles.append(anchor)
    return needles


class SecretRedactor:
    """Some secrets in every form (:func:`secret_forms`), struck out of text and JSON-like values.

    Built once (per SCIM client, say). A text is first searched for a few short needles, a
    search as cheap as ``in``; only one that holds a needle is searched for every form.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.forms = secret_forms(secrets)
        self.needles = _needles(self.forms)
        self.byte_needles = [needle.encode() for needle in self.needles]
        self._pattern = re.compile("|".join(map(re.escape, self.forms))) if self.forms else None

    def __bool__(self) -> bool:
        return bool(self.forms)

    def __repr__(self) -> str:  # never the secrets themselves
        return f"<SecretRedactor: {len(self.forms)} forms>"

    def found_in(self, data: str | bytes) -> bool:
        """Whether ``data`` may hold a secret (True for every text that does; rarely for one that does not)."""
        if isinstance(data, bytes):
            return any(needle in data for needle in self.byte_needles)
        return any(needle in data for needle in self.needles)

    def text(self, text: str) -> str:
        """``text`` with every form of every secret replaced by REDACTED."""
        if self._pattern is None or not self.found_in(text):
            return text
        return self._pattern.sub(REDACTED, text)

    def values(self, value: Any) -> Any:
        """A copy of ``value`` (text, or JSON-like data: keys and values) without the secrets."""
        if not self.forms:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k) if isinstance(k, str) else k: self.values(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.values(v) for v in value]
        return value


NO_SECRETS = SecretRedactor()


def integration_redactor(integration: Any) -> SecretRedactor:
    """What strikes the integration's credentials (:func:`integration_secrets`) out of text and data."""
    return SecretRedactor(integration_secrets(integration))


def redact(value: Any, key: str = "", *, secrets: SecretRedactor = NO_SECRETS) -> Any:
    """A copy of ``value`` (text, or JSON-like data: keys and values) fit for a log, a call log
    or an audit record: a secret-looking ``key``'s value masked, bearer and basic credentials and
    console API keys struck out, and every form of ``secrets`` (an integration's credentials, see
    :func:`integration_redactor`) replaced by REDACTED."""
    if key and _secret_key(key):
        return REDACTED if value not in (None, "") else value
    if isinstance(value, str):
        return _patterns_struck(secrets.text(value))
    if isinstance(value, dict):
        return {
            (secrets.text(k) if isinstance(k, str) else k): redact(v, str(k), secrets=secrets) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact(v, secrets=secrets) for v in value]
    return value
