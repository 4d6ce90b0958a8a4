"""Manage relationships: accounts added to and removed from one group.

The members go in PATCH requests of ``membership_chunk_size`` each, additions first; a
removal by filter path falls back to a value list where the application refuses it, and
each member is named as the application's groups name them (ids, or userNames:
``provisioning/dialect_forms.py``). Undone by the opposite change.
"""

from __future__ import annotations

from typing import Any

from console.accounts.models import Person
from integrations.history import group_members_changed
from integrations.models import ChangeSource, Integration, TargetGroup, TargetMembership, TargetUser
from integrations.scim_client import ScimClient
from provisioning.action_types.base import ActionKind, Run, groups_endpoint, users_endpoint
from provisioning.dialect_forms import add_members, member_values, remove_members
from provisioning.dry_run import PlannedRequest, group_name, members_label, rehearse, user_names
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
    """A group, and accounts of the integration to add or to remove (not both)."""
    require(target_group is not None, "Choose the group.", "target_group")
    assert target_group is not None
    add = [str(v) for v in parameters.get("add") or []]
    remove = [str(v) for v in parameters.get("remove") or []]
    require(bool(add or remove), "Name at least one account to add or remove.", "parameters")
    require(not set(add) & set(remove), "An account cannot be both added and removed.", "parameters")
    known = set(
        TargetUser.objects.filter(integration=integration, remote_id__in=add + remove).values_list(
            "remote_id", flat=True
        )
    )
    unknown = sorted(set(add + remove) - known)
    require(not unknown, f"Unknown accounts in {integration.name}: {', '.join(unknown[:10])}.", "parameters")
    parts = [f"+{len(add)}" if add else "", f"-{len(remove)}" if remove else ""]
    return f"{target_group.display_name} ({' '.join(p for p in parts if p)})", {
        "group_id": target_group.remote_id,
        "add": add,
        "remove": remove,
    }


def _chunks(integration: Integration, user_ids: list[str]) -> list[list[str]]:
    """The accounts, as many at a time as one PATCH of the integration carries."""
    size = max(1, integration.membership_chunk_size)
    return [user_ids[start : start + size] for start in range(0, len(user_ids), size)]


def execute(action: Action, scim: ScimClient, run: Run) -> dict[str, Any]:
    integration = action.integration
    group_id = action.parameters["group_id"]
    add, remove = action.parameters.get("add", []), action.parameters.get("remove", [])
    users = users_endpoint(integration)
    path = f"{groups_endpoint(integration)}/{group_id}"
    requests = 0
    for chunk in _chunks(integration, add):
        add_members(scim, path, member_values(scim, chunk, users))
        requests += 1
    for chunk in _chunks(integration, remove):
        remove_members(scim, path, member_values(scim, chunk, users))
        requests += 1

    def change_memberships() -> None:
        group = TargetGroup.objects.filter(integration=integration, remote_id=group_id).first()
        if group is None:
            return
        accounts = dict(
            TargetUser.objects.filter(integration=integration, remote_id__in=add).values_list("remote_id", "pk")
        )

        def write() -> None:
            TargetMembership.objects.bulk_create(
                [
                    TargetMembership(integration=integration, group=group, member_remote_id=v, user_id=accounts.get(v))
                    for v in add
                ],
                ignore_conflicts=True,
            )
            TargetMembership.objects.filter(group=group, member_remote_id__in=remove).delete()

        # Who came and went is kept in the access history, with this action.
        group_members_changed(
            group=group, members=[*add, *remove], change=write, source=ChangeSource.ACTION, action_id=action.pk
        )
        TargetGroup.objects.filter(pk=group.pk).update(member_count=group.memberships.count())

    run.update_picture(change_memberships)
    return {"added": len(add), "removed": len(remove), "requests": requests}


def plan(integration: Integration, parameters: dict[str, Any]) -> list[PlannedRequest]:
    """A PATCH for each chunk of accounts added, then of accounts removed, named."""
    done = rehearse(integration, ActionType.MANAGE_RELATIONSHIPS, parameters, execute)
    add, remove = list(parameters.get("add", [])), list(parameters.get("remove", []))
    group = group_name(integration, str(parameters["group_id"]))
    names = user_names(integration, [*add, *remove])
    labels = [members_label(group, "add", chunk, names) for chunk in _chunks(integration, add)]
    labels += [members_label(group, "remove", chunk, names) for chunk in _chunks(integration, remove)]
    writes = done.writes
    for write, label in zip(writes, labels, strict=False):  # one PATCH a chunk; fewer where it would stop
        write.label = label
    return done.steps(writes)


def inverse(action: Action) -> list[dict[str, Any]]:
    """The opposite change: the accounts added are removed, those removed added."""
    if action.target_group is None:
        return []
    added, removed = action.parameters.get("add", []), action.parameters.get("remove", [])
    return [
        {
            "action_type": ActionType.MANAGE_RELATIONSHIPS,
            "target_group": action.target_group,
            "parameters": {"add": removed, "remove": added},
        }
    ]


KIND = ActionKind(
    action_type=ActionType.MANAGE_RELATIONSHIPS, validate=validate, execute=execute, plan=plan, inverse=inverse
)
