"""The identity-event consumer: each policy acts on each identity event once, in order.

Each policy keeps a cursor: the last event it has acted on. A pass takes the events after
it (at most ``LIFECYCLE_EVENT_BATCH``, in the order they were written), works out what they
want for the people they concern (``lifecycle.engine``), asks for it, and moves the cursor,
all in one transaction. The cursor moves by a conditional update made first, so two passes
racing for the same events cannot both act, and a worker killed midway leaves the cursor
where it was and nothing asked for: the next pass does the work once.

A burst (one group push that moves 500 people) is one pass: its deprovisions become one
batch, checked whole against the mass-change threshold; its group changes one action per
group.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from console.accounts.models import IdentityEvent
from lifecycle.engine import wanted_apply, wanted_for
from lifecycle.models import LifecyclePolicy, PolicyMode
from provisioning.errors import ActionRefused

logger = logging.getLogger(__name__)


def policy_consume(policy_id: int, limit: int | None = None) -> int:
    """One pass of one policy over the events after its cursor; returns how many it took.

    A pass that loses the race for the cursor reads it again and takes what is left: the
    pass that won may have read before the newest events committed, and stopped short of
    them (no other message may come for them)."""
    while True:
        taken = _policy_consume_once(policy_id, limit or settings.LIFECYCLE_EVENT_BATCH)
        if taken is not None:
            return taken


def _policy_consume_once(policy_id: int, limit: int) -> int | None:
    """How many events the pass took, or None if another pass moved the cursor first."""
    policy = LifecyclePolicy.objects.select_related("integration").get(pk=policy_id)
    if policy.mode == PolicyMode.OFF:
        return 0
    start = policy.event_cursor
    # What the pass reads of each event (its JSON of changes is for the pages, not for the engine).
    read = IdentityEvent.objects.filter(pk__gt=start).defer("changes").order_by("pk")
    events = committed_run(start, list(read[:limit]))
    if not events:
        return 0
    end = events[-1].pk
    latest: dict[int, IdentityEvent] = {}
    for event in events:  # in order: the latest event of each person explains what is done now
        latest[event.person_id] = event
    try:
        with transaction.atomic():
            if not LifecyclePolicy.objects.filter(pk=policy.pk, event_cursor=start, mode=policy.mode).update(
                event_cursor=end
            ):
                return None  # another pass moved the cursor (or the policy changed): read it again
            policy.event_cursor = end
            wanted_apply(policy, wanted_for(policy, latest, latest))
    except ActionRefused as exc:
        # A refusal (the integration disabled, no approver) is the policy's problem to show,
        # not a reason to stop: the events are passed over and said so in the log.
        logger.warning("lifecycle policy could not act", extra={"policy": policy.pk, "events": f"{start + 1}..{end}"})
        LifecyclePolicy.objects.filter(pk=policy.pk, event_cursor=start).update(event_cursor=end)
        policy_problem_record(policy, str(exc))
    return len(events)


def committed_run(start: int, events: list[IdentityEvent]) -> list[IdentityEvent]:
    """The events up to the first gap in their ids that a transaction still open may fill.

    Ids are handed out when an event is written, not when its transaction commits: event 8
    can be readable while event 7 is not yet. Moving the cursor past 7 would lose it. A gap
    whose next event is older than ``LIFECYCLE_LATE_COMMIT_SECONDS`` is taken as an id that
    was never committed (a rolled-back transaction), and passed.
    """
    margin = settings.LIFECYCLE_LATE_COMMIT_SECONDS
    now = timezone.now()
    # A cursor never set (a policy made without a review) waits for nothing before the first event.
    expected = start + 1 if start else (events[0].pk if events else 0)
    for index, event in enumerate(events):
        if event.pk != expected and (now - event.occurred_at).total_seconds() < margin:
            return events[:index]
        expected = event.pk + 1
    return events


def reviewed_up_to(policy: LifecyclePolicy) -> int:
    """Where a review leaves the cursor: at the newest event (the review covered what came
    before). An event still uncommitted below it is the one case a review can pass over; its
    person is evaluated again at their next event or review."""
    newest = IdentityEvent.objects.order_by("-pk").values_list("pk", flat=True).first()
    return max(newest or 0, policy.event_cursor)


def policy_problem_record(policy: LifecyclePolicy, problem: str) -> None:
    from console.audit.services import audit_record

    audit_record(verb="lifecycle.refused", target=policy.integration, details={"problem": problem})


def burst_settling() -> float:
    """Seconds to wait before consuming, while events are still arriving; 0 to go ahead.

    The consumer waits until no event has come for ``LIFECYCLE_SETTLE_SECONDS``, but never
    longer than ``LIFECYCLE_SETTLE_MAX_SECONDS`` after the first event still to do, nor once a
    whole pass (``LIFECYCLE_EVENT_BATCH``) waits.
    """
    cursors = LifecyclePolicy.objects.exclude(mode=PolicyMode.OFF).values_list("event_cursor", flat=True)
    if not cursors:
        return 0
    pending = IdentityEvent.objects.filter(pk__gt=min(cursors)).order_by("pk")
    first = pending.values_list("occurred_at", flat=True).first()
    if first is None:
        return 0
    newest = IdentityEvent.objects.order_by("-pk").values_list("occurred_at", flat=True).first() or first
    now = timezone.now()
    quiet = (now - newest).total_seconds()
    waited = (now - first).total_seconds()
    settle = settings.LIFECYCLE_SETTLE_SECONDS
    if quiet >= settle or waited >= settings.LIFECYCLE_SETTLE_MAX_SECONDS:
        return 0
    if pending[settings.LIFECYCLE_EVENT_BATCH - 1 : settings.LIFECYCLE_EVENT_BATCH].exists():
        return 0
    return max(0.1, min(settle - quiet, settings.LIFECYCLE_SETTLE_MAX_SECONDS - waited))


def policies_consume() -> int:
    """Every policy that is not off, until each has caught up (or a pass's worth, per call)."""
    taken = 0
    for policy_id in LifecyclePolicy.objects.exclude(mode=PolicyMode.OFF).values_list("pk", flat=True):
        while True:
            count = policy_consume(policy_id)
            taken += count
            if count < settings.LIFECYCLE_EVENT_BATCH:
                break
    return taken


def policy_review(policy: LifecyclePolicy) -> dict[str, int]:
    """Apply the policy to everyone it concerns now: the people in scope, and leavers who still
    hold an active account in the integration. Run when a policy is turned on or to simulate
    (the cursor then starts at the newest event: what came before is covered by this review).

    Simulating, the recorded plan is replaced by this one; on, the actions are asked for.
    """
    from django.db.models import Q

    from integrations.models import TargetUser
    from lifecycle.engine import wanted_apply, wanted_for
    from lifecycle.models import PlannedChange
    from lifecycle.scope import people_in_scope

    if policy.mode == PolicyMode.OFF:
        return {}
    in_scope = set(people_in_scope(policy).values_list("pk", flat=True))
    leavers = set(
        TargetUser.objects.filter(integration=policy.integration, active=True, removed_at__isnull=True)
        .filter(Q(owner__is_active=False) | Q(owner__removed_at__isnull=False))
        .values_list("owner_id", flat=True)
    )
    with transaction.atomic():
        newest = reviewed_up_to(policy)
        LifecyclePolicy.objects.filter(pk=policy.pk).update(event_cursor=newest)
        policy.event_cursor = newest
        if policy.mode == PolicyMode.SIMULATE:
            PlannedChange.objects.filter(policy=policy).delete()
        return wanted_apply(policy, wanted_for(policy, in_scope | leavers))
