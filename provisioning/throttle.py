"""Rate limit and concurrency per integration, held across every worker process together.

The rate limit is a token bucket in its GCRA form: one number per integration (when the
next request may go without borrowing from the burst), kept in the database row of
``IntegrationThrottle`` and updated under a row lock. Concurrency is counted from the
actions running for the integration (with a live lease), under the same lock, when a worker
claims one.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.db import transaction

from integrations.models import Integration
from provisioning.models import IntegrationThrottle


def _locked(integration_id: int) -> IntegrationThrottle:
    IntegrationThrottle.objects.get_or_create(integration_id=integration_id)
    return IntegrationThrottle.objects.select_for_update().get(integration_id=integration_id)


def reserve(integration: Integration, *, now: float | None = None) -> float:
    """Reserve the next request slot; return how many seconds to wait before sending it."""
    rate = max(integration.rate_limit_per_second, 0.001)
    interval = 1.0 / rate
    burst_allowance = max(integration.rate_limit_burst - 1, 0) * interval
    with transaction.atomic():
        throttle = _locked(integration.pk)
        current = time.time() if now is None else now
        theoretical = max(throttle.next_free_at, current)
        wait = max(0.0, theoretical - burst_allowance - current)
        throttle.next_free_at = theoretical + interval
        throttle.save(update_fields=["next_free_at"])
    return wait


def paced(integration: Integration, sleep: Callable[[float], None] = time.sleep) -> Callable[[], None]:
    """A hook the SCIM client calls before each request: waits for this process's slot."""

    def before_request() -> None:
        wait = reserve(integration)
        if wait > 0:
            sleep(wait)

    return before_request


def running_count(integration: Integration, *, excluding: int | None = None) -> int:
    """Actions of the integration a live worker is running: an expired lease (a dead worker's
    action, waiting to be reclaimed) holds no slot, nor does ``excluding`` (the one being claimed)."""
    from django.utils import timezone

    from provisioning.models import Action, ActionState, lease_expired

    running = Action.objects.filter(integration=integration, state=ActionState.RUNNING).exclude(
        lease_expired(timezone.now())
    )
    if excluding is not None:
        running = running.exclude(pk=excluding)
    return running.count()


def slot_available(integration: Integration, *, claiming: int | None = None) -> bool:
    """Under the integration's lock: is there room for one more running action (``claiming``)?"""
    _locked(integration.pk)  # serializes claims of this integration's actions
    return running_count(integration, excluding=claiming) < max(1, integration.max_concurrency)
