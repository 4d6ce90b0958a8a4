"""Celery tasks of provisioning: thin wrappers that re-fetch by id and call the services.

``action_execute_task`` acknowledges late and is rejected back to the queue if its worker
dies, and the claim inside makes a second delivery harmless.
"""

from __future__ import annotations

from celery import shared_task

from provisioning.execution import action_execute, actions_recover
from provisioning.services import actions_expire


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def action_execute_task(action_id: int) -> None:
    outcome = action_execute(action_id)  # a transient failure queues its own retry, after its backoff
    if outcome.action is None and outcome.retry_in:  # the integration is at its concurrency: soon again
        action_execute_task.apply_async((action_id,), countdown=outcome.retry_in, **outcome.routing)


@shared_task(ignore_result=True)
def actions_recover_task() -> int:
    """Beat: queue again what a vanished worker left behind."""
    return actions_recover()


@shared_task(ignore_result=True)
def actions_expire_task() -> int:
    """Beat: pending actions past their time are cancelled."""
    return actions_expire()
