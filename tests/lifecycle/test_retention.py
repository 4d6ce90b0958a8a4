"""Leavers' accounts are deleted after the policy's retention, through the approval policy."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from integrations.models import Integration, TargetGroup
from lifecycle.consumer import policy_consume
from lifecycle.models import LifecyclePolicy
from lifecycle.retention import leavers_delete_due
from provisioning.models import Action, ActionState, ActionType
from tests.lifecycle.conftest import push_user, set_active
from tests.provisioning.conftest import run_action
from tests.scim.conftest import ScimClient
from tests.scim_peer import Peer


def _leaver_deprovisioned(app: Integration, scim: ScimClient, policy: LifecyclePolicy) -> Action:
    ada = push_user(scim, "ada@example.com")
    policy_consume(policy.pk)
    run_action(Action.objects.get(integration=app, action_type=ActionType.SYNC_IDENTITIES))
    set_active(scim, ada, False)
    policy_consume(policy.pk)
    deprovision = run_action(Action.objects.get(integration=app, action_type=ActionType.DEPROVISION_IDENTITY))
    assert deprovision.state == ActionState.SUCCEEDED, deprovision.last_error
    return deprovision


def test_after_the_retention_the_account_is_deleted_through_approval(
    peer: Peer, app: Integration, scim: ScimClient, groups_in_app: dict[str, TargetGroup], policy_on: LifecyclePolicy
) -> None:
    app.supports_hard_delete = True
    app.save()
    deprovision = _leaver_deprovisioned(app, scim, policy_on)
    assert leavers_delete_due() == 0  # not yet: 30 days by default
    Action.objects.filter(pk=deprovision.pk).update(finished_at=timezone.now() - timedelta(days=31))
    assert leavers_delete_due() == 1
    delete = Action.objects.get(integration=app, action_type=ActionType.DELETE_IDENTITY)
    assert delete.state == ActionState.PENDING_APPROVAL  # a delete waits for approval by default
    assert delete.cause["text"].startswith("Retention: ada@example.com left, and 30 days have passed")
    assert delete.target_user_id == deprovision.target_user_id
    assert leavers_delete_due() == 0  # asked once


def test_no_delete_without_hard_delete_or_with_retention_never(
    app: Integration, scim: ScimClient, groups_in_app: dict[str, TargetGroup], policy_on: LifecyclePolicy
) -> None:
    deprovision = _leaver_deprovisioned(app, scim, policy_on)
    Action.objects.filter(pk=deprovision.pk).update(finished_at=timezone.now() - timedelta(days=400))
    assert leavers_delete_due() == 0  # the integration does not allow hard delete
    app.supports_hard_delete = True
    app.save()
    policy_on.retention_days = None
    policy_on.save()
    assert leavers_delete_due() == 0  # never
    assert not Action.objects.filter(action_type=ActionType.DELETE_IDENTITY).exists()


def test_a_person_deleted_over_scim_is_a_leaver(
    peer: Peer, app: Integration, scim: ScimClient, groups_in_app: dict[str, TargetGroup], policy_on: LifecyclePolicy
) -> None:
    ada = push_user(scim, "ada@example.com")
    policy_consume(policy_on.pk)
    run_action(Action.objects.get(integration=app, action_type=ActionType.SYNC_IDENTITIES))
    assert scim.delete(f"Users/{ada['id']}").status_code == 204
    policy_consume(policy_on.pk)
    deprovision = Action.objects.get(integration=app, action_type=ActionType.DEPROVISION_IDENTITY)
    assert deprovision.cause["text"].startswith("Leaver: ada@example.com was deleted over SCIM")
    assert run_action(deprovision).state == ActionState.SUCCEEDED
