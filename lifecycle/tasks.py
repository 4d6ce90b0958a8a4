"""Celery tasks of lifecycle automation: thin wrappers over the consumer and the engine."""

from __future__ import annotations

import logging

from celery import shared_task
from django.core.cache import cache
from django.db import transaction

from console.accounts.models import IdentityEvent
from lifecycle.consumer import burst_settling, policies_consume
from lifecycle.engine import wanted_apply, wanted_for
from lifecycle.models import LifecyclePolicy, PolicyMode
from lifecycle.receivers import CONSUME_PENDING_KEY
from lifecycle.retention import leavers_delete_due

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def lifecycle_consume_task() -> int:
    """Sent when identity events commit, and by beat: every policy catches up, once a burst
    has settled (so 300 leavers pushed one request each are taken, and held, as one batch)."""
    wait = burst_settling()
    if wait:  # still coming: this message goes on waiting (the pending mark stays set)
        lifecycle_consume_task.apply_async(countdown=wait)
        return 0
    # First: an event committed from now on may be after this pass's read, and sends a message.
    try:
        cache.delete(CONSUME_PENDING_KEY)
    except Exception:
        logger.warning("lifecycle: the shared cache failed; consuming anyway", exc_info=True)
    return policies_consume()


@shared_task(ignore_result=True)
def lifecycle_follow_up_task(policy_id: int, person_ids: list[int], event_ids: list[int | None]) -> None:
    """After a joiner's account is made: what the policy still wants for them (their groups)."""
    policy = LifecyclePolicy.objects.select_related("integration").filter(pk=policy_id, mode=PolicyMode.ON).first()
    if policy is None:
        return
    events = {e.person_id: e for e in IdentityEvent.objects.filter(pk__in=[e for e in event_ids if e])}
    with transaction.atomic():
        wanted_apply(policy, wanted_for(policy, person_ids, events, accounts=False))


@shared_task(ignore_result=True)
def lifecycle_retention_task() -> int:
    """Beat: leavers' accounts past their policy's retention are deleted (through approval)."""
    return leavers_delete_due()
