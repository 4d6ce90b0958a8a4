"""The global search in the top bar: people, teams, and whatever the apps above register.

``console`` must not import ``integrations`` or ``provisioning`` (see ``console.web.slots``),
so those apps register a provider for their kinds (accounts, groups, integrations, actions)
in their ``AppConfig.ready``. Every provider is bounded: a prefix match on an indexed column
where there is one, and never more than ``limit`` rows of each kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from console.accounts.access import requires
from console.accounts.models import Person, Team
from console.accounts.permissions import Perm

DROPDOWN_LIMIT = 5  # of each kind, as you type
PAGE_LIMIT = 25  # of each kind, on the results page
MAX_TERM = 100


@dataclass(frozen=True)
class Hit:
    """One result: what it is called, where its page is, and a word of context."""

    label: str
    url: str
    detail: str = ""


@dataclass(frozen=True)
class Provider:
    kind: str  # "people", "accounts" …: stable, used in test ids
    label: str  # the group's heading
    find: Callable[[str, int], list[Hit]]  # (what was typed, at most how many) -> hits
    order: int = 100


_providers: dict[str, Provider] = {}


def register_search(kind: str, *, label: str, find: Callable[[str, int], list[Hit]], order: int = 100) -> None:
    """Add (or replace) the provider of ``kind``."""
    _providers[kind] = Provider(kind=kind, label=label, find=find, order=order)


def providers() -> list[Provider]:
    return sorted(_providers.values(), key=lambda p: (p.order, p.kind))


def search_term(request: HttpRequest) -> str:
    return " ".join(request.GET.get("q", "").split())[:MAX_TERM]


def search(term: str, *, limit: int) -> list[tuple[Provider, list[Hit]]]:
    """The hits of every kind that has some, in the providers' order."""
    if not term:
        return []
    groups = []
    for provider in providers():
        hits = provider.find(term, limit)[:limit]
        if hits:
            groups.append((provider, hits))
    return groups


@requires(Perm.VIEW)
def search_view(request: HttpRequest) -> HttpResponse:
    """``/search/?q=``: the results page; as you type (htmx), only the dropdown."""
    term = search_term(request)
    dropdown = bool(getattr(request, "htmx", False)) and request.GET.get("part") == "suggestions"
    limit = DROPDOWN_LIMIT if dropdown else PAGE_LIMIT
    context = {"q": term, "groups": search(term, limit=limit), "limit": limit}
    if dropdown:
        return render(request, "web/search.html#suggestions", context)
    return render(request, "web/search.html", context)


def _people(term: str, limit: int) -> list[Hit]:
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


def _teams(term: str, limit: int) -> list[Hit]:
    teams = Team.objects.filter(name__istartswith=term).order_by("name", "id")[:limit]
    return [Hit(team.name, reverse("team_detail", args=[team.pk]), "Team") for team in teams]


register_search("people", label="People", find=_people, order=10)
register_search("teams", label="Teams", find=_teams, order=50)
