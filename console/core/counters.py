"""Counts in fixed windows, shared by every process: sign-in throttles and rate limits.

Each count is one atomic step that both adds the attempt and says the total, so a limit
decided on that total holds however many requests arrive at once (a read, then a write,
lets every one of them read the same total). Where the cache is Redis, a script makes the
counter with its expiry and increments it; otherwise one upsert on ``ThrottleCounter``
(``INSERT … ON CONFLICT … DO UPDATE … RETURNING``, SQLite 3.35+ and PostgreSQL) does, as
Django's database cache has no atomic increment.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import connection
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from console.core.models import ThrottleCounter
from console.core.shared_redis import redis_script

# KEYS[1]: the counter, made with its expiry (ARGV[1] ms) the first time, then counted.
_COUNT = """
redis.call('SET', KEYS[1], 0, 'PX', ARGV[1], 'NX')
local count = redis.call('INCR', KEYS[1])
return {count, redis.call('PTTL', KEYS[1])}
"""

# KEYS[1]: the counter; one attempt is taken off while the window lasts (never below zero).
_GIVE_BACK = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 0 then redis.call('DECR', KEYS[1]) end
return count
"""


@dataclass(frozen=True)
class WindowCount:
    count: int  # attempts in the window, this one included
    seconds_left: float  # until the window ends and the count starts again


def _window_end(now: float, window_seconds: int, aligned: bool) -> float:
    return (math.floor(now / window_seconds) + 1) * window_seconds if aligned else now + window_seconds


def count_in_window(key: str, window_seconds: int, *, aligned: bool = False) -> WindowCount:
    """Count one attempt under ``key`` and return the window's total, in one atomic step.

    A window starts with its first attempt and lasts ``window_seconds``; ``aligned`` windows
    follow the clock instead (a minute limit: from :00 to :00).
    """
    now = time.time()
    ends = _window_end(now, window_seconds, aligned)
    shared = redis_script(_COUNT)
    if shared is not None:
        script, backend = shared
        ttl_ms = max(1, math.ceil((ends - now) * 1000))
        count, left_ms = script(keys=[backend.make_and_validate_key(key)], args=[ttl_ms])
        return WindowCount(int(count), max(int(left_ms), 0) / 1000)
    return _count_in_table(key, now=now, ends=ends)


def _count_in_table(key: str, *, now: float, ends: float) -> WindowCount:
    table = connection.ops.quote_name(ThrottleCounter._meta.db_table)
    key_column, count, window_ends_at = (connection.ops.quote_name(name) for name in ("key", "count", "window_ends_at"))
    adapt = connection.ops.adapt_datetimefield_value
    now_at = adapt(datetime.fromtimestamp(now, UTC))
    # Every expression of the update reads the row as it was, so both CASEs see the old end.
    statement = (
        f"INSERT INTO {table} ({key_column}, {count}, {window_ends_at}) VALUES (%s, 1, %s) "  # noqa: S608 - names from the model
        f"ON CONFLICT ({key_column}) DO UPDATE SET "
        f"{count} = CASE WHEN {table}.{window_ends_at} <= %s THEN 1 ELSE {table}.{count} + 1 END, "
        f"{window_ends_at} = CASE WHEN {table}.{window_ends_at} <= %s "
        f"THEN excluded.{window_ends_at} ELSE {table}.{window_ends_at} END "
        f"RETURNING {count}, {window_ends_at}"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, [key, adapt(datetime.fromtimestamp(ends, UTC)), now_at, now_at])
        total, stored_end = cursor.fetchone()
    return WindowCount(int(total), max((_aware(stored_end) - datetime.fromtimestamp(now, UTC)).total_seconds(), 0))


def _aware(value: datetime | str) -> datetime:
    # PostgreSQL returns an aware datetime; SQLite the stored text, in UTC.
    parsed = value if isinstance(value, datetime) else parse_datetime(value)
    if parsed is None:
        raise ValueError(f"not a datetime: {value!r}")
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)


def count_give_back(key: str) -> None:
    """Take one attempt off ``key``'s current window (one that was not made after all)."""
    shared = redis_script(_GIVE_BACK)
    if shared is not None:
        script, backend = shared
        script(keys=[backend.make_and_validate_key(key)], args=[])
        return
    ThrottleCounter.objects.filter(key=key, count__gt=0, window_ends_at__gt=timezone.now()).update(count=F("count") - 1)


def count_clear(key: str) -> None:
    """Start ``key`` again from nothing."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        backend.delete(key)
        return
    ThrottleCounter.objects.filter(key=key).delete()


def counters_delete_ended() -> int:
    """Delete the database counters whose window has ended (Redis expires its own)."""
    deleted, _ = ThrottleCounter.objects.filter(window_ends_at__lt=timezone.now()).delete()
    return deleted
