"""Create entitlement: a group made in the application, or adopted where it exists.

The group is looked for by ``displayName`` first (``provisioning/lookups.py``); a 409 on
the POST means someone made it meanwhile, and it is found and adopted. The group joins the
console's picture at once, so it can be given members before the next extraction.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from console.accounts.models import Person
from integrations.extraction import fingerprint, stored_group_resource
from integrations.models import Integration, TargetGroup, TargetUser
from integrations.scim_client import ScimClient, ScimConflict
from provisioning.action_types.base import GROUP_SCHEMA, ActionKind, Run, groups_endpoint
from provisioning.dry_run import PlannedRequest, rehearse
from provisioning.errors import require
from provisioning.lookups import find_resource
from provisioning.models import Action, ActionType

# A group made by CREATE_ENTITLEMENT is kept under this name: the form and the API cap it alike.
GROUP_NAME_LONGEST: int = TargetGroup._meta.get_field("display_name").max_length or 255


def validate(
    *,
    integration: Integration,
    person: Person | None,
    target_user: TargetUser | None,
    target_group: TargetGroup | None,
    parameters: dict[str, Any],
) -> tuple[str, dict[str, Any]]:
    """A group name, of at most the length the console keeps."""
    display_name = str(parameters.get("display_name") or "").strip()
    require(bool(display_name), "Name the group to create.", "parameters")
    require(
        len(display_name) <= GROUP_NAME_LONGEST,
        f"A group name is at most {GROUP_NAME_LONGEST} characters (this one has {len(display_name)}).",
        "parameters",
    )
    return display_name, {"display_name": display_name}


def execute(action: Action, scim: ScimClient, run: Run) -> dict[str, Any]:
    name = action.parameters["display_name"]
    endpoint = groups_endpoint(action.integration)
    lean = {"excludedAttributes": "members"}
    existing = find_resource(scim, endpoint, "displayName", name, kind="groups", listing=run.listing, params=lean)
    operation = "adopted"
    if existing is not None:
        resource = existing
    else:
        try:
            resource = scim.request("POST", endpoint, json={"schemas": [GROUP_SCHEMA], "displayName": name}).json()
            operation = "created"
        except ScimConflict:
            run.listing.forget(endpoint)
            found = find_resource(scim, endpoint, "displayName", name, kind="groups", listing=run.listing, params=lean)
            if found is None:
                raise
            resource = found

    def keep_group() -> None:
        group, _ = TargetGroup.objects.update_or_create(
            integration=action.integration,
            remote_id=str(resource["id"]),
            defaults={
                "display_name": str(resource.get("displayName", name))[:255],
                "resource": stored_group_resource(resource),
                "content_hash": fingerprint(resource),
                "last_seen_at": timezone.now(),
                "removed_at": None,
            },
        )
        action.target_group = group  # recorded with the outcome

    run.update_picture(keep_group)
    return {"operation": operation, "id": resource["id"]}


def plan(integration: Integration, parameters: dict[str, Any]) -> list[PlannedRequest]:
    """The look-up by name, then the group's POST; or that the group found is adopted."""
    done = rehearse(integration, ActionType.CREATE_ENTITLEMENT, parameters, execute)
    writes = done.writes
    if not writes and not done.stopped:
        name = str(parameters["display_name"])
        writes = [PlannedRequest("—", groups_endpoint(integration), note="the group exists: it is adopted", label=name)]
    return done.steps([*done.look_ups, *writes])


def inverse(action: Action) -> list[dict[str, Any]]:
    """None: a group made is not taken away by an undo."""
    return []


KIND = ActionKind(
    action_type=ActionType.CREATE_ENTITLEMENT, validate=validate, execute=execute, plan=plan, inverse=inverse
)
