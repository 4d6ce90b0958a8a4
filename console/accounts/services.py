"""Writes about people, roles and API keys. Each one audits what it changed."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.http import HttpRequest
from django.utils import timezone

from console.accounts.models import (
    API_KEY_PREFIX,
    ApiKey,
    IdentityEvent,
    Person,
    PersonEmail,
    Role,
    Source,
    Team,
    TeamMembership,
    hash_api_key_secret,
)
from console.accounts.permissions import BUILTIN_ROLE_DESCRIPTIONS, BUILTIN_ROLE_PERMISSIONS, BuiltinRole, Perm
from console.accounts.selectors import active_local_admins, person_permissions_forget
from console.accounts.signals import identity_events_recorded
from console.audit.services import audit_record, changed_fields
from console.core.errors import ConsoleError, Refused


class AccessError(ConsoleError):
    """A request about people, teams or keys that the rules of the console refuse (400 bad input,
    on the ``field`` at fault when there is one); the message says why."""


class BreakGlassError(AccessError, Refused):
    """Refused because it would leave no active local admin (409)."""


class ScimManagedError(AccessError, Refused):
    """Refused because the identity provider owns this record while SCIM provisioning is on (409)."""


def scim_manages(record: Person | Team) -> bool:
    """Whether ``record`` is read-only in the console: pushed over SCIM while provisioning is on."""
    from console.core.models import ConsoleSettings

    return record.source == Source.SCIM and ConsoleSettings.load().scim_provisioning_enabled


SCIM_MANAGED_REASON = (
    "{name} is managed by the identity provider over SCIM: change it there. "
    "It is read-only here while SCIM provisioning is enabled (Settings > Sign-in)."
)


def _atomic_unless_via_scim[**P, R](service: Callable[P, R]) -> Callable[P, R]:
    """``transaction.atomic``, without a savepoint of its own when SCIM calls (``via_scim=True``).

    The SCIM services call these inside their own transaction, which undoes everything on
    any error; a savepoint per call would cost two more statements on every SCIM write.
    """

    @functools.wraps(service)
    def atomic_service(*args: P.args, **kwargs: P.kwargs) -> R:
        with transaction.atomic(savepoint=not kwargs.get("via_scim", False)):
            return service(*args, **kwargs)

    return atomic_service


def _refuse_scim_managed(record: Person | Team, *, via_scim: bool) -> None:
    if not via_scim and scim_manages(record):
        raise ScimManagedError(SCIM_MANAGED_REASON.format(name=str(record)))


PERSON_EDITABLE_FIELDS = [
    "username",
    "external_id",
    "given_name",
    "family_name",
    "display_name",
    "title",
    "email",
    "employee_number",
    "cost_center",
    "organization",
    "division",
    "department",
    "manager",
]
# Also written by the SCIM service provider, which carries more of the person.
PERSON_WRITABLE_FIELDS = [
    *PERSON_EDITABLE_FIELDS,
    "manager_id",
    "nick_name",
    "middle_name",
    "honorific_prefix",
    "honorific_suffix",
    "formatted_name",
    "user_type",
    "preferred_language",
    "locale",
    "timezone",
    "phone_numbers",
    "emails",
    "scim_attributes",
]


BUILTIN_ROLE_LABELS = {
    BuiltinRole.ADMIN: "Admin",
    BuiltinRole.OPERATOR: "Operator",
    BuiltinRole.VIEWER: "Viewer",
    BuiltinRole.SCIM_PROVISIONER: "SCIM provisioner",
}


def builtin_roles_ensure(*, using: str = "default") -> None:
    """Create or repair the built-in roles (they are not editable, so repair is safe)."""
    for role, permissions in BUILTIN_ROLE_PERMISSIONS.items():
        Role.objects.using(using).update_or_create(
            name=role.value,
            defaults={
                "label": BUILTIN_ROLE_LABELS[role],
                "description": BUILTIN_ROLE_DESCRIPTIONS[role],
                "is_builtin": True,
                "permissions": sorted(p.value for p in permissions),
            },
        )


# --- people ---------------------------------------------------------------------------


@transaction.atomic
def person_create(
    *,
    actor: Person | None,
    username: str,
    password: str | None = None,
    roles: Iterable[Role] = (),
    request: HttpRequest | None = None,
    **fields: Any,
) -> Person:
    """Create a local person. Without a password they cannot sign in until one is set."""
    if Person.objects.filter(username__iexact=username).exists():
        raise AccessError(f"A person with the user name {username!r} already exists.", "username")
    person = Person(username=username, source=fields.pop("source", Source.LOCAL), **fields)
    if password:
        validate_password(password, person)
        person.set_password(password)
    else:
        person.set_unusable_password()
    person.save()
    role_list = list(roles)
    person.roles.set(role_list)
    identity_event_record(person=person, kind=IdentityEvent.Kind.CREATED, changes={"username": person.username})
    audit_record(
        verb="person.created",
        actor=actor,
        target=person,
        request=request,
        after={"username": person.username, "email": person.email, "roles": sorted(r.name for r in role_list)},
    )
    return person


@_atomic_unless_via_scim
def person_update(
    *, actor: Person | None, person: Person, request: HttpRequest | None = None, via_scim: bool = False, **fields: Any
) -> Person:
    _refuse_scim_managed(person, via_scim=via_scim)
    unknown = set(fields) - set(PERSON_WRITABLE_FIELDS)
    if unknown:
        raise AccessError(f"These fields cannot be changed: {', '.join(sorted(unknown))}.")
    if (
        "username" in fields
        and fields["username"].lower() != person.username.lower()
        and Person.objects.filter(username__iexact=fields["username"]).exclude(pk=person.pk).exists()
    ):
        raise AccessError(f"A person with the user name {fields['username']!r} already exists.", "username")
    original = {name: getattr(person, name) for name in fields}
    for name, value in fields.items():
        if name != "emails":
            setattr(person, name, value)
    if "emails" in fields and fields["emails"] != original["emails"]:
        person_emails_set(person=person, emails=fields["emails"])
    before, after = changed_fields(person, original, list(fields))
    if before or after:
        person.save()
        identity_event_record(
            person=person, kind=IdentityEvent.Kind.UPDATED, changes={"before": before, "after": after}
        )
        audit_record(verb="person.updated", actor=actor, target=person, request=request, before=before, after=after)
    return person


LAST_ADMIN_REASON = "This is the last active local admin; grant admin to someone else first."
TEAM_LAST_ADMIN_REASON = "This team grants admin to the last active local admin; grant admin elsewhere first."


def _local_admin_would_remain(
    *,
    deactivating: Person | None = None,
    direct_admin_lost_by: Person | None = None,
    team_losing_admin: Team | None = None,
    leaving: tuple[Team, Iterable[int] | None] | None = None,
) -> bool:
    """Whether an active local admin would remain after the described change.

    The one break-glass check: every service that can take admin away (deactivation,
    direct roles, a team's roles, team membership, team deletion) asks it. It locks the
    admin role row first, so two concurrent changes cannot each remove a different last
    admin. A console that has no local admin to begin with refuses nothing.
    """
    admin_role = Role.objects.select_for_update().filter(name=BuiltinRole.ADMIN).first()
    if admin_role is None:
        return True
    direct = Person.roles.through.objects.filter(role=admin_role)
    if direct_admin_lost_by is not None:
        direct = direct.exclude(person_id=direct_admin_lost_by.pk)
    via_teams = TeamMembership.objects.filter(team__roles=admin_role)
    if team_losing_admin is not None:
        via_teams = via_teams.exclude(team=team_losing_admin)
    if leaving is not None:
        team, person_ids = leaving
        via_teams = (
            via_teams.exclude(team=team)
            if person_ids is None
            else via_teams.exclude(team=team, person_id__in=set(person_ids))
        )
    after = Person.objects.filter(is_active=True, source=Source.LOCAL).filter(
        Q(pk__in=direct.values("person_id")) | Q(pk__in=via_teams.values("person_id"))
    )
    if deactivating is not None:
        after = after.exclude(pk=deactivating.pk)
    if after.exists():
        return True
    return not active_local_admins().exists()


def _refuse_unless_local_admin_remains(reason: str = LAST_ADMIN_REASON, **change: Any) -> None:
    if not _local_admin_would_remain(**change):
        raise BreakGlassError(reason)


@_atomic_unless_via_scim
def person_set_roles(
    *,
    actor: Person | None,
    person: Person,
    roles: Iterable[Role],
    request: HttpRequest | None = None,
    via_scim: bool = False,
) -> Person:
    """Replace the person's direct roles (team roles are unaffected)."""
    _refuse_scim_managed(person, via_scim=via_scim)
    new_roles = list(roles)
    before = sorted(r.name for r in person.roles.all())
    after = sorted(r.name for r in new_roles)
    if BuiltinRole.ADMIN in before and BuiltinRole.ADMIN not in after:
        _refuse_unless_local_admin_remains(direct_admin_lost_by=person)
    if before != after:
        person.roles.set(new_roles)
        person_permissions_forget(person=person)
        # The person's SCIM version (ETag) and last-modified follow their roles too.
        person.save(update_fields=["updated_at"])
        identity_event_record(
            person=person,
            kind=IdentityEvent.Kind.UPDATED,
            changes={"before": {"roles": before}, "after": {"roles": after}},
        )
        audit_record(
            verb="person.roles_changed",
            actor=actor,
            target=person,
            request=request,
            before={"roles": before},
            after={"roles": after},
        )
    return person


def sessions_end_for(*, person: Person) -> None:
    """Sign the person out everywhere: one UPDATE, whatever the number of sessions.

    Raising the generation changes the person's session auth hash, so Django refuses each
    of their sessions on its next request (and a reactivation does not bring them back).
    """
    Person.objects.filter(pk=person.pk).update(session_generation=F("session_generation") + 1)
    person.refresh_from_db(fields=["session_generation"])


@_atomic_unless_via_scim
def person_set_active(
    *,
    actor: Person | None,
    person: Person,
    active: bool,
    request: HttpRequest | None = None,
    via_scim: bool = False,
) -> Person:
    """Activate or deactivate. Deactivation ends sessions; the person's keys stop working."""
    _refuse_scim_managed(person, via_scim=via_scim)
    if person.is_active == active:
        return person
    if not active and person.source == Source.LOCAL:  # only local people count as break-glass admins
        _refuse_unless_local_admin_remains(
            "This is the last active local admin; it cannot be deactivated.", deactivating=person
        )
    person.is_active = active
    ended = []
    if not active:  # ends every session (see sessions_end_for), in the same UPDATE
        person.session_generation = F("session_generation") + 1
        ended = ["session_generation"]
    person.save(update_fields=["is_active", "updated_at", *ended])
    if ended:  # the new generation is read back only if something asks for it
        del person.session_generation
    identity_event_record(
        person=person, kind=IdentityEvent.Kind.REACTIVATED if active else IdentityEvent.Kind.DEACTIVATED
    )
    audit_record(
        verb="person.activated" if active else "person.deactivated",
        actor=actor,
        target=person,
        request=request,
        before={"active": not active},
        after={"active": active},
    )
    return person


@transaction.atomic
def person_set_password(
    *, actor: Person | None, person: Person, password: str, request: HttpRequest | None = None, validate: bool = True
) -> Person:
    if validate:
        validate_password(password, person)
    person.set_password(password)
    person.save(update_fields=["password", "updated_at"])
    audit_record(verb="person.password_set", actor=actor, target=person, request=request)
    return person


# --- identity events, emails and teams ------------------------------------------------


def identity_event_record(
    *, person: Person, kind: str, changes: dict[str, Any] | None = None, team: Team | None = None
) -> IdentityEvent:
    """Write an identity event; call inside the transaction that makes the change."""
    event = IdentityEvent.objects.create(
        person=person,
        kind=kind,
        changes=changes or {},
        team=team,
        team_name=team.name if team else "",
        source=person.source,
    )
    identity_events_recorded.send(sender=IdentityEvent, count=1)
    return event


def person_emails_set(*, person: Person, emails: list[dict[str, Any]], new: bool = False) -> None:
    """Keep the queryable email rows and the primary email in step with ``person.emails``.

    ``new``: a person not saved yet, saved here with the emails in the same INSERT.
    """
    person.emails = emails
    primary = next((e for e in emails if e.get("primary")), emails[0] if emails else None)
    person.email = str(primary.get("value", "")) if primary else ""
    if new:
        person.save()
    else:
        PersonEmail.objects.filter(person=person).delete()
    PersonEmail.objects.bulk_create(
        PersonEmail(
            person=person,
            value=str(e.get("value", ""))[:320],
            type=str(e.get("type") or "")[:32],
            primary=bool(e.get("primary")),
        )
        for e in emails
        if e.get("value")
    )


def _team_touch(team: Team) -> None:
    """Members are part of a team's SCIM version (ETag), so a member change moves it on."""
    team.updated_at = timezone.now()
    Team.objects.filter(pk=team.pk).update(updated_at=team.updated_at)


def team_members_add(*, team: Team, person_ids: Iterable[int], displays: dict[int, str] | None = None) -> list[int]:
    """Add people to a team; returns who was newly added. Costs the same for any team size."""
    wanted = set(person_ids)
    displays = displays or {}
    if not wanted:
        return []
    already = set(TeamMembership.objects.filter(team=team, person_id__in=wanted).values_list("person_id", flat=True))
    new = sorted(wanted - already)
    if not new:
        return []
    TeamMembership.objects.bulk_create(
        [TeamMembership(team=team, person_id=pk, display=displays.get(pk, "")[:255]) for pk in new],
        ignore_conflicts=True,
    )
    IdentityEvent.objects.bulk_create(
        IdentityEvent(
            person_id=pk, kind=IdentityEvent.Kind.JOINED_TEAM, team=team, team_name=team.name, source=team.source
        )
        for pk in new
    )
    identity_events_recorded.send(sender=IdentityEvent, count=len(new))
    _team_touch(team)
    return new


def team_members_remove(*, team: Team, person_ids: Iterable[int] | None) -> list[int]:
    """Remove the given people (``None``: everyone) from a team; returns who left.

    Refused (:class:`BreakGlassError`) when it would leave no active local admin, whoever
    asks: SCIM, the UI or the API.
    """
    memberships = TeamMembership.objects.filter(team=team)
    if person_ids is not None:
        memberships = memberships.filter(person_id__in=set(person_ids))
    gone = list(memberships.values_list("person_id", flat=True))
    if not gone:
        return []
    if team.roles.filter(name=BuiltinRole.ADMIN).exists():
        _refuse_unless_local_admin_remains(TEAM_LAST_ADMIN_REASON, leaving=(team, None if person_ids is None else gone))
    memberships.delete()
    IdentityEvent.objects.bulk_create(
        IdentityEvent(
            person_id=pk, kind=IdentityEvent.Kind.LEFT_TEAM, team=team, team_name=team.name, source=team.source
        )
        for pk in gone
    )
    identity_events_recorded.send(sender=IdentityEvent, count=len(gone))
    _team_touch(team)
    return gone


@transaction.atomic
def team_create(
    *,
    actor: Person | None,
    name: str,
    description: str = "",
    roles: Iterable[Role] = (),
    request: HttpRequest | None = None,
) -> Team:
    """Make a local team (teams an identity provider pushes come in over SCIM)."""
    name = name.strip()
    if not name:
        raise AccessError("Give the team a name.", "name")
    if Team.objects.filter(name__iexact=name).exists():
        raise AccessError(f"A team named {name!r} exists already (team names ignore case).", "name")
    try:
        with transaction.atomic():  # the unique index decides between two requests at once
            team = Team.objects.create(name=name[:255], description=description, source=Source.LOCAL)
    except IntegrityError:
        raise AccessError(f"A team named {name!r} exists already (team names ignore case).", "name") from None
    role_list = list(roles)
    team.roles.set(role_list)
    audit_record(
        verb="team.created",
        actor=actor,
        target=team,
        request=request,
        after={"name": team.name, "roles": sorted(r.name for r in role_list)},
    )
    return team


@transaction.atomic
def team_members_change(
    *,
    actor: Person | None,
    team: Team,
    add: Iterable[Person] = (),
    remove: Iterable[Person] = (),
    request: HttpRequest | None = None,
) -> tuple[list[int], list[int]]:
    """Add and remove members of a team from the console; returns (added, removed) ids.

    Teams SCIM manages keep the membership their identity provider sends.
    """
    _refuse_scim_managed(team, via_scim=False)
    newcomers = list(add)
    if any(p.removed_at is not None for p in newcomers):
        raise AccessError("People an identity provider removed cannot join teams.", "members")
    added = team_members_add(team=team, person_ids=[p.pk for p in newcomers])
    removed = team_members_remove(team=team, person_ids=[p.pk for p in remove])
    if added or removed:
        names = dict(Person.objects.filter(pk__in=[*added, *removed]).values_list("pk", "username"))
        audit_record(
            verb="team.members_changed",
            actor=actor,
            target=team,
            request=request,
            details={"added": [names[pk] for pk in added], "removed": [names[pk] for pk in removed]},
        )
    return added, removed


@transaction.atomic
def team_delete(*, actor: Person | None, team: Team, request: HttpRequest | None = None) -> None:
    """Delete a team made in the console; its members lose the roles it granted."""
    _refuse_scim_managed(team, via_scim=False)
    roles = sorted(team.roles.values_list("name", flat=True))
    gone = team_members_remove(team=team, person_ids=None)
    audit_record(
        verb="team.deleted",
        actor=actor,
        target=team,
        request=request,
        before={"name": team.name, "roles": roles, "members": len(gone)},
    )
    team.delete()


@transaction.atomic
def person_teams_leave(*, actor: Person | None, person: Person, request: HttpRequest | None = None) -> list[str]:
    """Take the person out of every team (each with a left-team event); returns the team names."""
    left = []
    for team in Team.objects.filter(memberships__person=person).order_by("name"):
        team_members_remove(team=team, person_ids=[person.pk])
        audit_record(
            verb="team.members_changed",
            actor=actor,
            target=team,
            request=request,
            details={"added": [], "removed": [person.username]},
        )
        left.append(team.name)
    return left


@transaction.atomic
def team_set_roles(
    *, actor: Person | None, team: Team, roles: Iterable[Role], request: HttpRequest | None = None
) -> Team:
    """Set the roles a team grants its members (the group-to-role mapping)."""
    new_roles = list(roles)
    before = sorted(r.name for r in team.roles.all())
    after = sorted(r.name for r in new_roles)
    if before == after:
        return team
    if BuiltinRole.ADMIN in before and BuiltinRole.ADMIN not in after:
        _refuse_unless_local_admin_remains(TEAM_LAST_ADMIN_REASON, team_losing_admin=team)
    team.roles.set(new_roles)
    audit_record(
        verb="team.roles_changed",
        actor=actor,
        target=team,
        request=request,
        before={"roles": before},
        after={"roles": after},
    )
    return team


# --- API keys -------------------------------------------------------------------------


@dataclass(frozen=True)
class NewApiKey:
    """A freshly made key: ``token`` is the only time the full key exists outside a hash."""

    key: ApiKey
    token: str


def parse_api_key(token: str) -> tuple[str, str] | None:
    parts = token.split("_", 2)  # the secret itself may hold "_"
    if len(parts) != 3 or parts[0] != API_KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


@transaction.atomic
def api_key_create(
    *,
    actor: Person,
    owner: Person,
    name: str,
    expires_at: datetime | None = None,
    request: HttpRequest | None = None,
) -> NewApiKey:
    """Make a key for ``owner``. Only admins make keys for someone else."""
    name = name.strip()
    if not name:
        raise AccessError("Give the key a name, so you can recognise it later.", "name")
    if owner.pk != actor.pk and not actor.has_console_permission(Perm.MANAGE_PEOPLE):
        raise AccessError("Only admins can create keys for someone else.", "owner")
    if not owner.is_active:
        raise AccessError("Keys cannot be created for an inactive person.", "owner")
    if expires_at is not None and expires_at <= timezone.now():
        raise AccessError("The expiry date must be in the future.", "expires_at")
    prefix = secrets.token_hex(4)
    while ApiKey.objects.filter(prefix=prefix).exists():
        prefix = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        owner=owner,
        name=name[:100],
        prefix=prefix,
        secret_hash=hash_api_key_secret(secret),
        created_by=actor,
        expires_at=expires_at,
    )
    audit_record(
        verb="api_key.created",
        actor=actor,
        target=key,
        request=request,
        details={"owner": owner.username, "name": key.name, "prefix": prefix},
    )
    return NewApiKey(key=key, token=f"{API_KEY_PREFIX}_{prefix}_{secret}")


@transaction.atomic
def api_key_revoke(*, actor: Person, key: ApiKey, request: HttpRequest | None = None) -> ApiKey:
    """Revoke a key. Revoking an already revoked key changes nothing."""
    if key.owner_id != actor.pk and not actor.has_console_permission(Perm.MANAGE_PEOPLE):
        raise AccessError("Only admins can revoke someone else's key.")
    now = timezone.now()
    # Claimed by one statement: of two parallel revocations, one revokes and records it.
    if not ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=now, revoked_by=actor):
        key.refresh_from_db(fields=["revoked_at", "revoked_by"])
        return key
    key.revoked_at = now
    key.revoked_by = actor
    audit_record(
        verb="api_key.revoked",
        actor=actor,
        target=key,
        request=request,
        details={"owner": key.owner.username, "name": key.name, "prefix": key.prefix},
    )
    return key
