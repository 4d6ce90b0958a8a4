"""Access requests: ask that an account join or leave a group, with a justification.

An approver (not the requester) decides; approval makes the MANAGE_RELATIONSHIPS action,
and the requester follows the request's state, then the action's.

Access added may carry an end date. When it comes, beat ends the request: one conditional
update claims it (``approved`` → ``ended``) and, in the same transaction, requests the
MANAGE_RELATIONSHIPS action that removes the membership, so two runs at once end it once
and a crash before the commit leaves it due for the next run. The approver agreed to the
end date when approving, so where the integration's policy wants approval for member
changes the removal is approved in their name at once; an admin who ends access early makes
a new decision, and their removal follows the policy like any request.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from console.accounts.models import Person
from console.accounts.permissions import Perm
from console.audit.services import audit_record
from console.core.display import when_text
from console.core.errors import ConsoleError
from integrations.models import TargetGroup, TargetMembership, TargetUser
from provisioning.errors import ActionRefused, require
from provisioning.models import FINISHED, AccessRequest, Action, ActionState, ActionType
from provisioning.services import action_approve, action_request, action_transition, require_an_approver

logger = logging.getLogger(__name__)


def end_date_check(ends_at: datetime, *, now: datetime | None = None) -> None:
    """Refuse an end that is not in the future, or further ahead than ``ACCESS_REQUEST_MAX_DAYS``."""
    now = now or timezone.now()
    require(ends_at > now, "The end must be in the future.", "ends_at")
    days = settings.ACCESS_REQUEST_MAX_DAYS
    latest = now + timedelta(days=days)
    require(ends_at <= latest, f"The end must be within {days} days, by {when_text(latest)}.", "ends_at")


def access_request_create(
    *,
    actor: Person,
    target_user: TargetUser,
    target_group: TargetGroup,
    operation: str,
    justification: str,
    ends_at: datetime | None = None,
    request: Any = None,
) -> AccessRequest:
    """Ask for the change; access added may end at ``ends_at`` (in the future, within the maximum)."""
    if target_user.integration_id != target_group.integration_id:
        raise ActionRefused("The account and the group are in different integrations.", "target_group")
    integration = target_group.integration
    if not integration.provisioning_enabled:
        raise ActionRefused(f"Provisioning is not enabled for {integration.name}.", "target_group")
    if operation not in AccessRequest.Operation.values:
        raise ActionRefused("Choose add or remove.", "operation")
    if not justification.strip():
        raise ActionRefused("Say why the access is needed.", "justification")
    if ends_at is not None:
        require(operation == AccessRequest.Operation.ADD, "Only access added can end: leave the end empty.", "ends_at")
        end_date_check(ends_at)
    member = TargetMembership.objects.filter(group=target_group, member_remote_id=target_user.remote_id).exists()
    if operation == AccessRequest.Operation.ADD and member:
        raise ActionRefused(f"{target_user.user_name} is in {target_group.display_name} already.", "target_group")
    if operation == AccessRequest.Operation.REMOVE and not member:
        raise ActionRefused(f"{target_user.user_name} is not in {target_group.display_name}.", "target_group")
    if AccessRequest.objects.filter(
        target_user=target_user, target_group=target_group, operation=operation, state=AccessRequest.State.PENDING
    ).exists():
        raise ActionRefused("The same request is pending already.", "target_group")
    require_an_approver(actor, integration, ActionType.MANAGE_RELATIONSHIPS)
    with transaction.atomic():
        access = AccessRequest.objects.create(
            integration=integration,
            target_user=target_user,
            target_group=target_group,
            operation=operation,
            justification=justification.strip(),
            requested_by=actor,
            ends_at=ends_at,
        )
        audit_record(
            verb="access_request.created",
            actor=actor,
            target=access,
            request=request,
            details={
                "operation": operation,
                "user": target_user.user_name,
                "group": target_group.display_name,
                **({"ends_at": ends_at.isoformat()} if ends_at else {}),
            },
        )
    return access


def _decide(access: AccessRequest, actor: Person, state: str, comment: str) -> None:
    if not actor.has_console_permission(Perm.APPROVE):
        raise ActionRefused("Only approvers (admins) decide access requests.")
    if access.requested_by_id == actor.pk:
        raise ActionRefused("You cannot decide your own request; another approver must.")
    moved = AccessRequest.objects.filter(pk=access.pk, state=AccessRequest.State.PENDING).update(
        state=state, decided_by=actor, decision_comment=comment, decided_at=timezone.now()
    )
    if not moved:
        access.refresh_from_db()
        raise ActionRefused(f"The request is {access.get_state_display().lower()} already.")
    access.refresh_from_db()


def access_request_approve(
    *, actor: Person, access: AccessRequest, comment: str = "", request: Any = None
) -> AccessRequest:
    """Approve, and make the action that carries the request out (and, with it, agree to its end date)."""
    if access.ends_at is not None and access.ends_at <= timezone.now():
        raise ActionRefused(
            f"Its end ({when_text(access.ends_at)}) has passed: the access would end before it began. "
            "Reject it; the requester can ask again with a later end."
        )
    with transaction.atomic():
        _decide(access, actor, AccessRequest.State.APPROVED, comment)
        action = action_request(
            actor=access.requested_by,
            integration=access.integration,
            action_type="MANAGE_RELATIONSHIPS",
            target_group=access.target_group,
            parameters={access.operation: [access.target_user.remote_id]},
            request=request,
        )
        if action.state == ActionState.PENDING_APPROVAL:  # the decision was the approval
            action = action_approve(actor=actor, action=action, comment=f"access request {access.pk}")
        access.action = action
        access.save(update_fields=["action"])
        audit_record(
            verb="access_request.approved",
            actor=actor,
            target=access,
            request=request,
            details={"action": action.pk, **({"comment": comment} if comment else {})},
        )
    return access


def access_request_reject(*, actor: Person, access: AccessRequest, comment: str, request: Any = None) -> AccessRequest:
    if not comment.strip():
        raise ActionRefused("Say why the request is rejected.", "comment")
    with transaction.atomic():
        _decide(access, actor, AccessRequest.State.REJECTED, comment)
        audit_record(
            verb="access_request.rejected", actor=actor, target=access, request=request, details={"comment": comment}
        )
    return access


def access_request_cancel(*, actor: Person, access: AccessRequest, request: Any = None) -> AccessRequest:
    if access.requested_by_id != actor.pk and not actor.has_console_permission(Perm.APPROVE):
        raise ActionRefused("Only the requester or an approver cancels a request.")
    moved = AccessRequest.objects.filter(pk=access.pk, state=AccessRequest.State.PENDING).update(
        state=AccessRequest.State.CANCELLED, decided_at=timezone.now()
    )
    if not moved:
        raise ActionRefused(f"The request is {access.get_state_display().lower()} already.")
    audit_record(verb="access_request.cancelled", actor=actor, target=access, request=request)
    access.refresh_from_db()
    return access


def access_requests_due(*, now: datetime, limit: int) -> list[int]:
    """Approved requests whose end has come and whose addition has finished, the oldest end first.

    One bounded look-up along ``access_request_due_idx``. A request whose addition is still on
    its way waits, so the removal never overtakes it.
    """
    due = AccessRequest.objects.filter(state=AccessRequest.State.APPROVED, ends_at__lte=now).filter(
        Q(action__isnull=True) | Q(action__state__in=FINISHED)
    )
    return list(due.order_by("ends_at", "id").values_list("pk", flat=True)[:limit])


def access_requests_end_due() -> int:
    """Beat: end every request whose end has come; how many this run ended.

    A removal that cannot be requested now (the integration is disabled, say) leaves the
    request approved and due, saying why, and the next run tries again.
    """
    now = timezone.now()
    ended = 0
    for pk in access_requests_due(now=now, limit=settings.ACCESS_REQUEST_END_BATCH):
        try:
            if _end(pk, actor=None, now=now) is not None:
                ended += 1
        except ConsoleError as error:
            logger.warning("access request end refused", extra={"access_request": pk, "reason": error.message})
            AccessRequest.objects.filter(pk=pk, state=AccessRequest.State.APPROVED).update(
                end_note=f"The removal could not be requested: {error.message} Beat tries again every minute."
            )
    return ended


def access_request_end(*, actor: Person, access: AccessRequest, reason: str = "", request: Any = None) -> AccessRequest:
    """An admin ends approved access now, before its end date (or access that had none).

    Their removal is a new decision: where the integration's policy wants approval for member
    changes it waits for another approver, as any request of theirs would.
    """
    require(actor.has_console_permission(Perm.APPROVE), "Only approvers (admins) end access.")
    require(access.operation == AccessRequest.Operation.ADD, "Only access added can end.")
    require(
        access.state == AccessRequest.State.APPROVED,
        f"Only approved access can end; this request is {access.get_state_display().lower()}.",
    )
    adding = access.action
    require(
        adding is None or adding.state in FINISHED,
        f"The addition (action {adding.pk if adding else ''}) has not finished: end the access once it has.",
    )
    ended = _end(access.pk, actor=actor, now=timezone.now(), reason=reason, request=request)
    if ended is None:
        access.refresh_from_db()
        raise ActionRefused(f"The request changed meanwhile: it is now {access.get_state_display().lower()}.")
    return ended


def access_request_extend(
    *, actor: Person, access: AccessRequest, ends_at: datetime, request: Any = None
) -> AccessRequest:
    """An admin (not the requester) moves an approved request's end later."""
    require(actor.has_console_permission(Perm.APPROVE), "Only approvers (admins) extend access.")
    require(access.requested_by_id != actor.pk, "You cannot extend your own access; another approver must.")
    require(
        access.state == AccessRequest.State.APPROVED and access.ends_at is not None,
        "Only approved access with an end date can be extended.",
    )
    before = access.ends_at
    assert before is not None
    require(
        ends_at > before,
        f"The new end must be later than the current one ({when_text(before)}); to end the access sooner, end it now.",
        "ends_at",
    )
    end_date_check(ends_at)
    with transaction.atomic():
        moved = AccessRequest.objects.filter(pk=access.pk, state=AccessRequest.State.APPROVED, ends_at=before).update(
            ends_at=ends_at, end_note=""
        )
        if not moved:
            access.refresh_from_db()
            raise ActionRefused(f"The request changed meanwhile: it is now {access.get_state_display().lower()}.")
        audit_record(
            verb="access_request.extended",
            actor=actor,
            target=access,
            request=request,
            before={"ends_at": before.isoformat()},
            after={"ends_at": ends_at.isoformat()},
        )
    access.refresh_from_db()
    return access


def _end(
    pk: int, *, actor: Person | None, now: datetime, reason: str = "", request: Any = None
) -> AccessRequest | None:
    """Claim the request (``approved`` → ``ended``) and request the removal, in one transaction.

    ``actor`` is None when the end date has come (the claim then also wants it due). Whoever
    loses the claim gets ``None`` and does nothing.
    """
    claim = AccessRequest.objects.filter(pk=pk, state=AccessRequest.State.APPROVED, operation="add")
    if actor is None:
        claim = claim.filter(ends_at__lte=now)
    with transaction.atomic():
        if not claim.update(state=AccessRequest.State.ENDED, ended_at=now, ended_by=actor, end_note=""):
            return None
        access = AccessRequest.objects.select_related("integration", "target_user", "target_group", "decided_by").get(
            pk=pk
        )
        action, note = _removal(access, actor=actor, request=request)
        access.end_action, access.end_note = action, note
        access.save(update_fields=["end_action", "end_note"])
        audit_record(
            verb="access_request.ended" if actor else "access_request.expired",
            actor=actor,
            target=access,
            request=request,
            details={
                "ends_at": access.ends_at.isoformat() if access.ends_at else None,
                "action": action.pk if action else None,
                **({"note": note} if note else {}),
                **({"reason": reason} if reason else {}),
            },
        )
    return access


def _removal(access: AccessRequest, *, actor: Person | None, request: Any) -> tuple[Action | None, str]:
    """The action that removes the membership; or none, and why, when there is none to remove."""
    user, group, integration = access.target_user, access.target_group, access.integration
    if user.removed_at is not None:
        return None, f"the account {user.user_name} is gone from {integration.name}: no membership to remove."
    if group.removed_at is not None:
        return None, f"the group {group.display_name} is gone from {integration.name}: no membership to remove."
    if not TargetMembership.objects.filter(group=group, member_remote_id=user.remote_id).exists():
        return None, f"{user.user_name} was no longer in {group.display_name} (removed outside this request)."
    action = action_request(
        actor=actor,
        integration=integration,
        action_type=ActionType.MANAGE_RELATIONSHIPS,
        target_group=group,
        parameters={"remove": [user.remote_id]},
        request=request,
    )
    if actor is None and action.state == ActionState.PENDING_APPROVAL:
        # The approver agreed to the end date with the request: no second approval.
        approver = access.decided_by
        note = f"approved with access request {access.pk}, whose end date {approver or 'its approver'} agreed to"
        action_transition(action, ActionState.APPROVED, actor=approver, note=note, decided_by=approver)
        action = action_transition(action, ActionState.QUEUED, actor=approver, note="queued at the end date")
    return action, ""


def access_end_in_words(access: AccessRequest) -> str:
    """What becomes or became of the access's end, in the viewer's time zone; "" when it has none."""
    if access.state == AccessRequest.State.PENDING and access.ends_at:
        return f"Access would end on {when_text(access.ends_at)}."
    if access.state == AccessRequest.State.APPROVED and access.ends_at:
        if access.end_note:
            return f"Access was due to end on {when_text(access.ends_at)}. {access.end_note}"
        return f"Access ends on {when_text(access.ends_at)}: the membership will then be removed."
    if access.state != AccessRequest.State.ENDED:
        return ""
    early = f" (ended early by {access.ended_by.username})" if access.ended_by else ""
    action = access.end_action
    if action is None:
        return f"Access ended on {when_text(access.ended_at)}{early}: {access.end_note}"
    state = ActionState(action.state)
    if state == ActionState.SUCCEEDED:
        return f"Access ended on {when_text(action.finished_at)}{early}: membership removed by action {action.pk}."
    if state == ActionState.FAILED:
        return (
            f"Access was to end on {when_text(access.ended_at)}{early}, but removing the membership failed "
            f"(action {action.pk}): {action.last_error} Retry the action."
        )
    if state in {ActionState.REJECTED, ActionState.CANCELLED}:
        return (
            f"Access was to end on {when_text(access.ended_at)}{early}, but the removal (action {action.pk}) was "
            f"{state.label.lower()}: the membership stays."
        )
    return f"Access is ending{early}: the removal of the membership (action {action.pk}) is {state.label.lower()}."
