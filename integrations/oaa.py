"""Custom applications (OAA) with external SCIM.

The custom-provider API's ``configuration_json`` becomes an ``oaa`` integration; a pushed
application payload (``application_type``, ``local_users``, ``local_groups`` and their
memberships) is that integration's picture of who has an account; reading the SCIM side
shows where the two disagree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from integrations.extraction import content_hash, department_and_title, extraction_progress, resources
from integrations.history import (
    account_changes_record,
    group_changes_record,
    history_started,
    membership_changes_record,
)
from integrations.models import (
    ChangeSource,
    ExtractionRun,
    Integration,
    ScimComparison,
    TargetGroup,
    TargetMembership,
    TargetUser,
)
from integrations.scim_client import ScimClient
from integrations.services import integration_input_problems

BATCH = 500
COMPARISON_NAMES_KEPT = 1000
CONFIGURATION_KEYS = {
    "scim_url",
    "scim_token",
    "username",
    "password",
    "users_endpoint",
    "groups_endpoint",
    "scim_extension_schemas",
    "ca_certificate",
}


# The integration's settings that a configuration's keys of another name give.
CONFIGURATION_KEY_OF = {"base_url": "scim_url"}

# What a push writes of an account: what an extraction writes, but for removed_at (set apart).
USER_FIELDS = [name for name in resources.USER_FIELDS if name != "removed_at"]


class PayloadError(ValueError):
    """Bad input, with the fields at fault: ``{"local_users[2].name": ["This field is required."]}``."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{key}: {' '.join(messages)}" for key, messages in fields.items()))
        self.fields = fields


def provider_configuration_parse(configuration_json: Any) -> dict[str, Any]:
    """``configuration_json`` (a JSON string, or an object) → Integration fields. Raises PayloadError."""
    if isinstance(configuration_json, str):
        try:
            configuration = json.loads(configuration_json)
        except ValueError as exc:
            raise PayloadError({"configuration_json": [f"This is not valid JSON ({exc})."]}) from None
    else:
        configuration = configuration_json
    if not isinstance(configuration, dict):
        raise PayloadError({"configuration_json": ["Expected a JSON object."]})
    errors: dict[str, list[str]] = {}
    unknown = sorted(set(configuration) - CONFIGURATION_KEYS)
    if unknown:
        errors["configuration_json"] = [f"Unknown keys: {', '.join(unknown)}."]
    url = configuration.get("scim_url")
    if not isinstance(url, str) or not url.strip():
        errors["configuration_json.scim_url"] = ["The SCIM base URL is required."]
    token = configuration.get("scim_token") or ""
    username = configuration.get("username") or ""
    password = configuration.get("password") or ""
    if token and (username or password):
        errors["configuration_json.scim_token"] = ["Give either scim_token or username and password, not both."]
    elif not token and not (username and password):
        errors["configuration_json.scim_token"] = ["Give scim_token, or both username and password."]
    for key in ("scim_token", "username", "password", "users_endpoint", "groups_endpoint", "ca_certificate"):
        if key in configuration and not isinstance(configuration[key], str):
            errors[f"configuration_json.{key}"] = ["Expected a string."]
    discover = configuration.get("scim_extension_schemas", False)
    if not isinstance(discover, bool):
        errors["configuration_json.scim_extension_schemas"] = ["Expected true or false."]
    # What the form and the API refuse in a base URL or a certificate, said of this configuration's
    # keys (its credentials' rule is its own, above).
    checked = {"base_url": url, "ca_certificate": configuration.get("ca_certificate")}
    for problem in integration_input_problems(fields={k: v for k, v in checked.items() if isinstance(v, str)}):
        if problem.field not in Integration.SECRET_FIELDS:
            key = CONFIGURATION_KEY_OF.get(problem.field or "", problem.field or "")
            errors.setdefault(f"configuration_json.{key}", []).append(problem.message)
    if errors or not isinstance(url, str):
        raise PayloadError(errors)
    fields: dict[str, Any] = {
        "base_url": url.strip(),
        "users_endpoint": (configuration.get("users_endpoint") or "Users").strip("/"),
        "groups_endpoint": (configuration.get("groups_endpoint") or "Groups").strip("/"),
        "discover_extensions": discover,
        "ca_certificate": configuration.get("ca_certificate") or "",
    }
    if token:
        fields.update(auth_type=Integration.AuthType.BEARER, bearer_token=token)
    else:
        fields.update(auth_type=Integration.AuthType.BASIC, basic_username=username, basic_password=password)
    return fields


@dataclass
class PushedApplication:
    name: str
    application_type: str
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # by user name
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # by group name
    memberships: set[tuple[str, str]] = field(default_factory=set)  # (user name, group name)


def payload_parse(body: Any) -> PushedApplication:
    """An OAA application payload → what it says, or PayloadError naming every problem.

    Accepts the custom application template (``{"applications": [{...}]}``, one
    application), a bare application object, or either wrapped as a ``json_data`` string.
    Memberships come from each user's ``groups`` list and from an optional top-level
    ``memberships`` list of ``{"user": …, "group": …}``.
    """
    if isinstance(body, dict) and isinstance(body.get("json_data"), str):
        try:
            body = json.loads(body["json_data"])
        except ValueError as exc:
            raise PayloadError({"json_data": [f"This is not valid JSON ({exc})."]}) from None
    if not isinstance(body, dict):
        raise PayloadError({"payload": ["Expected a JSON object."]})
    extra_memberships = body.get("memberships", [])
    if "applications" in body:
        applications = body["applications"]
        if not isinstance(applications, list) or len(applications) != 1 or not isinstance(applications[0], dict):
            raise PayloadError({"applications": ["Push exactly one application per integration."]})
        application = applications[0]
        extra_memberships = application.get("memberships", extra_memberships)
    else:
        application = body
    errors: dict[str, list[str]] = {}

    def problem(where: str, message: str) -> None:
        errors.setdefault(where, []).append(message)

    application_type = application.get("application_type")
    if not isinstance(application_type, str) or not application_type.strip():
        problem("application_type", "This field is required.")
    elif not application_type.replace("_", "").replace("-", "").isalnum():
        problem("application_type", "Use letters, digits, '-' and '_' only (it names the entity types).")
    pushed = PushedApplication(
        name=str(application.get("name") or application_type or ""), application_type=str(application_type or "")
    )
    local_groups = application.get("local_groups", [])
    if not isinstance(local_groups, list):
        problem("local_groups", "Expected a list.")
        local_groups = []
    for index, group in enumerate(local_groups):
        name = group.get("name") if isinstance(group, dict) else None
        if not isinstance(name, str) or not name.strip():
            problem(f"local_groups[{index}].name", "This field is required.")
        elif name in pushed.groups:
            problem(f"local_groups[{index}].name", f"Group {name!r} appears twice.")
        else:
            pushed.groups[name] = group
    local_users = application.get("local_users", [])
    if not isinstance(local_users, list):
        problem("local_users", "Expected a list.")
        local_users = []
    for index, user in enumerate(local_users):
        name = user.get("name") if isinstance(user, dict) else None
        if not isinstance(name, str) or not name.strip():
            problem(f"local_users[{index}].name", "This field is required.")
            continue
        if name in pushed.users:
            problem(f"local_users[{index}].name", f"User {name!r} appears twice.")
            continue
        pushed.users[name] = user
        groups = user.get("groups", [])
        if not isinstance(groups, list):
            problem(f"local_users[{index}].groups", "Expected a list of group names.")
            continue
        for group_name in groups:
            if group_name not in pushed.groups:
                problem(f"local_users[{index}].groups", f"Unknown group {group_name!r}: add it to local_groups.")
            else:
                pushed.memberships.add((name, group_name))
    if not isinstance(extra_memberships, list):
        problem("memberships", "Expected a list of {user, group} objects.")
        extra_memberships = []
    for index, membership in enumerate(extra_memberships):
        user_name = membership.get("user") if isinstance(membership, dict) else None
        group_name = membership.get("group") if isinstance(membership, dict) else None
        if user_name not in pushed.users:
            problem(f"memberships[{index}].user", f"Unknown user {user_name!r}: add it to local_users.")
        elif group_name not in pushed.groups:
            problem(f"memberships[{index}].group", f"Unknown group {group_name!r}: add it to local_groups.")
        else:
            pushed.memberships.add((user_name, group_name))
    if errors:
        raise PayloadError(errors)
    return pushed


def _user_fields(name: str, user: dict[str, Any]) -> dict[str, Any]:
    identities = user.get("identities") or []
    email = user.get("email") or next((i for i in identities if isinstance(i, str) and "@" in i), "")
    return {
        "user_name": name[:255],
        "display_name": str(user.get("display_name") or user.get("full_name") or "")[:255],
        "email": str(email)[:320],
        "external_id": str(user.get("unique_id") or "")[:255],
        "active": user.get("is_active", True) is not False,
        **dict(zip(("department", "title"), department_and_title(user), strict=True)),
        "resource": user,
        "content_hash": content_hash(user),
    }


def _state(user: TargetUser) -> tuple[bool, bool, int | None]:
    """The account's state as the access history keeps it, as it was read before the push."""
    return (user.active, user.removed_at is not None, user.owner_id)


def _membership_changes_recorded(
    integration: Integration,
    pushed: PushedApplication,
    existing_groups: dict[str, TargetGroup],
    group_ids: dict[str, int],
    user_ids: dict[str, int],
    at: Any,
) -> None:
    """Record who came to and went from the groups that existed before the push (new groups
    did not exist before: their members are not recorded), and groups gone or back."""
    before = set(TargetMembership.objects.filter(integration=integration).values_list("group_id", "member_remote_id"))
    known = {group.pk for group in existing_groups.values()}
    after = {(group_ids[group], user) for user, group in pushed.memberships if group_ids.get(group) in known}
    changes = [(group, member, user_ids.get(member), False) for group, member in before - after]
    changes += [(group, member, user_ids.get(member), True) for group, member in after - before]
    membership_changes_record(
        integration_id=integration.pk, changes=sorted(changes), source=ChangeSource.EXTRACTION, at=at
    )
    gone = [g.pk for name, g in existing_groups.items() if name not in pushed.groups and g.removed_at is None]
    back = [g.pk for name, g in existing_groups.items() if name in pushed.groups and g.removed_at is not None]
    group_changes_record(integration_id=integration.pk, group_ids=gone, removed=True, at=at)
    group_changes_record(integration_id=integration.pk, group_ids=back, removed=False, at=at)


@transaction.atomic
def payload_apply(*, integration: Integration, pushed: PushedApplication) -> ExtractionRun:
    """Make the pushed application the integration's picture; recorded as a run (trigger push)."""
    started = timezone.now()
    counts = {"created": 0, "updated": 0, "removed": 0}
    if integration.application_type != pushed.application_type:
        integration.application_type = pushed.application_type
        Integration.objects.filter(pk=integration.pk).update(application_type=pushed.application_type)

    existing_users = {u.remote_id: u for u in TargetUser.objects.filter(integration=integration)}
    states = {u.pk: _state(u) for u in existing_users.values()}  # before the push, for the history
    fresh, changed = [], []
    for name, user in pushed.users.items():
        fields = _user_fields(name, user)
        row = existing_users.get(name)
        if row is None:
            fresh.append(TargetUser(integration=integration, remote_id=name, last_seen_at=started, **fields))
        elif row.content_hash != fields["content_hash"] or row.removed_at is not None:
            for key, value in fields.items():
                setattr(row, key, value)
            row.removed_at, row.last_seen_at = None, started
            changed.append(row)
    TargetUser.objects.bulk_create(fresh, batch_size=BATCH)
    TargetUser.objects.bulk_update(changed, [*USER_FIELDS, "removed_at", "last_seen_at"], batch_size=BATCH)
    gone = [key for key, row in existing_users.items() if key not in pushed.users and row.removed_at is None]
    TargetUser.objects.filter(integration=integration, remote_id__in=gone).update(removed_at=started)
    # The access history (integrations.history): accounts gone, back, made active or inactive.
    account_changes_record(
        integration_id=integration.pk,
        before={row.pk: states[row.pk] for row in changed}
        | {existing_users[key].pk: states[existing_users[key].pk] for key in gone},
        after={row.pk: (row.active, False, row.owner_id) for row in changed}
        | {existing_users[key].pk: (existing_users[key].active, True, existing_users[key].owner_id) for key in gone},
        source=ChangeSource.EXTRACTION,
        at=started,
    )
    counts["created"] += len(fresh)
    counts["updated"] += len(changed)
    counts["removed"] += len(gone)

    existing_groups = {g.remote_id: g for g in TargetGroup.objects.filter(integration=integration)}
    member_counts: dict[str, int] = {}
    for _, group_name in pushed.memberships:
        member_counts[group_name] = member_counts.get(group_name, 0) + 1
    fresh_groups, changed_groups = [], []
    for name, group in pushed.groups.items():
        fields = {
            "display_name": name[:255],
            "external_id": str(group.get("unique_id") or "")[:255],
            "resource": group,
            "content_hash": content_hash(group),
            "member_count": member_counts.get(name, 0),
        }
        existing_group = existing_groups.get(name)
        if existing_group is None:
            fresh_groups.append(TargetGroup(integration=integration, remote_id=name, last_seen_at=started, **fields))
            continue
        if (
            existing_group.content_hash != fields["content_hash"]
            or existing_group.member_count != fields["member_count"]
            or existing_group.removed_at is not None
        ):
            for key, value in fields.items():
                setattr(existing_group, key, value)
            existing_group.removed_at, existing_group.last_seen_at = None, started
            changed_groups.append(existing_group)
    TargetGroup.objects.bulk_create(fresh_groups, batch_size=BATCH)
    TargetGroup.objects.bulk_update(
        changed_groups,
        ["display_name", "external_id", "resource", "content_hash", "member_count", "removed_at", "last_seen_at"],
        batch_size=BATCH,
    )
    gone_groups = [key for key, row in existing_groups.items() if key not in pushed.groups and row.removed_at is None]
    TargetGroup.objects.filter(integration=integration, remote_id__in=gone_groups).update(removed_at=started)
    counts["created"] += len(fresh_groups)
    counts["updated"] += len(changed_groups)
    counts["removed"] += len(gone_groups)

    # Memberships are rebuilt whole: the payload is the complete statement of them.
    user_ids = dict(TargetUser.objects.filter(integration=integration).values_list("remote_id", "pk"))
    group_ids = dict(TargetGroup.objects.filter(integration=integration).values_list("remote_id", "pk"))
    _membership_changes_recorded(integration, pushed, existing_groups, group_ids, user_ids, started)
    TargetMembership.objects.filter(integration=integration).delete()
    TargetMembership.objects.bulk_create(
        [
            TargetMembership(
                integration=integration, group_id=group_ids[group], member_remote_id=user, user_id=user_ids[user]
            )
            for user, group in sorted(pushed.memberships)
        ],
        batch_size=BATCH,
    )
    run = ExtractionRun.objects.create(
        integration=integration,
        trigger=ExtractionRun.Trigger.PUSH,
        status=ExtractionRun.Status.SUCCEEDED,
        queued_at=started,
        started_at=started,
        finished_at=timezone.now(),
        users_seen=len(pushed.users),
        groups_seen=len(pushed.groups),
        **counts,
    )
    assert run.finished_at is not None
    history_started(integration=integration, at=run.finished_at)
    return run


def scim_compare(*, run: ExtractionRun, client: ScimClient) -> ScimComparison:
    """Read the SCIM side's user and group names and record where they differ from the payload."""
    integration = run.integration
    scim_users: set[str] = set()
    for page in client.pages(integration.users_endpoint, params={"attributes": "userName"}):
        run.pages += 1
        scim_users.update(str(r.get("userName", "")) for r in page if r.get("userName"))
        run.users_seen, run.users_total = len(scim_users), client.total_results
        extraction_progress(run, pages=run.pages, users_seen=run.users_seen, users_total=run.users_total)
    scim_groups: set[str] = set()
    for page in client.pages(integration.groups_endpoint, params={"excludedAttributes": "members"}):
        run.pages += 1
        scim_groups.update(str(r.get("displayName", "")) for r in page if r.get("displayName"))
        run.groups_seen, run.groups_total = len(scim_groups), client.total_results
        extraction_progress(run, pages=run.pages, groups_seen=run.groups_seen, groups_total=run.groups_total)
    pushed_users = set(
        TargetUser.objects.filter(integration=integration, removed_at__isnull=True).values_list("user_name", flat=True)
    )
    pushed_groups = set(
        TargetGroup.objects.filter(integration=integration, removed_at__isnull=True).values_list(
            "display_name", flat=True
        )
    )
    # SCIM compares userName case-insensitively (RFC 7643 §4.1.1); so does this.
    scim_users_folded = {name.casefold(): name for name in scim_users}
    pushed_users_folded = {name.casefold(): name for name in pushed_users}
    sides = {
        "users_only_in_payload": sorted(pushed_users_folded[k] for k in pushed_users_folded.keys() - scim_users_folded),
        "users_only_in_scim": sorted(scim_users_folded[k] for k in scim_users_folded.keys() - pushed_users_folded),
        "groups_only_in_payload": sorted(pushed_groups - scim_groups),
        "groups_only_in_scim": sorted(scim_groups - pushed_groups),
    }
    comparison, _ = ScimComparison.objects.update_or_create(
        integration=integration,
        defaults={
            "compared_at": timezone.now(),
            "counts": {key: len(names) for key, names in sides.items()},
            **{key: names[:COMPARISON_NAMES_KEPT] for key, names in sides.items()},
        },
    )
    return comparison
