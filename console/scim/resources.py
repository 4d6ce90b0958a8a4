"""People and teams as SCIM resources, and SCIM payloads back into field values."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import F
from django.http import HttpRequest
from django.urls import reverse

from console.accounts.models import Person, Team
from console.scim.errors import ScimError, invalid_value
from console.scim.filters import CORE_GROUP, CORE_USER, ENTERPRISE
from console.scim.ids import id_q, parse_id

USER_SCHEMAS = [CORE_USER, ENTERPRISE]
SIMPLE_USER_FIELDS = {
    "externalId": "external_id",
    "displayName": "display_name",
    "nickName": "nick_name",
    "title": "title",
    "userType": "user_type",
    "preferredLanguage": "preferred_language",
    "locale": "locale",
    "timezone": "timezone",
}
# Kept as sent, in Person.scim_attributes.
EXTRA_USER_ATTRIBUTES = ["profileUrl", "ims", "photos", "addresses", "entitlements", "x509Certificates"]
NAME_FIELDS = {
    "givenName": "given_name",
    "familyName": "family_name",
    "middleName": "middle_name",
    "formatted": "formatted_name",
    "honorificPrefix": "honorific_prefix",
    "honorificSuffix": "honorific_suffix",
}
ENTERPRISE_FIELDS = {
    "employeeNumber": "employee_number",
    "costCenter": "cost_center",
    "organization": "organization",
    "division": "division",
    "department": "department",
}


def version_of(instance: Person | Team) -> str:
    return f'W/"{int(instance.updated_at.timestamp() * 1_000_000)}"'


def location(request: HttpRequest, kind: str, scim_id: uuid.UUID | str) -> str:
    return request.build_absolute_uri(reverse(f"scim:{kind}-detail", kwargs={"pk": str(scim_id)}))


def manager_scim_id(person: Person) -> uuid.UUID | None:
    """The SCIM id of the person's manager.

    Read with the person where the query can (``scim_manager_key`` and ``scim_manager_id``
    annotated, see :data:`MANAGER_ANNOTATIONS`), else once here; a changed manager is read anew.
    """
    if person.manager_id is None:
        return None
    if getattr(person, "scim_manager_key", None) != person.manager_id:
        found = Person.objects.filter(pk=person.manager_id).values_list("scim_id", flat=True).first()
        person.scim_manager_key, person.scim_manager_id = person.manager_id, found  # type: ignore[attr-defined]
    return getattr(person, "scim_manager_id", None)


# A page of users reads its managers' SCIM ids in the same query.
MANAGER_ANNOTATIONS = {"scim_manager_key": F("manager_id"), "scim_manager_id": F("manager__scim_id")}


def user_to_scim(person: Person, request: HttpRequest) -> dict[str, Any]:
    name = {key: getattr(person, field) for key, field in NAME_FIELDS.items() if getattr(person, field)}
    body: dict[str, Any] = {
        "schemas": list(USER_SCHEMAS),
        "id": str(person.scim_id),
        "userName": person.username,
    }
    if person.is_active or not person.scim_attributes.get("activeUnassigned"):
        body["active"] = person.is_active
    if name:
        body["name"] = name
    for key, field in SIMPLE_USER_FIELDS.items():
        if field and getattr(person, field):
            body[key] = getattr(person, field)
    if person.emails:
        body["emails"] = person.emails
    if person.phone_numbers:
        body["phoneNumbers"] = person.phone_numbers
    for key in EXTRA_USER_ATTRIBUTES:
        if person.scim_attributes.get(key) not in (None, "", []):
            body[key] = person.scim_attributes[key]
    sent_roles = {r.get("value"): r for r in person.scim_attributes.get("roles", []) if isinstance(r, dict)}
    roles = [sent_roles.get(role.name) or {"value": role.name, "display": role.label} for role in person.roles.all()]
    if roles:
        body["roles"] = roles
    enterprise = {key: getattr(person, field) for key, field in ENTERPRISE_FIELDS.items() if getattr(person, field)}
    manager = manager_scim_id(person)
    if manager is not None:
        enterprise["manager"] = {"value": str(manager), "$ref": location(request, "user", manager)}
    if enterprise:
        body[ENTERPRISE] = enterprise
    body["meta"] = {
        "resourceType": "User",
        "created": person.created_at.isoformat(),
        "lastModified": person.updated_at.isoformat(),
        "location": location(request, "user", person.scim_id),
        "version": version_of(person),
    }
    return body


def group_to_scim(team: Team, request: HttpRequest, *, with_members: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [CORE_GROUP], "id": str(team.scim_id), "displayName": team.name}
    if team.external_id:
        body["externalId"] = team.external_id
    if with_members:
        body["members"] = [
            {"value": str(sid), "display": display or username, "type": "User", "$ref": location(request, "user", sid)}
            for sid, username, display in team.memberships.order_by("person_id").values_list(
                "person__scim_id", "person__username", "display"
            )
        ]
    body["meta"] = {
        "resourceType": "Group",
        "created": team.created_at.isoformat(),
        "lastModified": team.updated_at.isoformat(),
        "location": location(request, "group", team.scim_id),
        "version": version_of(team),
    }
    return body


def as_bool(value: Any, attribute: str = "active") -> bool:
    """Entra ID sends booleans as the strings "True" and "False"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    raise invalid_value(f"{attribute} must be true or false.")


def as_text(value: Any, attribute: str) -> str:
    if value is None:
        return ""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise invalid_value(f"{attribute} must be a string.")


def bounded(value: str, field: str, attribute: str) -> str:
    """Refuse a value longer than its column rather than storing a cut-off copy."""
    limit = getattr(Person._meta.get_field(field), "max_length", None)
    if limit is not None and len(value) > limit:
        raise invalid_value(f"{attribute} is longer than {limit} characters.")
    return value


def user_fields_from_scim(body: dict[str, Any]) -> dict[str, Any]:
    """Field values from a full User resource (POST or PUT): absent attributes are cleared."""
    fields: dict[str, Any] = {}
    if "userName" not in body or not isinstance(body["userName"], str) or not body["userName"].strip():
        raise invalid_value("userName is required.")
    fields["username"] = bounded(body["userName"].strip(), "username", "userName")
    for key, field in SIMPLE_USER_FIELDS.items():
        if field:
            fields[field] = bounded(as_text(body.get(key), key), field, key)
    name = body.get("name") or {}
    if not isinstance(name, dict):
        raise invalid_value("name must be an object.")
    for key, field in NAME_FIELDS.items():
        fields[field] = bounded(as_text(name.get(key), f"name.{key}"), field, f"name.{key}")
    emails = body.get("emails") or []
    if not isinstance(emails, list) or not all(isinstance(e, dict) for e in emails):
        raise invalid_value("emails must be a list of objects.")
    fields["emails"] = [{k: v for k, v in e.items() if k in {"value", "type", "primary", "display"}} for e in emails]
    phones = body.get("phoneNumbers") or []
    if not isinstance(phones, list):
        raise invalid_value("phoneNumbers must be a list.")
    fields["phone_numbers"] = phones
    if "active" in body:
        fields["is_active"] = as_bool(body["active"])
    enterprise = body.get(ENTERPRISE) or {}
    if not isinstance(enterprise, dict):
        raise invalid_value("The enterprise extension must be an object.")
    for key, field in ENTERPRISE_FIELDS.items():
        fields[field] = bounded(as_text(enterprise.get(key), key), field, key)
    fields["manager_id"] = manager_id(enterprise.get("manager"))
    roles = body.get("roles")
    if roles is not None:
        fields["roles"] = role_names(roles)
    extras = {key: body[key] for key in EXTRA_USER_ATTRIBUTES if body.get(key) not in (None, "", [])}
    if isinstance(roles, list):
        extras["roles"] = [r for r in roles if isinstance(r, dict)]
    fields["scim_attributes"] = extras
    if body.get("password") not in (None, ""):
        raise ScimError(
            400,
            "Passwords are not accepted over SCIM (changePassword is not supported): "
            "turn off password sync for this application in the identity provider.",
            "mutability",
        )
    return fields


def manager_id(value: Any) -> int | None:
    """The key of the manager that ``value`` names by SCIM id or, as a client may have stored it, by key."""
    if value in (None, "", {}):
        return None
    raw = value.get("value") if isinstance(value, dict) else value
    if raw in (None, ""):
        return None
    ident = parse_id(raw if isinstance(raw, int) else str(raw))
    if ident is None:
        raise invalid_value("manager.value must be the id of a user.")
    pk = Person.objects.filter(id_q(ident)).values_list("pk", flat=True).first()
    if pk is None:
        raise invalid_value(f"manager {raw} is not a known user.")
    return pk


def role_names(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise invalid_value("roles must be a list.")
    names = []
    for entry in value:
        raw = entry.get("value") if isinstance(entry, dict) else entry
        if not isinstance(raw, str) or not raw.strip():
            raise invalid_value("Each role needs a value.")
        names.append(raw.strip())
    return names
