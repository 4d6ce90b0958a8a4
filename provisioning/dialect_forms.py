"""The write requests of actions, in the form the application accepts.

Each sends the standard form first (RFC 7644); when the application refuses it (400 or
501), the equivalent fallback is sent and the integration's dialect profile remembers it,
so the next action goes straight to what works. An answer of 200 whose returned resource
shows the change not made (a member still listed, ``active`` unchanged) is a failure.
"""

from __future__ import annotations

import copy
from typing import Any

from integrations import dialect
from integrations.scim_client import (
    ScimBadRequest,
    ScimClient,
    ScimClientError,
    ScimNotFound,
    escape_filter_value,
    parse_json,
)

PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
PRECONDITION_FAILED = 412


class ChangeNotMade(ScimClientError):
    """The application accepted the request, and its answer shows the change was not made."""


def patch_body(operations: list[dict[str, Any]]) -> dict[str, Any]:
    return {"schemas": [PATCH_SCHEMA], "Operations": operations}


def _patch(scim: ScimClient, path: str, operations: list[dict[str, Any]]) -> dict[str, Any] | None:
    """PATCH, and the resource the application answered with (None for 204 or no JSON)."""
    response = scim.request("PATCH", path, json=patch_body(operations))
    if response.status_code == 204 or not response.content:
        return None
    try:
        body = parse_json(response)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _refusal(error: ScimClientError) -> bool:
    """A refusal of the form (400, 501), not of the resource (404, 409) nor a failure."""
    return isinstance(error, ScimBadRequest)


# --- members --------------------------------------------------------------------------------


def removal_by_filter_path(values: list[str]) -> list[dict[str, Any]]:
    return [{"op": "remove", "path": f"members[value eq {escape_filter_value(v)}]"} for v in values]


def removal_by_value_list(values: list[str]) -> list[dict[str, Any]]:
    return [{"op": "remove", "path": "members", "value": [{"value": v} for v in values]}]


def removal_operations(integration: Any, values: list[str]) -> list[dict[str, Any]]:
    """What removing ``values`` sends first, as the integration's profile stands."""
    if dialect.refused(integration, "patch_filter_path_remove"):
        return removal_by_value_list(values)
    return removal_by_filter_path(values)


def add_operations(values: list[str]) -> list[dict[str, Any]]:
    return [{"op": "add", "path": "members", "value": [{"value": v} for v in values]}]


def remove_members(scim: ScimClient, group_path: str, values: list[str]) -> None:
    """Remove ``values`` from the group: by filter path, else by a value list."""
    integration = scim.integration
    if dialect.refused(integration, "patch_filter_path_remove"):
        answered = _patch(scim, group_path, removal_by_value_list(values))
    else:
        try:
            answered = _patch(scim, group_path, removal_by_filter_path(values))
        except ScimClientError as error:
            if not _refusal(error):
                raise
            scim.learn("patch_filter_path_remove", False, f"{group_path}: {error}")
            answered = _patch(scim, group_path, removal_by_value_list(values))
    _check_removed(group_path, answered, values)


def _check_removed(group_path: str, answered: dict[str, Any] | None, values: list[str]) -> None:
    if answered is None or not isinstance(answered.get("members"), list):
        return  # nothing to tell by
    listed = {str(m.get("value")) for m in answered["members"] if isinstance(m, dict)}
    still = [v for v in values if v in listed]
    if still:
        raise ChangeNotMade(
            f"PATCH {group_path} answered success but still lists {len(still)} of the members it was to "
            f"remove ({', '.join(still[:5])}): the application did not remove them"
        )


def add_members(scim: ScimClient, group_path: str, values: list[str]) -> None:
    _patch(scim, group_path, add_operations(values))


def member_values(scim: ScimClient, user_ids: list[str], users_endpoint: str) -> list[str]:
    """What a group's ``members.value`` holds for these accounts: their ids, or their userNames
    where the application's groups hold names (its profile's ``member_reference``).

    A name is read from the account itself (``GET /Users/{id}``), not taken from the last
    extraction: an account renamed since may have left its old name to another account, and
    a membership written by that name would be the other account's.
    """
    if dialect.value(scim.integration, "member_reference") != "userName":
        return list(user_ids)
    values = []
    for user_id in user_ids:
        try:
            account = scim.get_json(f"{users_endpoint}/{user_id}")
        except ScimNotFound:
            account = {}
        name = str(account.get("userName") or "") if str(account.get("id", "")) == str(user_id) else ""
        if not name:
            raise ScimClientError(
                f"the application's groups hold user names, and the account {user_id} has none the console "
                "can read: extract the integration, then retry"
            )
        values.append(name)
    return values


# --- user attributes -------------------------------------------------------------------------


def _replaced(scim: ScimClient, user_path: str, operations: list[dict[str, Any]]) -> dict[str, Any] | None:
    """PATCH replace, else the whole resource by PUT (learned); the resource answered, if any."""
    if dialect.refused(scim.integration, "patch_replace"):
        return put_changed(scim, user_path, operations)
    try:
        return _patch(scim, user_path, operations)
    except ScimClientError as error:
        if not _refusal(error):
            raise
        scim.learn("patch_replace", False, f"{user_path}: {error}")
        return put_changed(scim, user_path, operations)


def replace_attributes(scim: ScimClient, user_path: str, operations: list[dict[str, Any]]) -> None:
    """Change a user's attributes: PATCH replace, else the whole resource by PUT."""
    if operations:
        _replaced(scim, user_path, operations)


def set_active(scim: ScimClient, user_path: str, active: bool) -> None:
    """``active`` alone, checked in the answer when the application returns the resource."""
    answered = _replaced(scim, user_path, [{"op": "replace", "path": "active", "value": active}])
    if answered is not None and "active" in answered and answered["active"] is not active:
        raise ChangeNotMade(
            f"PATCH {user_path} answered success but the account's active is still {answered['active']}: "
            "the application did not change it"
        )


def applied(resource: dict[str, Any], operations: list[dict[str, Any]]) -> dict[str, Any]:
    """``resource`` with the ``replace`` operations made on it (paths as changed_operations writes them)."""
    changed = copy.deepcopy(resource)
    for operation in operations:
        path, value = operation["path"], operation.get("value")
        if path.startswith("urn:") and ":" in path[4:]:
            schema, _, attribute = path.rpartition(":")
            extension = changed.get(schema)
            changed[schema] = {**(extension if isinstance(extension, dict) else {}), attribute: value}
            schemas = changed.setdefault("schemas", [])
            if isinstance(schemas, list) and schema not in schemas:
                schemas.append(schema)
        elif "." in path:
            parent, _, attribute = path.partition(".")
            inner = changed.get(parent)
            changed[parent] = {**(inner if isinstance(inner, dict) else {}), attribute: value}
        else:
            changed[path] = value
    return changed


def put_changed(scim: ScimClient, path: str, operations: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Read the resource, make the changes, write it whole, with ``If-Match`` where it has a version.

    A version that changed meanwhile (412) is read again and the change made once more.
    """
    for _ in range(2):
        response = scim.request("GET", path)
        current = parse_json(response)
        if not isinstance(current, dict):
            raise ScimClientError(f"GET {path} did not answer a resource")
        version = response.headers.get("ETag") or (current.get("meta") or {}).get("version")
        body = {key: value for key, value in applied(current, operations).items() if key != "meta"}
        headers = {}
        if version and not dialect.refused(scim.integration, "etag"):
            headers["If-Match"] = str(version)
        try:
            answer = scim.request("PUT", path, json=body, headers=headers)
        except ScimClientError as error:
            if error.status == PRECONDITION_FAILED:
                continue  # changed since it was read: read it again
            raise
        try:
            written = parse_json(answer) if answer.content else None
        except ValueError:
            written = None
        return written if isinstance(written, dict) else None
    raise ScimClientError(f"PUT {path}: the resource kept changing while the console wrote it (412 twice)")
