"""Who a policy (or a mapping) covers, as one query over people."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from console.accounts.models import Person
from console.accounts.permissions import BuiltinRole
from console.core.errors import InvalidInput
from lifecycle.models import CONDITION_ATTRIBUTES, CONDITION_OPERATORS, BirthrightMapping, LifecyclePolicy


def conditions_clean(conditions: Any, field: str = "conditions") -> list[dict[str, Any]]:
    """The conditions as stored, or a 400 that names what is wrong with them."""
    if conditions in (None, ""):
        return []
    if not isinstance(conditions, list):
        raise InvalidInput("Conditions are a list of {attribute, operator, values}.", field=field)
    clean = []
    for number, condition in enumerate(conditions, start=1):
        if not isinstance(condition, dict):
            raise InvalidInput(f"Condition {number} is not an object.", field=field)
        attribute, operator = condition.get("attribute"), condition.get("operator", "equals")
        if attribute not in CONDITION_ATTRIBUTES:
            raise InvalidInput(
                f"Condition {number}: the attribute must be one of {', '.join(CONDITION_ATTRIBUTES)}.", field=field
            )
        if operator not in CONDITION_OPERATORS:
            raise InvalidInput(
                f"Condition {number}: the operator must be one of {', '.join(CONDITION_OPERATORS)}.", field=field
            )
        values = condition.get("values", condition.get("value"))
        values = [values] if isinstance(values, str) else values
        if not isinstance(values, list) or not values or not all(isinstance(v, str) and v.strip() for v in values):
            raise InvalidInput(f"Condition {number}: give at least one value (text).", field=field)
        if operator != "in" and len(values) != 1:
            raise InvalidInput(f"Condition {number}: '{operator}' takes one value; use 'in' for several.", field=field)
        clean.append({"attribute": attribute, "operator": operator, "values": [v.strip() for v in values]})
    return clean


def conditions_q(conditions: list[dict[str, Any]]) -> Q:
    """Every condition holds (case-insensitively, as people type department names)."""
    q = Q()
    for condition in conditions:
        attribute, values = condition["attribute"], condition["values"]
        if condition["operator"] == "starts_with":
            q &= Q(**{f"{attribute}__istartswith": values[0]})
        else:
            any_of = Q()
            for value in values:
                any_of |= Q(**{f"{attribute}__iexact": value})
            q &= any_of
    return q


def conditions_text(conditions: list[dict[str, Any]]) -> str:
    return " and ".join(
        f"{CONDITION_ATTRIBUTES[c['attribute']].lower()} {CONDITION_OPERATORS[c['operator']]} "
        + " or ".join(f"“{v}”" for v in c["values"])
        for c in conditions
    )


def active_people() -> QuerySet[Person]:
    """Active people, without the identity provider's own service identity (the holder of the
    SCIM provisioner role, whose key pushes the others): it is never anybody's colleague."""
    return Person.objects.filter(is_active=True, removed_at__isnull=True).exclude(
        roles__name=BuiltinRole.SCIM_PROVISIONER
    )


def people_in_scope(policy: LifecyclePolicy) -> QuerySet[Person]:
    """The active people the policy covers (nobody, when it names neither everyone, teams nor conditions)."""
    team_ids = list(policy.teams.values_list("pk", flat=True)) if policy.pk else []
    return people_matching(policy.all_active_people, team_ids, policy.conditions, policy.pilot_team_id)


def people_matching(
    all_active_people: bool, team_ids: list[int], conditions: list[dict[str, Any]], pilot_team_id: int | None
) -> QuerySet[Person]:
    """The people a scope (saved or not) covers: everyone or the teams' members, narrowed by
    every condition and by the pilot team."""
    people = active_people()
    if not all_active_people:
        if team_ids:
            people = people.filter(team_memberships__team_id__in=team_ids)
        elif not conditions:
            return people.none()
    if conditions:
        people = people.filter(conditions_q(conditions))
    if pilot_team_id:
        people = people.filter(pk__in=Person.objects.filter(team_memberships__team_id=pilot_team_id))
    return people.distinct()


def scope_text(policy: LifecyclePolicy) -> str:
    names = list(policy.teams.values_list("name", flat=True)) if policy.pk else []
    pilot = policy.pilot_team.name if policy.pilot_team_id and policy.pilot_team else ""
    return scope_words(policy.all_active_people, names, policy.conditions, pilot)


def scope_words(all_active_people: bool, team_names: list[str], conditions: list[dict[str, Any]], pilot: str) -> str:
    parts = []
    if all_active_people:
        parts.append("every active person")
    elif team_names:
        parts.append("active members of " + ", ".join(team_names))
    elif not conditions:
        return "nobody (choose everyone, teams or conditions)"
    else:
        parts.append("active people")
    if conditions:
        parts.append("whose " + conditions_text(conditions))
    if pilot:
        parts.append(f"in the pilot team {pilot}")
    return " ".join(parts)


def mapping_people(mapping: BirthrightMapping) -> QuerySet[Person]:
    people = active_people()
    if mapping.team_id:
        people = people.filter(team_memberships__team_id=mapping.team_id)
    if mapping.conditions:
        people = people.filter(conditions_q(mapping.conditions))
    return people.distinct()


def mapping_text(mapping: BirthrightMapping) -> str:
    parts = []
    if mapping.team_id and mapping.team:
        parts.append(f"team {mapping.team.name}")
    if mapping.conditions:
        parts.append(conditions_text(mapping.conditions))
    return " and ".join(parts) or "nobody"
