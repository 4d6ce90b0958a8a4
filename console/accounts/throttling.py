"""Throttle failed sign-ins per account and per source address.

Counters live in the shared cache (database or Redis), so every web process sees them.
A fixed window: after N failures, further attempts are refused until it ends.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache


@dataclass(frozen=True)
class ThrottleVerdict:
    allowed: bool
    retry_after_seconds: int = 0


def _key(kind: str, value: str) -> str:
    digest = hashlib.sha256(value.lower().encode()).hexdigest()[:32]
    return f"signin-failures:{kind}:{digest}"


def _window() -> int:
    return int(settings.SIGN_IN_THROTTLE_WINDOW_SECONDS)


def _limits(username: str, address: str | None) -> list[tuple[str, int]]:
    limits = [(_key("account", username), settings.SIGN_IN_MAX_FAILURES_PER_ACCOUNT)]
    if address:
        limits.append((_key("address", address), settings.SIGN_IN_MAX_FAILURES_PER_ADDRESS))
    return limits


def sign_in_allowed(*, username: str, address: str | None) -> ThrottleVerdict:
    now = time.time()
    for key, limit in _limits(username, address):
        entry = cache.get(key)
        if entry and entry["count"] >= limit and entry["until"] > now:
            return ThrottleVerdict(False, int(entry["until"] - now) + 1)
    return ThrottleVerdict(True)


def sign_in_failed(*, username: str, address: str | None) -> None:
    now = time.time()
    for key, _limit in _limits(username, address):
        entry = cache.get(key)
        if not entry or entry["until"] <= now:
            entry = {"count": 0, "until": now + _window()}
        entry["count"] += 1
        cache.set(key, entry, timeout=_window())


def sign_in_succeeded(*, username: str) -> None:
    cache.delete(_key("account", username))
