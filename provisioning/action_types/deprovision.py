"""Deprovision identity: a leaver's account made inactive, and taken out of every group.

The account is deactivated first (PATCH replace ``active``, else PUT), then removed from
each group that holds it: those of the console's picture, and those the application says
hold it now (a membership added since the last extraction is not left behind). Leavers
go first (``KIND``: the first priority, their own queue, an integration's last free slot).
Undone by reactivating the account and putting its memberships back.

Then the account is read back (``verify``): an application may answer 200 and change
nothing. The account must read inactive (or be gone), and out of each group it was removed
from; a mismatch fails the action with what the application still shows. What was found is
kept as the deprovision's revocation record (``provisioning/revocations.py``).
"""

from __future__ import annotations

import contextlib
from typing import Any

from django.db.models import Q

from console.accounts.models import Person
from integrations import dialect
from integrations.history import accounts_changed, memberships_removed
from integrations.models import ChangeSource, Integration, TargetGroup, TargetMembership, TargetUser
from integrations.scim_client import (
    ScimBadRequest,
    ScimBadResponse,
    ScimClient,
    ScimClientError,
    ScimNotFound,
    escape_filter_value,
)
from provisioning.action_types.base import ActionKind, Run, account_to_remove, groups_endpoint, users_endpoint
from provisioning.dialect_forms import member_values, remove_members, set_active
from provisioning.dry_run import PlannedRequest, members_label, rehearse, user_names, with_user_names
from provisioning.lookups import cannot_filter
from provisioning.models import Action, ActionType, Revocation
from provisioning.revocations import revocation_record


class RevocationNotVerified(ScimClientError):
    """The application accepted the deprovision, and reading the account back shows it was not made."""


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
    if dialect.value(integration, "member_reference") == "userName":
        # The picture holds each member by the name it had when extracted, tied to its account.
        account = TargetUser.objects.filter(integration=integration, remote_id=user_id).first()  # one: unique
        if account is not None:
            memberships = TargetMembership.objects.filter(
                Q(member_remote_id=user_id) | Q(user=account), integration=integration
            )
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
        # Both kept in the access history, with this action.
        memberships_removed(memberships, source=ChangeSource.ACTION, action_id=action.pk)
        accounts = TargetUser.objects.filter(integration=integration, remote_id=user_id)
        accounts_changed(
            accounts,
            lambda: accounts.update(active=False),
            integration_id=integration.pk,
            source=ChangeSource.ACTION,
            action_id=action.pk,
        )
        for group in TargetGroup.objects.filter(integration=integration, remote_id__in=removed_from):
            TargetGroup.objects.filter(pk=group.pk).update(member_count=group.memberships.count())

    run.update_picture(deactivate)
    outcome, reason = verify(scim, action, reference, removed_from)
    run.keep_record(lambda: revocation_record(action=action, outcome=outcome, reason=reason))
    if outcome == Revocation.Outcome.MISMATCH:
        raise RevocationNotVerified(reason)
    # What undo needs: reactivate, and put the memberships back.
    return {"deactivated": user_id, "removed_from_groups": removed_from, "verification": str(outcome)}


def verify(scim: ScimClient, action: Action, reference: str, removed_from: list[str]) -> tuple[str, str]:
    """Read the account back, and each group it was removed from: (``Revocation.Outcome``, reason in words).

    Inactive (or gone) and in none of the groups is verified; still active, or still a
    member, is a mismatch; a read that fails, or an answer silent on ``active``, cannot
    verify.
    """
    integration = action.integration
    user_path = f"{users_endpoint(integration)}/{action.parameters['user_id']}"
    name = action.subject or str(action.parameters["user_id"])
    mismatches: list[str] = []
    unknown: list[str] = []
    try:
        account: dict[str, Any] | None = scim.get_json(user_path)
    except ScimNotFound:
        account = None  # gone: nothing left active
    except ScimClientError as error:
        return Revocation.Outcome.UNVERIFIED, f"reading {name} back failed: {error}"
    if account is not None:
        active = account.get("active")
        if active is True or str(active).lower() == "true":
            mismatches.append(f"the application answered success but still shows {name} active")
        elif active is None:
            unknown.append(f"the application's answer for {name} does not say whether it is active")
    for group_id in removed_from:
        group_path = f"{groups_endpoint(integration)}/{group_id}"
        try:
            group = scim.get_json(group_path)
        except ScimNotFound:
            continue  # the group is gone: nobody is in it
        except ScimClientError as error:
            unknown.append(f"reading group {group_id} back failed: {error}")
            continue
        label = str(group.get("displayName") or group_id)
        members = group.get("members") or []  # SCIM leaves out an attribute with no value: no members
        if not isinstance(members, list):
            unknown.append(f"the application's answer for {label} does not list its members")
        elif any(isinstance(m, dict) and str(m.get("value")) == reference for m in members):
            mismatches.append(f"{name} is still a member of {label}")
    if mismatches:
        return Revocation.Outcome.MISMATCH, "; ".join(mismatches)
    if unknown:
        return Revocation.Outcome.UNVERIFIED, "; ".join(unknown)
    state = "is no longer in the application" if account is None else "reads inactive"
    count = len(removed_from)
    groups = f", and out of the {count} group{'s' if count > 1 else ''} it was in" if count else ""
    return Revocation.Outcome.VERIFIED, f"{name} {state}{groups}"


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
