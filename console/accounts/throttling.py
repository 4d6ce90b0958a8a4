"""Throttle failed sign-ins per account and per source address.

Each attempt is counted before its password is checked, in one atomic step per counter
(:func:`console.core.counters.count_in_window`): the attempt that takes a counter past its
limit is refused unchecked, so parallel attempts cannot all be checked against a total read
before any of them failed. An attempt with the right password is then taken back: it
clears the account's count and gives its place back to the address, so what the limits
count are failed sign-ins per window (a fixed window, from the first attempt).

The account is the user name as sign-in matches it (:func:`username_key`), so every
spelling that reaches a person (case, fullwidth letters, the Kelvin sign) shares its count.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from django.conf import settings

from console.accounts.usernames import username_key
from console.core.counters import count_clear, count_give_back, count_in_window


@dataclass(frozen=True)
class ThrottleVerdict:
    allowed: bool
    retry_after_seconds: int = 0


def _key(kind: str, value: str) -> str:
    digest = hashlib.sha256(value.encode()).hexdigest()[:32]
    return f"signin-failures:{kind}:{digest}"


def _account_key(username: str) -> str:
    return _key("account", username_key(username))


def _limits(username: str, address: str | None) -> list[tuple[str, int]]:
    limits = [(_account_key(username), int(settings.SIGN_IN_MAX_FAILURES_PER_ACCOUNT))]
    if address:
        limits.append((_key("address", address), int(settings.SIGN_IN_MAX_FAILURES_PER_ADDRESS)))
    return limits


def sign_in_attempt(*, username: str, address: str | None) -> ThrottleVerdict:
    """Count an attempt against the account and the address; refused past either limit.

    Call it before checking the password, and check it only when allowed. A refused attempt
    gives back what it took from counters still under their limit (it was never checked).
    """
    window = int(settings.SIGN_IN_THROTTLE_WINDOW_SECONDS)
    taken: list[str] = []
    for key, limit in _limits(username, address):
        counted = count_in_window(key, window)
        if counted.count > limit:
            for earlier in taken:
                count_give_back(earlier)
            return ThrottleVerdict(False, max(1, math.ceil(counted.seconds_left)))
        taken.append(key)
    return ThrottleVerdict(True)


def sign_in_succeeded(*, username: str, address: str | None) -> None:
    """The password was right: the account starts again from nothing, the address gets its attempt back."""
    count_clear(_account_key(username))
    if address:
        count_give_back(_key("address", address))
