"""Delete identity: an account deleted from the application for good.

Only where the integration allows hard delete (checked when requested, and again when it
runs: the setting may have changed). An account already gone counts as deleted. It needs
approval unless a policy says otherwise (``approval_by_default`` in ``KIND``),
and has no undo.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from console.accounts.models import Person
from integrations.history import accounts_changed, memberships_removed
from integrations.models import ChangeSource, Integration, TargetGroup, TargetMembership, TargetUser
from integrations.scim_client import ScimClient, ScimNotFound
from provisioning.action_types.base import ActionKind, NoLongerAllowed, Run, account_to_remove, users_endpoint
from provisioning.dry_run import PlannedRequest, rehearse, with_user_names
from provisioning.errors import require
from provisioning.models import Action, ActionType


def validate(
    *,
    integration: Integration,
    person: Person | None,
    target_user: TargetUser | None,
    target_group: TargetGroup | None,
    parameters: dict[str, Any],
) -> tuple[str, dict[str, Any]]:
    """An account still in the application, of an integration that allows hard delete."""
    subject, clean = account_to_remove(target_user)
    require(
        integration.supports_hard_delete,
        f"{integration.name} does not allow hard delete: deprovision the account instead.",
        "action_type",
    )
    return subject, clean


def execute(action: Action, scim: ScimClient, run: Run) -> dict[str, Any]:
    integration = action.integration
    if not integration.supports_hard_delete:
        raise NoLongerAllowed(f"{integration.name} no longer allows hard delete: deprovision the account instead.")
    user_id = action.parameters["user_id"]
    try:
        scim.request("DELETE", f"{users_endpoint(integration)}/{user_id}")
        outcome = "deleted"
    except ScimNotFound:
        outcome = "already gone"

    def remove() -> None:
        # Both kept in the access history, with this action.
        memberships_removed(
            TargetMembership.objects.filter(integration=integration, member_remote_id=user_id),
            source=ChangeSource.ACTION,
            action_id=action.pk,
        )
        accounts = TargetUser.objects.filter(integration=integration, remote_id=user_id)
        accounts_changed(
            accounts,
            lambda: accounts.update(removed_at=timezone.now()),
            integration_id=integration.pk,
            source=ChangeSource.ACTION,
            action_id=action.pk,
        )

    run.update_picture(remove)
    return {"operation": outcome, "id": user_id}


def plan(integration: Integration, parameters: dict[str, Any]) -> list[PlannedRequest]:
    """The DELETE of the account, named."""
    done = rehearse(integration, ActionType.DELETE_IDENTITY, parameters, execute)
    return done.steps(with_user_names(integration, done.writes))


def inverse(action: Action) -> list[dict[str, Any]]:
    """None: a deleted account cannot be brought back."""
    return []


KIND = ActionKind(
    action_type=ActionType.DELETE_IDENTITY,
    validate=validate,
    execute=execute,
    plan=plan,
    inverse=inverse,
    mass_change_verb="delete",
    priority=3,
    approval_by_default=True,
)
