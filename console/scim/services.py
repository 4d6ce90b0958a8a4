"""SCIM writes: people and teams change through the accounts services, audited, with events."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from console.accounts.models import IdentityEvent, Person, Role, Source, Team
from console.accounts.services import (
    identity_event_record,
    person_emails_set,
    person_set_active,
    person_set_roles,
    person_teams_leave,
    person_update,
    team_members_add,
    team_members_remove,
)
from console.audit.services import audit_context, audit_record
from console.core.db import first_raw
from console.scim.errors import ScimError, invalid_syntax, invalid_value, not_found, uniqueness
from console.scim.ids import ids_q, parse_id
from console.scim.patch import apply_user_patch, operation_kind
from console.scim.resources import as_text, user_fields_from_scim, user_to_scim


def _roles_named(names: list[str]) -> list[Role]:
    roles = list(Role.objects.filter(name__in=names))
    unknown = sorted(set(names) - {r.name for r in roles})
    if unknown:
        raise invalid_value(f"Unknown roles: {', '.join(unknown)}. Known: admin, operator, viewer, scim_provisioner.")
    return roles


LOCAL_ACCOUNT_REASON = (
    "User {pk} is a local console account. SCIM changes only the people it provisioned; "
    "local accounts (such as the break-glass admin) are changed in the console."
)


def _refuse_local(person: Person) -> None:
    """Local accounts are readable over SCIM but never written: no takeover by the identity provider."""
    if person.source != Source.SCIM:
        raise ScimError(403, LOCAL_ACCOUNT_REASON.format(pk=person.scim_id))


def _user_name_clash(user_name: str, *, exclude: Person | None = None) -> ScimError | None:
    clash = Person.objects.filter(username__iexact=user_name)
    if exclude is not None:
        clash = clash.exclude(pk=exclude.pk)
    other = clash.only("pk", "source").first()
    return None if other is None else _clash_error(other, user_name)


def _clash_error(other: Person, user_name: str) -> ScimError:
    if other.source != Source.SCIM:
        return uniqueness(
            f"userName {user_name!r} belongs to a local console account, which SCIM does not take over. "
            "Rename one of them, or remove the local account in the console first."
        )
    return uniqueness(f"userName {user_name!r} is already taken.")


def roles_known(person: Person, roles: list[Role]) -> None:
    """Remember a person's direct roles as if prefetched, so the SCIM document reads none back."""
    known = Role.objects.filter(pk__in=[role.pk for role in roles])
    known._result_cache = sorted(roles, key=lambda role: role.name)  # Role's ordering
    cache = getattr(person, "_prefetched_objects_cache", {})
    setattr(person, "_prefetched_objects_cache", {**cache, "roles": known})  # noqa: B010 - Django's own slot


def _write_user(
    *, person: Person, fields: dict[str, Any], actor: Person, request: HttpRequest, created: bool
) -> Person:
    roles = fields.pop("roles", None)
    active = fields.pop("is_active", None)
    # A creation was checked by its caller; an update only when the userName changes.
    if not created and fields["username"].lower() != person.username.lower():
        clash = _user_name_clash(fields["username"], exclude=person)
        if clash is not None:
            raise clash
    try:
        if created:
            emails = fields.pop("emails")
            for name, value in fields.items():
                setattr(person, name, value)
            person.source = Source.SCIM
            person.set_unusable_password()
            created_with: dict[str, Any] = {"username": person.username}
            if active is False:  # created inactive: part of the creation, not a later deactivation
                person.is_active = False
                created_with["active"] = False
            active = None
            person_emails_set(person=person, emails=emails, new=True)
            role_list = _roles_named(roles) if roles else []
            if role_list:  # the roles a person starts with belong to the creation, not to a later change
                person.roles.set(role_list)
                created_with["roles"] = sorted(r.name for r in role_list)
            roles_known(person, role_list)
            roles = None
            identity_event_record(person=person, kind=IdentityEvent.Kind.CREATED, changes=created_with)
        else:
            # Only what differs goes to the service: an unchanged attribute costs nothing.
            changes = {name: value for name, value in fields.items() if getattr(person, name) != value}
            if changes:
                person_update(actor=actor, person=person, request=request, via_scim=True, **changes)
        if roles is not None:
            person_set_roles(actor=actor, person=person, roles=_roles_named(roles), request=request, via_scim=True)
        if active is not None and active != person.is_active:
            person_set_active(actor=actor, person=person, active=active, request=request, via_scim=True)
    except DjangoValidationError as exc:
        raise invalid_value(" ".join(exc.messages)) from exc
    except IntegrityError as exc:
        raise uniqueness("That userName is already taken.") from exc
    return person


def _person_named_for_update(user_name: str) -> Person | None:
    """The person whose userName equals ``user_name`` ignoring case, locked; as ``username__iexact``.

    A plain statement on the ``upper(username)`` index: every SCIM POST asks it.
    """
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    named = f"SELECT * FROM {Person._meta.db_table} WHERE UPPER(username) = UPPER(%s) ORDER BY id{lock}"  # noqa: S608
    return first_raw(Person, named, [user_name])


@transaction.atomic
def scim_user_create(*, body: dict[str, Any], actor: Person, request: HttpRequest) -> tuple[Person, bool]:
    """Create a person, or re-hire the one a previous DELETE removed. Returns (person, rehired)."""
    fields = user_fields_from_scim(body)
    # userName is unique case-insensitively, so one look-up tells a re-hire from a clash.
    existing = _person_named_for_update(fields["username"])
    if existing is not None and existing.removed_at is not None and existing.source == Source.SCIM:
        existing.removed_at = None
        existing.save(update_fields=["removed_at", "updated_at"])
        fields.setdefault("is_active", True)
        with audit_context(via="scim", method="POST"):
            person = _write_user(person=existing, fields=fields, actor=actor, request=request, created=False)
        audit_record(
            verb="scim.user.rehired", actor=actor, target=person, request=request, after={"userName": person.username}
        )
        return person, True
    if existing is not None:
        raise _clash_error(existing, fields["username"])
    roles = sorted(set(fields.get("roles") or []))  # _write_user refuses unknown ones
    person = _write_user(person=Person(), fields=fields, actor=actor, request=request, created=True)
    audit_record(
        verb="scim.user.created",
        actor=actor,
        target=person,
        request=request,
        after={"id": str(person.scim_id), "userName": person.username, "active": person.is_active, "roles": roles},
    )
    return person, False


@transaction.atomic
def scim_user_replace(*, person: Person, body: dict[str, Any], actor: Person, request: HttpRequest) -> Person:
    """Each change is audited once, by the service that makes it, marked as a SCIM replace."""
    _refuse_local(person)
    fields = user_fields_from_scim(body)
    with audit_context(via="scim", method="PUT"):
        return _write_user(person=person, fields=fields, actor=actor, request=request, created=False)


@transaction.atomic
def scim_user_patch(*, person: Person, operations: list[dict[str, Any]], actor: Person, request: HttpRequest) -> Person:
    _refuse_local(person)
    document = user_to_scim(person, request)
    patched = apply_user_patch(document, operations)
    fields = user_fields_from_scim(patched)
    if "active" not in patched and "active" in document:
        # Removed: the attribute is unassigned, and without an assertion of "active" nobody signs in.
        fields["is_active"] = False
        fields["scim_attributes"]["activeUnassigned"] = True
    if "roles" not in patched and "roles" in document:
        fields["roles"] = []  # removed: no direct roles any more
    elif patched.get("roles") == document.get("roles"):
        fields.pop("roles", None)
    # Each change is audited once, by the service that makes it, with the operations that asked for it.
    asked = [{"op": o.get("op"), "path": o.get("path")} for o in operations]
    with audit_context(via="scim", method="PATCH", operations=asked):
        return _write_user(person=person, fields=fields, actor=actor, request=request, created=False)


@transaction.atomic
def scim_user_delete(*, person: Person, actor: Person, request: HttpRequest) -> None:
    """Deactivate, leave every team, drop direct roles and mark removed; the record and its audit trail stay.

    A later POST with the same userName re-hires the person with only what that POST grants.
    """
    _refuse_local(person)
    with audit_context(via="scim", method="DELETE"):
        person_set_active(actor=actor, person=person, active=False, request=request, via_scim=True)
        teams_left = person_teams_leave(actor=actor, person=person, request=request)
        person_set_roles(actor=actor, person=person, roles=[], request=request, via_scim=True)
    person.removed_at = timezone.now()
    person.save(update_fields=["removed_at", "updated_at"])
    identity_event_record(person=person, kind=IdentityEvent.Kind.DELETED, changes={"teams_left": teams_left})
    audit_record(
        verb="scim.user.deleted", actor=actor, target=person, request=request, details={"teams_left": teams_left}
    )


# --- groups ---------------------------------------------------------------------------


def _member_entries(value: Any) -> tuple[list[Any], list[int | uuid.UUID]]:
    """The members ``value`` lists (or the one it is), and the id each gives: a SCIM id or an old key."""
    entries = value if isinstance(value, list) else [value]
    idents: list[int | uuid.UUID] = []
    for entry in entries:
        raw = entry.get("value") if isinstance(entry, dict) else entry
        ident = parse_id(raw if isinstance(raw, int) else str(raw))
        if ident is None:
            raise invalid_value(f"Member {raw!r} is not a user id.")
        idents.append(ident)
    return entries, idents


def _members(value: Any) -> tuple[list[int], dict[int, str]]:
    """The keys of the people ``value`` names (by SCIM id or old key) and the displays it sends.

    One indexed query at any group size; a member who is unknown or removed is refused.
    """
    entries, idents = _member_entries(value)
    if not idents:
        return [], {}
    keys: dict[int | uuid.UUID, int] = {}
    for pk, scim_id in Person.objects.filter(ids_q(idents), removed_at__isnull=True).values_list("pk", "scim_id"):
        keys[pk] = keys[scim_id] = pk
    missing = sorted({str(ident) for ident in idents if ident not in keys})
    if missing:
        raise invalid_value(f"Unknown users: {', '.join(missing)}.")
    displays = {
        keys[ident]: str(entry["display"])
        for entry, ident in zip(entries, idents, strict=True)
        if isinstance(entry, dict) and isinstance(entry.get("display"), str)
    }
    return [keys[ident] for ident in idents], displays


def _member_keys(value: Any) -> list[int]:
    """The keys of the people ``value`` names, to remove: old keys as given, SCIM ids through one
    indexed query. An id that names nobody removes nothing."""
    _, idents = _member_entries(value)
    keys = [ident for ident in idents if isinstance(ident, int)]
    scim_ids = [ident for ident in idents if isinstance(ident, uuid.UUID)]
    if scim_ids:
        keys += Person.objects.filter(scim_id__in=scim_ids).values_list("pk", flat=True)
    return keys


def _group_name(body: dict[str, Any], team: Team | None) -> str:
    name = as_text(body.get("displayName"), "displayName").strip()
    if not name:
        raise invalid_value("displayName is required.")
    clash = Team.objects.filter(name__iexact=name)
    if team is not None:
        clash = clash.exclude(pk=team.pk)
    if clash.exists():
        raise uniqueness(f"A group named {name!r} exists already.")
    return name[:255]


@transaction.atomic
def scim_group_create(*, body: dict[str, Any], actor: Person, request: HttpRequest) -> Team:
    team = Team.objects.create(
        name=_group_name(body, None),
        external_id=as_text(body.get("externalId"), "externalId")[:255],
        source=Source.SCIM,
    )
    members, displays = _members(body.get("members") or [])
    added = team_members_add(team=team, person_ids=members, displays=displays)
    audit_record(
        verb="scim.group.created",
        actor=actor,
        target=team,
        request=request,
        after={"id": str(team.scim_id), "displayName": team.name, "members_added": len(added)},
    )
    return team


@transaction.atomic
def scim_group_replace(*, team: Team, body: dict[str, Any], actor: Person, request: HttpRequest) -> Team:
    team.name = _group_name(body, team)
    team.external_id = as_text(body.get("externalId"), "externalId")[:255]
    team.save()
    wanted = set(_members(body.get("members") or [])[0])
    current = set(team.memberships.values_list("person_id", flat=True))
    added = team_members_add(team=team, person_ids=wanted - current)
    removed = team_members_remove(team=team, person_ids=current - wanted)
    audit_record(
        verb="scim.group.replaced",
        actor=actor,
        target=team,
        request=request,
        details={"members_added": added, "members_removed": removed},
    )
    return team


@transaction.atomic
def scim_group_patch(*, team: Team, operations: list[dict[str, Any]], actor: Person, request: HttpRequest) -> Team:
    """Member changes cost the same queries for a group of 10 as for one of 50,000."""
    from console.scim.patch import PATH, parse_value_filter

    added: list[int] = []
    removed: list[int] = []
    renamed: dict[str, Any] = {}
    for operation in operations:
        kind = operation_kind(operation)
        path = operation.get("path")
        value = operation.get("value")
        if path in (None, ""):
            if kind == "remove" or not isinstance(value, dict):
                raise invalid_syntax("Without a path, add and replace take an object of attributes.")
            for key, item in value.items():
                operations_for_key(team, key, item, kind, added, removed, renamed)
            continue
        match = PATH.match(str(path))
        if match is None:
            raise ScimError(400, f"Cannot read the path {path!r}.", "invalidPath")
        attribute = match.group("attr").lower()
        if attribute == "members" and match.group("filter"):
            if kind != "remove":
                raise ScimError(400, "Only remove takes a members[…] path.", "invalidPath")
            filter_attribute, member = parse_value_filter(match.group("filter"))
            if filter_attribute.lower() != "value":
                raise ScimError(400, "Members are selected by value.", "invalidFilter")
            removed += team_members_remove(team=team, person_ids=_member_keys(member))
            continue
        if match.group("filter") or match.group("sub"):
            raise ScimError(400, f"Unsupported path {path!r}.", "invalidPath")
        operations_for_key(team, attribute, value, kind, added, removed, renamed)
    if renamed:  # member changes already moved the group's version (updated_at) on
        for field, item in renamed.items():
            setattr(team, field, item)
        team.save()
    audit_record(
        verb="scim.group.patched",
        actor=actor,
        target=team,
        request=request,
        details={
            "members_added": added[:100],
            "members_removed": removed[:100],
            "count_added": len(added),
            "count_removed": len(removed),
            **renamed,
        },
    )
    return team


def operations_for_key(
    team: Team, key: str, value: Any, kind: str, added: list[int], removed: list[int], renamed: dict[str, Any]
) -> None:
    key = key.lower()
    if key == "members":
        if kind == "add":
            members, displays = _members(value or [])
            added += team_members_add(team=team, person_ids=members, displays=displays)
        elif kind == "remove":
            removed += team_members_remove(team=team, person_ids=None if value in (None, []) else _member_keys(value))
        else:
            members, displays = _members(value or [])
            wanted = set(members)
            removed += team_members_remove(
                team=team,
                person_ids=set(team.memberships.exclude(person_id__in=wanted).values_list("person_id", flat=True)),
            )
            added += team_members_add(team=team, person_ids=wanted, displays=displays)
    elif key == "displayname":
        if kind == "remove":
            raise ScimError(400, "displayName is required.", "mutability")
        renamed["name"] = _group_name({"displayName": value}, team)
    elif key == "externalid":
        renamed["external_id"] = "" if kind == "remove" else as_text(value, "externalId")[:255]
    elif key == "id" and kind != "remove" and str(value) in {str(team.scim_id), str(team.pk)}:
        pass  # Okta repeats the group's own id in a replace without a path
    elif key in {"id", "meta", "schemas"}:
        raise ScimError(400, f"{key} is read-only.", "mutability")
    else:
        raise ScimError(400, f"Unknown attribute {key!r}.", "invalidPath")


@transaction.atomic
def scim_group_delete(*, team: Team, actor: Person, request: HttpRequest) -> None:
    removed = team_members_remove(team=team, person_ids=None)
    audit_record(
        verb="scim.group.deleted",
        actor=actor,
        target=team,
        request=request,
        before={"displayName": team.name, "members": len(removed)},
    )
    team.delete()


def not_found_user() -> ScimError:
    return not_found("No such user.")
