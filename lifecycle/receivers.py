"""What lifecycle automation listens to: new identity events, and the syncs it asked for."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.dispatch import receiver

from console.accounts.signals import identity_events_recorded
from provisioning.models import ActionType
from provisioning.signals import actions_succeeded


@receiver(identity_events_recorded)
def on_identity_events(sender: Any, **kwargs: Any) -> None:
    """Consume them once their transaction commits (beat sweeps too, in case a message is lost)."""
    from lifecycle.models import LifecyclePolicy, PolicyMode

    if not LifecyclePolicy.objects.exclude(mode=PolicyMode.OFF).exists():
        return

    transaction.on_commit(consume_soon)


def consume_soon() -> None:
    """Send the consumer once per settling period, however many commits bring events meanwhile
    (it waits for a burst to settle anyway: ``lifecycle.tasks.lifecycle_consume_task``)."""
    from django.conf import settings
    from django.core.cache import cache

    from lifecycle.tasks import lifecycle_consume_task

    settle = settings.LIFECYCLE_SETTLE_SECONDS
    if cache.add("lifecycle:consume-sent", True, timeout=max(1, int(settle))):
        lifecycle_consume_task.apply_async(countdown=settle)


@receiver(actions_succeeded)
def on_actions_succeeded(sender: Any, actions: list[Any], **kwargs: Any) -> None:
    """A joiner's account exists now: their birthright groups follow."""
    by_policy: dict[int, list[int]] = {}
    for action in actions:
        policy_id = (action.cause or {}).get("policy")
        if action.action_type == ActionType.SYNC_IDENTITIES and policy_id and action.person_id:
            by_policy.setdefault(policy_id, []).append(action.person_id)
    if not by_policy:
        return

    def send() -> None:
        from lifecycle.tasks import lifecycle_follow_up_task

        for policy_id, people in by_policy.items():
            lifecycle_follow_up_task.delay(
                policy_id, people, [a.cause_event_id for a in actions if a.person_id in people]
            )

    transaction.on_commit(send)
