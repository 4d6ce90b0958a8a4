"""Rate limit and concurrency per integration, held across every worker process together.

The rate limit is a token bucket in its GCRA form: one number per integration (when the
next request may go without borrowing from the burst). Where the console's cache is Redis
(as in production, where the workers share it), that number lives in Redis and one atomic
script reserves a slot in one round trip, on Redis's own clock; otherwise it is the
database row of ``IntegrationThrottle``, updated under a row lock. Concurrency is counted
from the claims running for the integration (live leases), under that row's lock, when a
worker claims actions.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from datetime import timedelta

from django.db import IntegrityError, transaction

from console.core.shared_redis import redis_script
from integrations.models import Integration
from provisioning.models import IntegrationThrottle

# KEYS[1]: the integration's theoretical arrival time. ARGV: interval, burst allowance,
# "now" (empty: Redis's clock, the same for every worker host) and how many consecutive
# slots to reserve. Returns the wait for the first, as text (Redis would cut a number
# returned from Lua to an integer); slot i may go ``i`` intervals after it.
_GCRA = """
local now = tonumber(ARGV[3])
if not now then
    local clock = redis.call('TIME')
    now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
end
local interval = tonumber(ARGV[1])
local count = tonumber(ARGV[4])
local theoretical = tonumber(redis.call('GET', KEYS[1]) or '0')
if theoretical < now then theoretical = now end
local wait = theoretical - tonumber(ARGV[2]) - now
local keep_ms = math.ceil((theoretical + count * interval - now) * 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.6f', theoretical + count * interval), 'PX', keep_ms)
return string.format('%.6f', wait)
"""


def _locked(integration_id: int) -> IntegrationThrottle:
    """The integration's throttle row, locked until the transaction ends (made on first use)."""
    found = IntegrationThrottle.objects.select_for_update().filter(integration_id=integration_id).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            IntegrationThrottle.objects.create(integration_id=integration_id)
    except IntegrityError:  # another worker made it first
        pass
    return IntegrationThrottle.objects.select_for_update().get(integration_id=integration_id)


def reserve(integration: Integration, *, now: float | None = None) -> float:
    """Reserve the next request slot; return how many seconds to wait before sending it."""
    return reserve_many(integration, 1, now=now)[0]


def reserve_many(integration: Integration, count: int, *, now: float | None = None) -> list[float]:
    """Reserve ``count`` consecutive request slots; return how long to wait before each.

    The slots are the next ones of the integration's schedule, an interval apart as any
    requests are: reserving several at once keeps the limit, and saves a round trip each.
    """
    rate = max(integration.rate_limit_per_second, 0.001)
    interval = 1.0 / rate
    burst_allowance = max(integration.rate_limit_burst - 1, 0) * interval
    count = max(1, count)
    shared = redis_script(_GCRA)
    if shared is not None:
        script, backend = shared
        key = backend.make_and_validate_key(f"throttle:{integration.pk}")
        arguments = [repr(interval), repr(burst_allowance), "" if now is None else repr(now), str(count)]
        first = float(script(keys=[key], args=arguments))
    else:
        with transaction.atomic():
            throttle = _locked(integration.pk)
            current = time.time() if now is None else now
            theoretical = max(throttle.next_free_at, current)
            first = theoretical - burst_allowance - current
            throttle.next_free_at = theoretical + count * interval
            throttle.save(update_fields=["next_free_at"])
    return [max(0.0, first + index * interval) for index in range(count)]


RESERVE_AHEAD_SECONDS = 0.05  # a worker reserves at most this much of an integration's rate ahead
RESERVE_MAX = 20


def slots_to_reserve(integration: Integration) -> int:
    """How many slots a worker running a batch reserves at a time: what the rate allows in
    ``RESERVE_AHEAD_SECONDS`` (at least one), so a slow limit is never held ahead by one worker."""
    return max(1, min(RESERVE_MAX, int(integration.rate_limit_per_second * RESERVE_AHEAD_SECONDS)))


def running_locked(integration: Integration, *, excluding: Collection[int] = ()) -> int:
    """:func:`running_count`, under the integration's lock (held to the transaction's end), which serializes claims."""
    _locked(integration.pk)
    return running_count(integration, excluding=excluding)


def running_count(integration: Integration, *, excluding: Collection[int] = ()) -> int:
    """Claims of the integration a live worker is running: each claim (one lease token, one or
    many actions run one after another) holds one slot. An expired lease (a dead worker's
    actions, waiting to be reclaimed; see ``lease_expired``) holds none, nor do the actions of
    ``excluding`` (those being claimed). One hand-written statement: every claim asks it."""
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from provisioning.models import Action, ActionState

    now = timezone.now()
    stale = now - timedelta(seconds=settings.ACTION_LEASE_SECONDS)
    adapt = connection.ops.adapt_datetimefield_value
    skipped = list(excluding)
    not_these = f"AND id NOT IN ({', '.join(['%s'] * len(skipped))})" if skipped else ""
    statement = (
        f"SELECT COUNT(DISTINCT lease_token) FROM {Action._meta.db_table} "  # noqa: S608 - names from the model
        "WHERE integration_id = %s AND state = %s "
        "AND (lease_expires_at >= %s OR (lease_expires_at IS NULL AND (started_at IS NULL OR started_at >= %s))) "
        f"{not_these}"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, [integration.pk, ActionState.RUNNING.value, adapt(now), adapt(stale), *skipped])
        (count,) = cursor.fetchone()
    return int(count)
