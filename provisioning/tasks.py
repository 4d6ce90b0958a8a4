"""Celery tasks of provisioning: thin wrappers that re-fetch by id and call the services.

``actions_execute_task`` acknowledges late and is rejected back to the queue if its worker
dies, and the claim inside makes a second delivery harmless.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from provisioning.access_requests import access_requests_end_due
from provisioning.execution import BUSY_RETRY_SECONDS, actions_execute, actions_recover
from provisioning.services import actions_expire


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def actions_execute_task(action_ids: list[int]) -> None:
    """Claim the actions (of one integration) together and run them one after another."""
    outcomes = actions_execute(action_ids)  # a transient failure queues its own retry, after its backoff
    busy = [(pk, outcome) for pk, outcome in zip(action_ids, outcomes, strict=True) if outcome.busy]
    if busy:  # the integration is at its concurrency: soon again
        routing = busy[0][1].routing
        actions_execute_task.apply_async(([pk for pk, _ in busy],), countdown=BUSY_RETRY_SECONDS, **routing)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def action_execute_task(action_id: int) -> None:
    """One action: the message of earlier versions, still in queues after an upgrade."""
    actions_execute_task([action_id])


@shared_task(ignore_result=True)
def actions_recover_task() -> int:
    """Beat: queue again what a vanished worker left behind."""
    return actions_recover()


@shared_task(ignore_result=True)
def actions_expire_task() -> int:
    """Beat: pending actions past their time are cancelled."""
    return actions_expire()


@shared_task(ignore_result=True)
def access_requests_end_due_task() -> int:
    """Beat: end the access whose end date has come; a full batch sends the task again for the rest."""
    ended = access_requests_end_due()
    if ended >= settings.ACCESS_REQUEST_END_BATCH:
        access_requests_end_due_task.delay()
    return ended
