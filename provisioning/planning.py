"""Dry runs: the SCIM requests an action would send, worked out from the console's picture
of the application without sending anything."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from integrations import dialect
from integrations.catalog import per_second
from integrations.models import Integration, TargetGroup, TargetMembership, TargetUser
from integrations.scim_client import escape_filter_value
from provisioning.dialect_forms import add_operations, patch_body, removal_operations
from provisioning.execution import GROUP_SCHEMA, changed_operations, user_resource
from provisioning.models import ActionType


@dataclass
class PlannedRequest:
    method: str
    path: str
    body: dict[str, Any] | None = None
    note: str = ""
    # The account or group the path names, by its name: "PATCH Groups/abc123 (Engineers)".
    label: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value not in (None, "")}


def _member_references(integration: Integration, user_ids: list[str]) -> list[str]:
    """What a group's members.value holds for these accounts, by the console's picture."""
    if dialect.value(integration, "member_reference") != "userName":
        return list(user_ids)
    names = dict(
        TargetUser.objects.filter(integration=integration, remote_id__in=user_ids).values_list("remote_id", "user_name")
    )
    return [names.get(user_id, user_id) for user_id in user_ids]


def _user_names(integration: Integration, user_ids: list[str]) -> dict[str, str]:
    return dict(
        TargetUser.objects.filter(integration=integration, remote_id__in=user_ids).values_list("remote_id", "user_name")
    )


def _group_name(integration: Integration, group_id: str) -> str:
    names = TargetGroup.objects.filter(integration=integration, remote_id=group_id).values_list(
        "display_name", flat=True
    )
    return next(iter(names), "")


def _members_label(group: str, verb: str, user_ids: list[str], names: dict[str, str]) -> str:
    """ "Engineers: add ada, bob and 3 more" """
    shown = [names.get(user_id, user_id) for user_id in user_ids[:5]]
    more = f" and {len(user_ids) - 5} more" if len(user_ids) > 5 else ""
    return f"{group or 'the group'}: {verb} {', '.join(shown)}{more}"


def plan(*, integration: Integration, action_type: str, parameters: dict[str, Any]) -> list[PlannedRequest]:
    """The requests, in order, that carrying out the action would make (as far as known now)."""
    users, groups = integration.users_endpoint.strip("/"), integration.groups_endpoint.strip("/")
    if action_type == ActionType.SYNC_IDENTITIES:
        desired = parameters["user"]
        lookups = [
            PlannedRequest("GET", f"{users}?filter={attribute} eq {escape_filter_value(str(desired[attribute]))}")
            for attribute in ("externalId", "userName")
            if desired.get(attribute)
        ]
        known = (
            TargetUser.objects.filter(integration=integration, user_name__iexact=desired["userName"])
            .order_by("removed_at")
            .first()
        )
        if known is None or known.removed_at is not None:
            return [*lookups, PlannedRequest("POST", users, user_resource(desired), "no account yet")]
        operations = changed_operations(known.resource, desired)
        if not operations:
            return [
                *lookups,
                PlannedRequest("—", f"{users}/{known.remote_id}", note="already up to date", label=known.user_name),
            ]
        return [
            *lookups,
            PlannedRequest("PATCH", f"{users}/{known.remote_id}", patch_body(operations), label=known.user_name),
        ]
    if action_type == ActionType.MANAGE_RELATIONSHIPS:
        size = max(1, integration.membership_chunk_size)
        path = f"{groups}/{parameters['group_id']}"
        group_name = _group_name(integration, str(parameters["group_id"]))
        add_ids, remove_ids = list(parameters.get("add", [])), list(parameters.get("remove", []))
        names = _user_names(integration, [*add_ids, *remove_ids])
        add = _member_references(integration, add_ids)
        remove = _member_references(integration, remove_ids)
        requests = [
            PlannedRequest(
                "PATCH",
                path,
                patch_body(add_operations(add[i : i + size])),
                label=_members_label(group_name, "add", add_ids[i : i + size], names),
            )
            for i in range(0, len(add), size)
        ]
        requests += [
            PlannedRequest(
                "PATCH",
                path,
                patch_body(removal_operations(integration, remove[i : i + size])),
                label=_members_label(group_name, "remove", remove_ids[i : i + size], names),
            )
            for i in range(0, len(remove), size)
        ]
        return requests
    if action_type == ActionType.DEPROVISION_IDENTITY:
        user_id = parameters["user_id"]
        user_name = _user_names(integration, [user_id]).get(user_id, "")
        requests = [
            PlannedRequest(
                "PATCH",
                f"{users}/{user_id}",
                patch_body([{"op": "replace", "path": "active", "value": False}]),
                label=user_name,
            )
        ]
        memberships = TargetMembership.objects.filter(integration=integration, member_remote_id=user_id).values_list(
            "group__remote_id", "group__display_name"
        )
        reference = _member_references(integration, [user_id])
        for group_id, group_name in memberships:
            requests.append(
                PlannedRequest(
                    "PATCH",
                    f"{groups}/{group_id}",
                    patch_body(removal_operations(integration, reference)),
                    label=_members_label(group_name, "remove", [user_id], {user_id: user_name} if user_name else {}),
                )
            )
        return requests
    if action_type == ActionType.DELETE_IDENTITY:
        user_id = parameters["user_id"]
        return [
            PlannedRequest("DELETE", f"{users}/{user_id}", label=_user_names(integration, [user_id]).get(user_id, ""))
        ]
    if action_type == ActionType.CREATE_ENTITLEMENT:
        name = parameters["display_name"]
        lookup = PlannedRequest("GET", f"{groups}?filter=displayName eq {escape_filter_value(name)}")
        if TargetGroup.objects.filter(integration=integration, display_name=name, removed_at__isnull=True).exists():
            return [lookup, PlannedRequest("—", groups, note="the group exists: it is adopted", label=name)]
        return [lookup, PlannedRequest("POST", groups, {"schemas": [GROUP_SCHEMA], "displayName": name})]
    raise ValueError(action_type)


def plan_for(
    *,
    integration: Integration,
    action_type: str,
    person: Any = None,
    target_user: TargetUser | None = None,
    target_group: TargetGroup | None = None,
    parameters: dict[str, Any] | None = None,
) -> list[PlannedRequest]:
    """Validate as a request would, then plan: a dry run of an action not yet requested."""
    from provisioning.services import _validated

    _, clean = _validated(
        integration=integration,
        action_type=action_type,
        person=person,
        target_user=target_user,
        target_group=target_group,
        parameters=parameters or {},
    )
    return plan(integration=integration, action_type=action_type, parameters=clean)


@dataclass(frozen=True)
class DurationEstimate:
    """How long the planned requests take at the integration's rate limit.

    The limit is shared by every worker (``provisioning/throttle.py``), so more concurrency
    does not make a batch faster than ``requests / rate``; the burst is left out, as other
    work may have used it. The application's own answers take some time on top.
    """

    requests: int
    rate_per_second: float
    seconds: float
    rate_limit_note: str = ""  # why the limit is what it is, when a 429 lowered it

    @property
    def text(self) -> str:
        return f"about {duration_text(self.seconds)} at {per_second(self.rate_per_second)} requests/s"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "text": self.text}


def duration_text(seconds: float) -> str:
    """``seconds`` as people say a wait: 40 s, 3 min, 2 h 5 min."""
    if seconds < 60:
        return f"{max(1, math.ceil(seconds))} s"
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min" if minutes % 60 else f"{minutes // 60} h"


def requests_planned(plans: Iterable[list[PlannedRequest]]) -> int:
    """The SCIM requests the plans would send (a step that sends nothing, method "—", aside)."""
    return sum(1 for steps in plans for step in steps if step.method != "—")


def duration_estimate(*, integration: Integration, requests: int) -> DurationEstimate:
    rate = max(integration.rate_limit_per_second, 0.001)
    return DurationEstimate(requests, rate, requests / rate, integration.rate_limit_learned_note)


def plan_for_action(action: Any) -> list[PlannedRequest]:
    """The plan of a requested action; one whose parameters are incomplete plans nothing."""
    try:
        return plan(integration=action.integration, action_type=action.action_type, parameters=action.parameters)
    except (KeyError, TypeError, ValueError):
        return [PlannedRequest("—", "", note="the action's parameters are incomplete; it cannot run")]
