"""Changing lifecycle automation: policies, birthright mappings, sensitive groups.

Each change is validated here (a 400 naming the field), audited in its own transaction,
and, where it changes what automation wants, applied at once: a policy turned on asks for
its actions, a simulating one records its plan before the page shows it, a mapping added,
approved or deleted is followed for the people it concerns.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from console.accounts.models import Person, Team
from console.audit.services import audit_record
from console.core.errors import Conflict, InvalidInput, NotFound, Refused
from integrations.models import Integration, TargetGroup
from lifecycle.models import (
    BirthrightMapping,
    Grant,
    LeavingScope,
    LifecyclePolicy,
    MappingState,
    PolicyMode,
    SensitiveGroup,
)
from lifecycle.scope import conditions_clean, mapping_people, mapping_text, people_matching, scope_words
from provisioning.errors import ActionRefused

logger = logging.getLogger(__name__)

POLICY_FIELDS = (
    "mode",
    "all_active_people",
    "teams",
    "conditions",
    "pilot_team",
    "on_leaving_scope",
    "retention_days",
)
# The fields whose change alters who is in scope or what leaving it does.
SCOPE_FIELDS = ("all_active_people", "teams", "conditions", "pilot_team", "on_leaving_scope")
SCOPE_SAMPLE = 20


# --- policies --------------------------------------------------------------------------------


def _team_id(value: Any, field: str) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, Team):
        return value.pk
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.isdecimal())):
        raise InvalidInput("Give a team by its id.", field=field)
    number = int(value)
    if number > 2**62 or not Team.objects.filter(pk=number).exists():
        raise InvalidInput(f"There is no team with the id {number}.", field=field)
    return number


def policy_fields_clean(fields: Mapping[str, Any], current: LifecyclePolicy | None = None) -> dict[str, Any]:
    """The given fields, checked and in stored form (``teams`` as ids, ``pilot_team`` as an id);
    a field left out keeps its current value."""
    unknown = sorted(set(fields) - set(POLICY_FIELDS))
    if unknown:
        raise InvalidInput(f"A lifecycle policy has no field {unknown[0]!r}.", field=unknown[0])
    clean: dict[str, Any] = {}
    if "mode" in fields:
        if fields["mode"] not in PolicyMode.values:
            raise InvalidInput(f"The mode is one of {', '.join(PolicyMode.values)}.", field="mode")
        clean["mode"] = fields["mode"]
    if "all_active_people" in fields:
        if not isinstance(fields["all_active_people"], bool):
            raise InvalidInput("Everyone is true or false.", field="all_active_people")
        clean["all_active_people"] = fields["all_active_people"]
    if "teams" in fields:
        teams = fields["teams"] if fields["teams"] is not None else []
        if not isinstance(teams, (list, tuple)):
            raise InvalidInput("Teams are a list of team ids.", field="teams")
        ids = [_team_id(team, "teams") for team in teams]
        clean["teams"] = sorted({pk for pk in ids if pk is not None})
    if "conditions" in fields:
        clean["conditions"] = conditions_clean(fields["conditions"])
    if "pilot_team" in fields:
        clean["pilot_team"] = _team_id(fields["pilot_team"], "pilot_team")
    if "on_leaving_scope" in fields:
        if fields["on_leaving_scope"] not in LeavingScope.values:
            raise InvalidInput(f"Leaving scope is one of {', '.join(LeavingScope.values)}.", field="on_leaving_scope")
        clean["on_leaving_scope"] = fields["on_leaving_scope"]
    if "retention_days" in fields:
        days = fields["retention_days"]
        if days in (None, ""):
            clean["retention_days"] = None
        elif isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 36500:
            raise InvalidInput("Retention is a number of days from 1 to 36500, or empty for never.", "retention_days")
        else:
            clean["retention_days"] = days
    return clean


def _scope_of(clean: Mapping[str, Any], current: LifecyclePolicy | None) -> dict[str, Any]:
    def pick(name: str, stored: Any) -> Any:
        return clean.get(name, stored)

    return {
        "all_active_people": pick("all_active_people", current.all_active_people if current else False),
        "teams": pick("teams", sorted(current.teams.values_list("pk", flat=True)) if current and current.pk else []),
        "conditions": pick("conditions", current.conditions if current else []),
        "pilot_team": pick("pilot_team", current.pilot_team_id if current else None),
    }


def scope_preview(fields: Mapping[str, Any], current: LifecyclePolicy | None = None) -> dict[str, Any]:
    """Who the scope the fields describe (over the current policy, when there is one) covers,
    before anything is saved: ``count``, the first user names (``sample``) and ``text``."""
    clean = policy_fields_clean({k: v for k, v in fields.items() if k in SCOPE_FIELDS}, current)
    scope = _scope_of(clean, current)
    people = people_matching(scope["all_active_people"], scope["teams"], scope["conditions"], scope["pilot_team"])
    names = list(Team.objects.filter(pk__in=scope["teams"]).order_by("name").values_list("name", flat=True))
    pilot = Team.objects.filter(pk=scope["pilot_team"]).values_list("name", flat=True).first() or ""
    return {
        "count": people.count(),
        "sample": list(people.order_by("username").values_list("username", flat=True)[:SCOPE_SAMPLE]),
        "text": scope_words(scope["all_active_people"], names, scope["conditions"], pilot),
    }


def policy_set(
    *, actor: Person | None, integration: Integration, fields: Mapping[str, Any], request: HttpRequest | None = None
) -> LifecyclePolicy:
    """Create or change the integration's policy. Turned on or to simulate (or its scope changed
    while it is), the policy is reviewed in the same transaction: on, its actions are asked for;
    simulating, its plan is recorded, so the page shows it at once."""
    with transaction.atomic():
        policy = LifecyclePolicy.objects.select_for_update().filter(integration=integration).first() or LifecyclePolicy(
            integration=integration
        )
        if integration.archived_at is not None:
            raise Refused(f"{integration.name} was deleted: its lifecycle policy cannot change.")
        clean = policy_fields_clean(fields, policy)
        before = _policy_state(policy)
        for name in ("mode", "all_active_people", "conditions", "on_leaving_scope", "retention_days"):
            if name in clean:
                setattr(policy, name, clean[name])
        if "pilot_team" in clean:
            policy.pilot_team_id = clean["pilot_team"]
        policy.updated_by = actor if actor is not None and actor.is_authenticated else None
        created = policy.pk is None
        try:
            with transaction.atomic():
                policy.save()
        except IntegrityError as exc:  # another request made the integration's policy meanwhile
            raise Conflict(f"{integration.name} has a lifecycle policy already: change that one.") from exc
        if "teams" in clean:
            policy.teams.set(clean["teams"])
        after = _policy_state(policy)
        changed = {name for name in after if before.get(name) != after[name]}
        audit_record(
            verb="lifecycle.policy_created" if created else "lifecycle.policy_changed",
            actor=actor,
            target=integration,
            request=request,
            details={"policy": policy.pk},
            before={name: before.get(name) for name in sorted(changed)},
            after={name: after[name] for name in sorted(changed)},
        )
        if policy.mode != PolicyMode.OFF and ("mode" in changed or changed & set(SCOPE_FIELDS)):
            _review(policy)
        elif policy.mode == PolicyMode.OFF and "mode" in changed:
            policy.planned_changes.all().delete()  # a plan is only shown while simulating
    return policy


def _policy_state(policy: LifecyclePolicy) -> dict[str, Any]:
    return {
        "mode": policy.mode,
        "all_active_people": policy.all_active_people,
        "teams": sorted(policy.teams.values_list("pk", flat=True)) if policy.pk else [],
        "conditions": policy.conditions,
        "pilot_team": policy.pilot_team_id,
        "on_leaving_scope": policy.on_leaving_scope,
        "retention_days": policy.retention_days,
    }


def _review(policy: LifecyclePolicy) -> None:
    """The whole policy applied now; a refusal (provisioning disabled) is recorded, not raised:
    the policy stays as saved and the page says what stopped it."""
    from lifecycle.consumer import policy_problem_record, policy_review, reviewed_up_to

    try:
        policy_review(policy)
    except ActionRefused as exc:
        logger.warning("lifecycle review refused", extra={"policy": policy.pk})
        # The review stands for what came before: the consumer starts after the newest event,
        # as it would have had the review gone through, not at the beginning of history.
        newest = reviewed_up_to(policy)
        LifecyclePolicy.objects.filter(pk=policy.pk).update(event_cursor=newest)
        policy.event_cursor = newest
        policy_problem_record(policy, str(exc))


def _follow(integration: Integration, person_ids: Iterable[int]) -> None:
    """After a mapping change: the people it concerns get (or lose) what the mappings now grant,
    as the next pass of the consumer would; simulating, the plan is made again."""
    from lifecycle.consumer import policy_problem_record
    from lifecycle.engine import wanted_apply, wanted_for

    policy = LifecyclePolicy.objects.select_related("integration").filter(integration=integration).first()
    if policy is None or policy.mode == PolicyMode.OFF:
        return
    if policy.mode == PolicyMode.SIMULATE:
        _review(policy)
        return
    ids = set(person_ids)
    if not ids:
        return
    try:
        with transaction.atomic():
            wanted_apply(policy, wanted_for(policy, ids))
    except ActionRefused as exc:
        policy_problem_record(policy, str(exc))


# --- birthright mappings ---------------------------------------------------------------------


def _groups_clean(integration: Integration, groups: Any) -> list[TargetGroup]:
    if not isinstance(groups, (list, tuple)) or not groups:
        raise InvalidInput("Choose at least one group.", field="groups")
    ids = []
    for group in groups:
        if isinstance(group, TargetGroup):
            ids.append(group.pk)
        elif isinstance(group, int) and not isinstance(group, bool) and 0 < group < 2**62:
            ids.append(group)
        elif isinstance(group, str) and group.isdecimal() and len(group) < 19:
            ids.append(int(group))
        else:
            raise InvalidInput("Give groups by their ids.", field="groups")
    found = list(TargetGroup.objects.filter(pk__in=ids, integration=integration, removed_at__isnull=True))
    missing = sorted(set(ids) - {g.pk for g in found})
    if missing:
        raise InvalidInput(f"{integration.name} has no group with the id {missing[0]}.", field="groups")
    return found


def mapping_described(*, integration: Integration, team: Any = None, conditions: Any = None, groups: Any = None) -> str:
    """What adding this mapping does, in words, for its confirmation; checked as ``mapping_create``
    checks it, so a mistake is named before anyone is asked to confirm."""
    team_id = _team_id(team, "team")
    clean_conditions = conditions_clean(conditions)
    if team_id is None and not clean_conditions:
        raise InvalidInput("Choose a team or give at least one condition.", field="team")
    chosen = sorted(_groups_clean(integration, groups), key=lambda g: (g.display_name.lower(), g.pk))
    who = mapping_text(BirthrightMapping(integration=integration, team_id=team_id, conditions=clean_conditions))
    names = ", ".join(g.display_name for g in chosen)
    words = (
        f"Adds the mapping of {who} to {names} in {integration.name}: while the policy is on, "
        "the people it covers are added to these groups at once."
    )
    marked = set(SensitiveGroup.objects.filter(group__in=chosen).values_list("group_id", flat=True))
    sensitive = [g.display_name for g in chosen if g.pk in marked]
    if sensitive:
        verb = "is" if len(sensitive) == 1 else "are"
        words += f" {', '.join(sensitive)} {verb} sensitive: the mapping waits for a second admin's approval first."
    return words


def mapping_create(
    *,
    actor: Person,
    integration: Integration,
    team: Any = None,
    conditions: Any = None,
    groups: Any = None,
    request: HttpRequest | None = None,
) -> BirthrightMapping:
    """A mapping from a team and/or conditions to groups of the integration. One that grants a
    sensitive group waits for a second admin (``pending``); any other takes effect at once."""
    if integration.archived_at is not None:
        raise Refused(f"{integration.name} was deleted: it takes no new mappings.")
    team_id = _team_id(team, "team")
    clean_conditions = conditions_clean(conditions)
    if team_id is None and not clean_conditions:
        raise InvalidInput("Choose a team or give at least one condition.", field="team")
    chosen = _groups_clean(integration, groups)
    sensitive = SensitiveGroup.objects.filter(group__in=chosen).exists()
    with transaction.atomic():
        mapping = BirthrightMapping.objects.create(
            integration=integration,
            team_id=team_id,
            conditions=clean_conditions,
            state=MappingState.PENDING if sensitive else MappingState.ACTIVE,
            created_by=actor,
        )
        mapping.groups.set(chosen)
        audit_record(
            verb="lifecycle.mapping_created",
            actor=actor,
            target=integration,
            request=request,
            details={
                "mapping": mapping.pk,
                "grants": mapping_text(mapping),
                "groups": sorted(g.display_name for g in chosen),
                "state": mapping.state,
            },
        )
        if mapping.state == MappingState.ACTIVE:
            _follow(integration, mapping_people(mapping).values_list("pk", flat=True))
    return mapping


def mapping_get(pk: Any) -> BirthrightMapping:
    found = BirthrightMapping.objects.select_related("integration", "team").filter(pk=pk).first()
    if found is None:
        raise NotFound("There is no such birthright mapping.")
    return found


def _decide(actor: Person, mapping: BirthrightMapping, state: str, request: HttpRequest | None) -> BirthrightMapping:
    from console.accounts.permissions import Perm

    if not actor.has_console_permission(Perm.APPROVE):
        raise Refused("Only an admin who may approve can decide on a mapping that grants a sensitive group.")
    with transaction.atomic():
        locked = BirthrightMapping.objects.select_for_update().get(pk=mapping.pk)
        if locked.state != MappingState.PENDING:
            raise Refused(f"This mapping is not waiting for a decision: it is {locked.get_state_display().lower()}.")
        if locked.created_by_id is not None and locked.created_by_id == actor.pk:
            raise Refused("You created this mapping: a second admin must approve or reject it.")
        locked.state, locked.decided_by, locked.decided_at = state, actor, timezone.now()
        locked.save(update_fields=["state", "decided_by", "decided_at"])
        verb = "lifecycle.mapping_approved" if state == MappingState.ACTIVE else "lifecycle.mapping_rejected"
        audit_record(
            verb=verb,
            actor=actor,
            target=locked.integration,
            request=request,
            details={"mapping": locked.pk, "grants": mapping_text(locked)},
        )
        if state == MappingState.ACTIVE:
            _follow(locked.integration, mapping_people(locked).values_list("pk", flat=True))
    return locked


def mapping_approve(
    *, actor: Person, mapping: BirthrightMapping, request: HttpRequest | None = None
) -> BirthrightMapping:
    """A second admin (not the creator) lets a pending mapping take effect."""
    return _decide(actor, mapping, MappingState.ACTIVE, request)


def mapping_reject(
    *, actor: Person, mapping: BirthrightMapping, request: HttpRequest | None = None
) -> BirthrightMapping:
    return _decide(actor, mapping, MappingState.REJECTED, request)


def mapping_delete(*, actor: Person, mapping: BirthrightMapping, request: HttpRequest | None = None) -> None:
    """Gone: what only this mapping granted is taken away (at once where the policy is on; in
    the plan while it simulates); memberships other mappings also grant stay."""
    integration = mapping.integration
    with transaction.atomic():
        granted = list(
            Grant.objects.filter(group__integration=integration)
            .filter(Q(mapping_ids__contains=[mapping.pk]) if _json_contains() else Q())
            .values_list("person_id", "mapping_ids")
        )
        affected = {person for person, ids in granted if mapping.pk in (ids or [])}
        affected |= set(mapping_people(mapping).values_list("pk", flat=True))
        text = mapping_text(mapping)
        pk = mapping.pk
        mapping.delete()
        audit_record(
            verb="lifecycle.mapping_deleted",
            actor=actor,
            target=integration,
            request=request,
            details={"mapping": pk, "grants": text},
        )
        _follow(integration, affected)


def _json_contains() -> bool:
    """Whether the database answers JSON containment (SQLite does not: the ids are read in Python)."""
    from django.db import connection

    return connection.vendor == "postgresql"


# --- sensitive groups ------------------------------------------------------------------------


def group_mark_sensitive(
    *, actor: Person, group: TargetGroup, sensitive: bool, request: HttpRequest | None = None
) -> bool:
    """Mark (or unmark) a group sensitive: new mappings that grant it wait for a second admin.
    Mappings already in effect stay so. Returns whether anything changed."""
    if not isinstance(sensitive, bool):
        raise InvalidInput("Sensitive is true or false.", field="sensitive")
    with transaction.atomic():
        if sensitive:
            _, changed = SensitiveGroup.objects.get_or_create(group=group, defaults={"marked_by": actor})
        else:
            changed = SensitiveGroup.objects.filter(group=group).delete()[0] > 0
        if changed:
            audit_record(
                verb="lifecycle.group_sensitive" if sensitive else "lifecycle.group_not_sensitive",
                actor=actor,
                target=group.integration,
                request=request,
                details={"group": group.pk, "group_name": group.display_name},
            )
    return changed
