"""Reads about people, roles and keys."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Q, QuerySet

from console.accounts.models import Person, Role
from console.accounts.permissions import BuiltinRole, Perm

_PERMISSIONS_CACHE_ATTR = "_console_permissions"


def roles_effective_for(*, person: Person) -> QuerySet[Role]:
    """Direct roles together with the roles of every team the person is in."""
    return Role.objects.filter(Q(direct_members=person) | Q(teams__members=person)).distinct()


def person_permissions(*, person: Person) -> frozenset[str]:
    """Every permission the person holds, computed once per loaded instance (one query)."""
    cached: frozenset[str] | None = getattr(person, _PERMISSIONS_CACHE_ATTR, None)
    if cached is None:
        cached = frozenset(
            perm for perms in roles_effective_for(person=person).values_list("permissions", flat=True) for perm in perms
        )
        setattr(person, _PERMISSIONS_CACHE_ATTR, cached)
    return cached


def permissions_remember(*, person: Person, permissions: set[str] | frozenset[str]) -> None:
    """Keep permissions read elsewhere (see ``owner_with_permissions``) on the instance."""
    setattr(person, _PERMISSIONS_CACHE_ATTR, frozenset(permissions))


def person_permissions_forget(*, person: Person) -> None:
    if hasattr(person, _PERMISSIONS_CACHE_ATTR):
        delattr(person, _PERMISSIONS_CACHE_ATTR)


@dataclass
class EffectiveRole:
    role: Role
    direct: bool = False
    via_teams: list[str] = field(default_factory=list)

    @property
    def explanation(self) -> str:
        reasons = ["assigned directly"] if self.direct else []
        reasons += [f"through team {name}" for name in self.via_teams]
        return ", ".join(reasons)


def person_effective_roles_explained(*, person: Person) -> list[EffectiveRole]:
    """Each effective role with where it comes from: directly, or which teams."""
    explained: dict[int, EffectiveRole] = {}
    for role in person.roles.all():
        explained[role.pk] = EffectiveRole(role=role, direct=True)
    for team in person.teams.prefetch_related("roles").order_by("name"):
        for role in team.roles.all():
            explained.setdefault(role.pk, EffectiveRole(role=role)).via_teams.append(team.name)
    return sorted(explained.values(), key=lambda e: e.role.name)


def people_holding_permission(*, perm: Perm) -> QuerySet[Person]:
    roles = [role.pk for role in Role.objects.all() if str(perm) in role.permissions]
    return Person.objects.filter(Q(roles__in=roles) | Q(teams__roles__in=roles)).distinct()


def active_local_admins() -> QuerySet[Person]:
    """Active local people holding the admin role: the break-glass accounts."""
    return Person.objects.filter(
        Q(roles__name=BuiltinRole.ADMIN) | Q(teams__roles__name=BuiltinRole.ADMIN),
        is_active=True,
        source="local",
    ).distinct()


def people_search(*, queryset: QuerySet[Person], text: str) -> QuerySet[Person]:
    text = text.strip()
    if not text:
        return queryset
    return queryset.filter(
        Q(username__icontains=text)
        | Q(display_name__icontains=text)
        | Q(given_name__icontains=text)
        | Q(family_name__icontains=text)
        | Q(email__icontains=text)
        | Q(external_id__iexact=text)
    )
