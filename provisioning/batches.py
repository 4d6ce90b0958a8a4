"""Bulk actions: one action per target, grouped in a batch with its own progress.

A batch that would deprovision or delete more accounts than the integration's mass-change
limits (a number, and a share of its users) waits whole for approval. *Undo* makes the
inverse actions where one exists: a deprovision is undone by reactivating the account and
putting its memberships back; a membership change by the opposite change.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.db import transaction
from django.db.models import Count, Min, Q, QuerySet
from django.http import HttpRequest
from rest_framework.request import Request

from console.accounts.models import Person
from console.audit.services import audit_record
from integrations.models import Integration, TargetUser
from provisioning.action_types import KINDS, action_type_of
from provisioning.errors import ActionRefused
from provisioning.models import Action, ActionState, Batch
from provisioning.services import (
    ActionTarget,
    Cause,
    action_approve,
    action_reject,
    action_request,
    actions_create,
    actions_sent_together,
    actions_validate,
    approval_required,
    require_an_approver,
)

MAX_BATCH = 10_000


def mass_change_reason(integration: Integration, action_type: str, count: int) -> str:
    """Why a batch of this size must wait whole for approval, or ``""``."""
    kind = KINDS.get(action_type)
    verb = kind.mass_change_verb if kind is not None else ""
    if not verb:
        return ""
    accounts = integration.target_users.filter(removed_at__isnull=True).count()
    share = 100 * count / accounts if accounts else 100
    if count > integration.mass_change_max_accounts:
        return (
            f"mass change: would {verb} {count} accounts, more than the limit of {integration.mass_change_max_accounts}"
        )
    if share > integration.mass_change_max_percent:
        return (
            f"mass change: would {verb} {count} of {accounts} accounts ({share:.0f} %), more than "
            f"{integration.mass_change_max_percent} %"
        )
    return ""


def batch_request(
    *,
    actor: Person | None,
    integration: Integration,
    action_type: str,
    target_users: list[TargetUser] | None = None,
    people: list[Person] | None = None,
    request: HttpRequest | Request | None = None,
    reason: str = "",
    causes: dict[int, Cause] | None = None,
    hold: str = "",
) -> Batch:
    """One action for each account (or person), in one batch. All are checked before any is made.

    ``causes``: why each automated action exists, by the account's (or person's) key; ``hold``:
    why the batch waits whole for approval whatever its size (the mass-change check of a burst
    that arrived in several batches).
    """
    causes = causes or {}
    targets: list[tuple[Person | None, TargetUser | None]] = [(None, u) for u in target_users or []] + [
        (p, None) for p in people or []
    ]
    if not targets:
        raise ActionRefused("Select at least one account or person.", "targets")
    if len(targets) > MAX_BATCH:
        raise ActionRefused(f"At most {MAX_BATCH} at once.", "targets")
    subjects = [
        ActionTarget(person=person, target_user=user, cause=_cause_of(causes, person, user)) for person, user in targets
    ]
    checked = actions_validate(integration=integration, action_type=action_type, targets=subjects)
    problems = [
        f"{subject.name}: {result}"
        for subject, result in zip(subjects, checked, strict=True)
        if isinstance(result, ActionRefused)
    ]
    if problems:
        raise ActionRefused("Nothing was requested. " + " ".join(problems[:10]), "targets")
    hold = hold or mass_change_reason(integration, action_type, len(targets))
    needs_approval = bool(hold) or approval_required(integration, action_type)
    if needs_approval and actor is not None:  # see action_request
        require_an_approver(actor, integration, action_type, hold)
    with transaction.atomic(), actions_sent_together():
        batch = Batch.objects.create(
            integration=integration, action_type=action_type, requested_by=actor, held_reason=hold
        )
        actions_create(
            actor=actor,
            integration=integration,
            action_type=action_type,
            targets=[
                (subject, result)
                for subject, result in zip(subjects, checked, strict=True)
                if not isinstance(result, ActionRefused)  # none is, by now
            ],
            needs_approval=needs_approval,
            request=request,
            batch=batch,
            hold=hold,
            reason=reason,
        )
        audit_record(
            verb="batch.requested",
            actor=actor,
            target=batch,
            request=request,
            details={
                "type": action_type,
                "count": len(targets),
                **({"held": hold} if hold else {}),
                **({"reason": reason} if reason else {}),
            },
        )
    return batch


def _cause_of(causes: dict[int, Cause], person: Person | None, user: TargetUser | None) -> Cause | None:
    return causes.get(user.pk if user is not None else person.pk if person is not None else 0)


def batch_progress(batch: Batch) -> dict[str, Any]:
    counts = Counter(batch.actions.values_list("state", flat=True))
    total = sum(counts.values())
    finished = sum(
        counts[s] for s in (ActionState.SUCCEEDED, ActionState.FAILED, ActionState.REJECTED, ActionState.CANCELLED)
    )
    return {
        "total": total,
        "finished": finished,
        "percent": round(100 * finished / total) if total else 100,
        "by_state": {state.value: counts.get(state.value, 0) for state in ActionState},
        "done": finished == total,
    }


def batch_rejection(batch: Batch) -> dict[str, Any] | None:
    """Who rejected the batch's actions, when and why (the latest rejection), or ``None``.

    A batch is rejected as its actions are: each keeps its decider and reason.
    """
    rejected = batch.actions.filter(state=ActionState.REJECTED)
    latest = rejected.select_related("decided_by").order_by("-finished_at", "-id").first()
    if latest is None:
        return None
    return {
        "by": latest.decided_by.username if latest.decided_by else None,
        "reason": latest.decision_comment,
        "at": latest.finished_at,
        "actions": rejected.count(),
    }


def actions_awaiting_decision() -> QuerySet[Action]:
    """Pending actions decided one by one: those of a held batch are decided with their batch."""
    return Action.objects.filter(state=ActionState.PENDING_APPROVAL).exclude(batch__held_reason__gt="")


def held_batches_awaiting_decision(*, only_pending: bool = True) -> QuerySet[Batch]:
    """Batches held whole for a mass change, with ``pending`` (actions still waiting), ``total``
    and ``expires`` (the earliest expiry of those waiting), oldest first."""
    waiting = Q(actions__state=ActionState.PENDING_APPROVAL)
    batches = (
        Batch.objects.filter(held_reason__gt="")
        .annotate(pending=Count("actions", filter=waiting), total=Count("actions"))
        .annotate(expires=Min("actions__expires_at", filter=waiting))
        .select_related("integration", "requested_by")
        .order_by("created_at", "id")
    )
    return batches.filter(pending__gt=0) if only_pending else batches


def batch_approve(*, actor: Person, batch: Batch, comment: str = "", request: Any = None) -> int:
    """Approve every action of the batch that waits (the whole of a held batch at once)."""
    if batch.requested_by_id == actor.pk:
        raise ActionRefused("You cannot approve your own request; another approver must.")
    approved = 0
    with transaction.atomic(), actions_sent_together():
        for action in batch.actions.filter(state=ActionState.PENDING_APPROVAL):
            action_approve(actor=actor, action=action, comment=comment, request=request)
            approved += 1
    return approved


def batch_reject(*, actor: Person, batch: Batch, comment: str, request: Any = None) -> int:
    if batch.requested_by_id == actor.pk:
        raise ActionRefused("You cannot decide your own request; cancel it instead.")
    if not comment.strip():
        raise ActionRefused("Say why the batch is rejected.", "comment")
    rejected = 0
    with transaction.atomic(), actions_sent_together():
        for action in batch.actions.filter(state=ActionState.PENDING_APPROVAL):
            action_reject(actor=actor, action=action, comment=comment, request=request)
            rejected += 1
    return rejected


def batch_undo(*, actor: Person, batch: Batch, request: Any = None, reason: str = "") -> Batch:
    """A new batch with the inverse of every succeeded action of ``batch`` that has one.

    Once only: a second undo would put back what the first already did. An undo whose every
    action was rejected or cancelled did nothing, so the batch may be undone again.
    """
    with transaction.atomic(), actions_sent_together():
        Batch.objects.select_for_update().filter(pk=batch.pk).first()  # two undos at once: one waits, then sees
        for earlier in batch.undone_by.order_by("id"):
            if set(earlier.actions.values_list("state", flat=True)) - {ActionState.REJECTED, ActionState.CANCELLED}:
                raise ActionRefused(f"Batch {batch.pk} was already undone by batch {earlier.pk}.")
        done = list(batch.actions.filter(state=ActionState.SUCCEEDED).select_related("target_user", "target_group"))
        inverses = [inverse for action in done for inverse in action_type_of(action.action_type).inverse(action)]
        if not inverses:
            raise ActionRefused("Nothing in this batch can be undone (no succeeded deprovision or membership change).")
        undo = Batch.objects.create(
            integration=batch.integration,
            action_type=inverses[0]["action_type"],
            requested_by=actor,
            undo_of=batch,
        )
        for inverse in inverses:
            action_request(
                actor=actor, integration=batch.integration, batch=undo, request=request, reason=reason, **inverse
            )
        audit_record(
            verb="batch.undo_requested",
            actor=actor,
            target=batch,
            request=request,
            details={"undo_batch": undo.pk, "actions": len(inverses), **({"reason": reason} if reason else {})},
        )
    return undo
