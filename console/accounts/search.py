"""People and teams in the global search (``console.core.search``), registered by the app's ``ready``."""

from __future__ import annotations

from django.db.models import Q
from django.urls import reverse

from console.accounts.models import Person, Team
from console.core.search import Hit


def people_found(term: str, limit: int) -> list[Hit]:
    # The user name by its UPPER index; names and email only as a bounded fallback.
    people = Person.objects.filter(
        Q(username__istartswith=term)
        | Q(email__istartswith=term)
        | Q(display_name__istartswith=term)
        | Q(family_name__istartswith=term)
        | Q(given_name__istartswith=term)
    ).order_by("username", "id")[:limit]
    return [
        Hit(
            person.username,
            reverse("person_detail", args=[person.pk]),
            " · ".join(part for part in (person.display_name, person.email) if part)
            + ("" if person.is_active else " (inactive)"),
        )
        for person in people
    ]


def teams_found(term: str, limit: int) -> list[Hit]:
    teams = Team.objects.filter(name__istartswith=term).order_by("name", "id")[:limit]
    return [Hit(team.name, reverse("team_detail", args=[team.pk]), "Team") for team in teams]
