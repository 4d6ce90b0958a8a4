"""Leavers' accounts are deleted once their policy's retention has passed.

Only where the integration allows hard delete, only for accounts whose owner is still gone,
and through the integration's approval policy (a delete waits for approval by default).
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from lifecycle.models import LifecyclePolicy, PolicyMode
from provisioning.errors import ActionRefused
from provisioning.models import Action, ActionState, ActionType
from provisioning.services import Cause, action_request

BATCH = 200


def leavers_delete_due() -> int:
    """Request the deletes that have come due; returns how many were requested."""
    from integrations.models import TargetUser

    requested = 0
    now = timezone.now()
    policies = LifecyclePolicy.objects.filter(
        mode=PolicyMode.ON, retention_days__isnull=False, integration__supports_hard_delete=True
    ).select_related("integration")
    for policy in policies:
        integration = policy.integration
        cutoff = now - timedelta(days=policy.retention_days or 0)
        deprovisioned = Action.objects.filter(
            target_user=OuterRef("pk"),
            action_type=ActionType.DEPROVISION_IDENTITY,
            state=ActionState.SUCCEEDED,
            finished_at__lte=cutoff,
        )
        any_delete = Action.objects.filter(target_user=OuterRef("pk"), action_type=ActionType.DELETE_IDENTITY).exclude(
            state__in=[ActionState.FAILED, ActionState.REJECTED, ActionState.CANCELLED]
        )
        due = (
            TargetUser.objects.filter(integration=integration, removed_at__isnull=True, active=False)
            .filter(Q(owner__is_active=False) | Q(owner__removed_at__isnull=False))
            .filter(Exists(deprovisioned))
            .exclude(Exists(any_delete))
            .select_related("owner")[:BATCH]
        )
        for account in due:
            owner = account.owner
            try:
                action_request(
                    actor=None,
                    integration=integration,
                    action_type=ActionType.DELETE_IDENTITY,
                    target_user=account,
                    cause=Cause(
                        text=(
                            f"Retention: {owner.username if owner else 'the owner'} left, and "
                            f"{policy.retention_days} days have passed since the account was deprovisioned"
                        ),
                        policy_id=policy.pk,
                    ),
                )
            except ActionRefused:
                continue  # e.g. no approver: shown by the approval panel; tried again next time
            requested += 1
    return requested
