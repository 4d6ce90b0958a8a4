"""What lifecycle automation listens to: new identity events, and the syncs it asked for."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.dispatch import receiver

from console.accounts.signals import identity_events_recorded
from provisioning.models import ActionType
from provisioning.signals import actions_succeeded

logger = logging.getLogger(__name__)


# Set while a consume message waits for a worker: it will see every event committed before it
# starts, so a burst of commits sends one message. The task clears it when it starts
# consuming; it expires on its own in case the message is lost (beat sweeps too).
CONSUME_PENDING_KEY = "lifecycle:consume-pending"


@receiver(identity_events_recorded)
def on_identity_events(sender: Any, **kwargs: Any) -> None:
    """Consume them once their transaction commits (beat sweeps too, in case a message is lost)."""
    from lifecycle.models import LifecyclePolicy, PolicyMode

    if not LifecyclePolicy.objects.exclude(mode=PolicyMode.OFF).exists():
        return

    transaction.on_commit(consume_soon)


def consume_soon() -> None:
    """Send the consumer, unless a consume message already waits (it will see these events too):
    a burst of commits (an identity provider's loop of POSTs) sends one message, not one each
    for the workers to drain before the actions they lead to. The message waits
    ``LIFECYCLE_SETTLE_SECONDS`` and the task waits longer while events keep coming
    (``lifecycle.tasks.lifecycle_consume_task``), so a burst is taken whole."""
    from django.conf import settings
    from django.core.cache import cache

    from lifecycle.tasks import lifecycle_consume_task

    try:
        if not cache.add(CONSUME_PENDING_KEY, 1, consume_pending_seconds()):
            return  # a message is waiting: it will see these events
    except Exception:
        logger.warning("lifecycle: the shared cache failed; sending the consume message anyway", exc_info=True)
    lifecycle_consume_task.apply_async(countdown=settings.LIFECYCLE_SETTLE_SECONDS)


def consume_pending_seconds() -> int:
    """How long the pending mark holds: past the longest a message waits for a burst to settle,
    in case the message is lost (beat sweeps too)."""
    from django.conf import settings

    return int(settings.LIFECYCLE_SETTLE_MAX_SECONDS) + 10


@receiver(actions_succeeded)
def on_actions_succeeded(sender: Any, actions: list[Any], **kwargs: Any) -> None:
    """A joiner's account exists now: their birthright groups follow."""
    by_policy: dict[tuple[int, int], list[int]] = {}
    for action in actions:
        policy_id = (action.cause or {}).get("policy")
        if action.action_type == ActionType.SYNC_IDENTITIES and policy_id and action.person_id:
            by_policy.setdefault((policy_id, action.integration_id), []).append(action.person_id)
    if not by_policy:
        return

    def send() -> None:
        from lifecycle.engine import groups_may_change
        from lifecycle.tasks import lifecycle_follow_up_task

        for (policy_id, integration_id), people in by_policy.items():
            # Where no mapping is in effect and none of them holds a grant, the follow-up would
            # find nothing to do: the message (a broker round trip in the worker that ran the
            # batch) is not sent. A mapping that comes into effect later applies the policy to
            # everyone in scope.
            if not groups_may_change(integration_id, people):
                continue
            lifecycle_follow_up_task.delay(
                policy_id, people, [a.cause_event_id for a in actions if a.person_id in people]
            )

    transaction.on_commit(send)
