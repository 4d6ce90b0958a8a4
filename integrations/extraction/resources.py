"""What the console stores of a resource read: a target user's columns, a group's resource."""

from __future__ import annotations

from typing import Any

ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

# The columns a new read rewrites on a changed user or group.
USER_FIELDS = [
    "user_name",
    "display_name",
    "email",
    "external_id",
    "active",
    "department",
    "title",
    "resource",
    "content_hash",
    "removed_at",
]
GROUP_FIELDS = [
    "display_name",
    "external_id",
    "resource",
    "content_hash",
    "member_count",
    "last_seen_at",
    "removed_at",
]


def target_user_values(resource: dict[str, Any], digest: str) -> tuple[Any, ...]:
    """The stored columns of a target user read from ``resource``, in ``USER_FIELDS``' order.

    Extraction calls this once per user read, so it is a tuple built from one look-up each.
    """
    get = resource.get
    external_id = get("externalId", "")
    return (
        str(get("userName", ""))[:255],
        str(get("displayName", ""))[:255],
        primary_email(resource),
        str(external_id or "")[:255],
        get("active", True) is not False,
        *department_and_title(resource),
        resource,
        digest,
        None,  # removed_at: seen again
    )


def target_user_fields(resource: dict[str, Any], digest: str) -> dict[str, Any]:
    """The stored columns (``USER_FIELDS``) of a target user read from ``resource``, by name."""
    return dict(zip(USER_FIELDS, target_user_values(resource, digest), strict=True))


def department_and_title(resource: dict[str, Any]) -> tuple[str, str]:
    """The enterprise extension's department and the title, where they are text (else empty).

    Stored beside the resource so that the Users tab shows and sorts them by an index of
    plain columns: an index on the resource would parse every account's JSON as it is written.
    """
    section = resource.get(ENTERPRISE_USER)
    department = section.get("department") if type(section) is dict else None
    title = resource.get("title")
    return (
        department[:255] if type(department) is str else "",
        title[:255] if type(title) is str else "",
    )


def stored_group_resource(resource: dict[str, Any]) -> dict[str, Any]:
    """A group's resource as stored: as read, less ``members``, which are stored as its memberships."""
    return {key: value for key, value in resource.items() if key != "members"}


def primary_email(resource: dict[str, Any]) -> str:
    emails = resource.get("emails") or []
    if type(emails) is list and emails:
        first = emails[0]
        if type(first) is dict and first.get("primary") and "value" in first:  # the usual case, told at once
            return str(first["value"])[:320]
    chosen = next((e for e in emails if isinstance(e, dict) and e.get("primary")), emails[0] if emails else None)
    return str(chosen.get("value", ""))[:320] if isinstance(chosen, dict) else ""
