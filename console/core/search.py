"""The global search in the top bar: people, teams, and whatever the apps above register.

The shared core imports no app, so every app registers a provider for its kinds (people,
teams, accounts, groups, integrations, actions) in its ``AppConfig.ready``; the shell's
``/search/`` page asks them all. Every provider is bounded: a prefix match on an indexed column
where there is one, and never more than ``limit`` rows of each kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.http import HttpRequest

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
