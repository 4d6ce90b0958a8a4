"""Access requests: ask that an account join or leave a group, with a justification.

An approver (not the requester) decides; approval makes the MANAGE_RELATIONSHIPS action,
and the requester follows the request's state, then the action's.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from console.accounts.models import Person
from console.accounts.permissions import Perm
from console.audit.services import audit_record
from integrations.models import TargetGroup, TargetMembership, TargetUser
from provisioning.errors import ActionRefused
from provisioning.models import AccessRequest, ActionState, ActionType
from provisioning.services import action_approve, action_request, require_an_approver


def access_request_create(
    *,
    actor: Person,
    target_user: TargetUser,
    target_group: TargetGroup,
    operation: str,
    justification: str,
    request: Any = None,
) -> AccessRequest:
    if target_user.integration_id != target_group.integration_id:
        raise ActionRefused("The account and the group are in different integrations.", "target_group")
    integration = target_group.integration
    if not integration.provisioning_enabled:
        raise ActionRefused(f"Provisioning is not enabled for {integration.name}.", "target_group")
    if operation not in AccessRequest.Operation.values:
        raise ActionRefused("Choose add or remove.", "operation")
    if not justification.strip():
        raise ActionRefused("Say why the access is needed.", "justification")
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
        )
        audit_record(
            verb="access_request.created",
            actor=actor,
            target=access,
            request=request,
            details={"operation": operation, "user": target_user.user_name, "group": target_group.display_name},
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
    """Approve, and make the action that carries the request out."""
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
