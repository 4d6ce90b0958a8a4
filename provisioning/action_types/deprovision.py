"""Deprovision identity: a leaver's account made inactive, and taken out of every group.

The account is deactivated first (PATCH replace ``active``, else PUT), then removed from
each group that holds it: those of the console's picture, and those the application says
hold it now (a membership added since the last extraction is not left behind). Leavers
go first (``KIND``: the first priority, their own queue, an integration's last free slot).
Undone by reactivating the account and putting its memberships back.
"""

from __future__ import annotations

import contextlib
from typing import Any

from console.accounts.models import Person
from integrations import dialect
from integrations.models import Integration, TargetGroup, TargetMembership, TargetUser
from integrations.scim_client import ScimBadRequest, ScimBadResponse, ScimClient, ScimNotFound, escape_filter_value
from provisioning.action_types.base import ActionKind, Run, account_to_remove, groups_endpoint, users_endpoint
from provisioning.dialect_forms import member_values, remove_members, set_active
from provisioning.dry_run import PlannedRequest, members_label, rehearse, user_names, with_user_names
from provisioning.lookups import cannot_filter
from provisioning.models import Action, ActionType


def validate(
    *,
    integration: Integration,
    person: Person | None,
    target_user: TargetUser | None,
    target_group: TargetGroup | None,
    parameters: dict[str, Any],
) -> tuple[str, dict[str, Any]]:
    """An account still in the application."""
    return account_to_remove(target_user)


def execute(action: Action, scim: ScimClient, run: Run) -> dict[str, Any]:
    integration = action.integration
    user_id = action.parameters["user_id"]
    set_active(scim, f"{users_endpoint(integration)}/{user_id}", False)
    memberships = TargetMembership.objects.filter(integration=integration, member_remote_id=user_id)
    known = list(memberships.values_list("group__remote_id", flat=True))
    (reference,) = member_values(scim, [user_id], users_endpoint(integration))
    # The application may have added memberships since the last extraction: ask it too,
    # so a leaver keeps no group the console has not seen yet.
    current = _groups_holding(action, scim, reference, known)
    removed_from = []
    for group_id in dict.fromkeys([*known, *(current or [])]):
        with contextlib.suppress(ScimNotFound):  # the group is gone already
            remove_members(scim, f"{groups_endpoint(integration)}/{group_id}", [reference])
        removed_from.append(group_id)

    def deactivate() -> None:
        memberships.delete()
        TargetUser.objects.filter(integration=integration, remote_id=user_id).update(active=False)
        for group in TargetGroup.objects.filter(integration=integration, remote_id__in=removed_from):
            TargetGroup.objects.filter(pk=group.pk).update(member_count=group.memberships.count())

    run.update_picture(deactivate)
    # What undo needs: reactivate, and put the memberships back.
    return {"deactivated": user_id, "removed_from_groups": removed_from}


def _groups_holding(action: Action, scim: ScimClient, reference: str, known: list[str]) -> list[str] | None:
    """Ids of the groups the application says hold ``reference``; None where it cannot say.

    Filtering on members is optional in SCIM, so a refusal, a missing Groups endpoint or an
    answer that is not SCIM leaves the console's picture (``known``) to stand, and so does a
    server that ignores the filter (it answers a group that does not list the member, or
    every group the console knows of).
    """
    integration = action.integration
    if cannot_filter(integration) or dialect.refused(integration, "filter_members"):
        return None
    groups_path = groups_endpoint(integration)
    query = {"filter": f"members.value eq {escape_filter_value(reference)}"}
    trusted = dialect.value(integration, "filter_members") is True
    if trusted:  # known to filter: the members themselves need not come (a group may hold 50,000)
        query["excludedAttributes"] = "members"
    try:
        groups = [
            resource
            for page in scim.pages(groups_path, params=query)
            for resource in page
            if isinstance(resource, dict) and resource.get("id")
        ]
    except (ScimBadRequest, ScimNotFound, ScimBadResponse) as refusal:
        if isinstance(refusal, ScimBadRequest):
            scim.learn("filter_members", False, f"{groups_path}: {refusal}")
        return None
    listed = [g for g in groups if isinstance(g.get("members"), list)]
    if any(all(str(m.get("value")) != reference for m in g["members"] if isinstance(m, dict)) for g in listed):
        scim.learn("filter_members", False, f"{groups_path}: answered groups that do not hold the member")
        return None
    if not trusted and listed and len(listed) == len(groups):  # each group it answered holds the member
        scim.learn("filter_members", True, f"{groups_path}: answered only groups that hold the member")
    every_group = TargetGroup.objects.filter(integration=integration, removed_at__isnull=True).count()
    if len(known) < every_group <= len(groups):
        return None
    return [str(g["id"]) for g in groups]


def plan(integration: Integration, parameters: dict[str, Any]) -> list[PlannedRequest]:
    """The account's deactivation, then its removal from each group, named (the look-ups aside)."""
    done = rehearse(integration, ActionType.DEPROVISION_IDENTITY, parameters, execute)
    user_id = str(parameters["user_id"])
    names = user_names(integration, [user_id])
    groups_path = groups_endpoint(integration) + "/"
    writes = with_user_names(integration, done.writes, names)
    group_ids = [w.path.removeprefix(groups_path) for w in writes if w.path.startswith(groups_path)]
    group_names = (
        dict(
            TargetGroup.objects.filter(integration=integration, remote_id__in=group_ids).values_list(
                "remote_id", "display_name"
            )
        )
        if group_ids
        else {}
    )
    for write in writes:
        if write.path.startswith(groups_path):
            name = group_names.get(write.path.removeprefix(groups_path), "")
            write.label = members_label(name, "remove", [user_id], names)
    return done.steps(writes)


def inverse(action: Action) -> list[dict[str, Any]]:
    """The account reactivated, and put back in each group it was removed from."""
    if action.target_user is None:
        return []
    undo: list[dict[str, Any]] = [
        {
            "action_type": ActionType.SYNC_IDENTITIES,
            "target_user": action.target_user,
            "parameters": {"user": {"active": True}},
        }
    ]
    for group in TargetGroup.objects.filter(
        integration=action.integration, remote_id__in=action.result.get("removed_from_groups", [])
    ):
        undo.append(
            {
                "action_type": ActionType.MANAGE_RELATIONSHIPS,
                "target_group": group,
                "parameters": {"add": [action.target_user.remote_id]},
            }
        )
    return undo


KIND = ActionKind(
    action_type=ActionType.DEPROVISION_IDENTITY,
    validate=validate,
    execute=execute,
    plan=plan,
    inverse=inverse,
    mass_change_verb="deprovision",
    priority=1,
    leaver=True,
)
