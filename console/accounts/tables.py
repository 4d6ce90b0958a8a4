"""The People and Teams lists' tables (small tables: counted exactly)."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, QuerySet
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils.html import format_html

from console.accounts.models import PERSON_NAME_SORT, Person, Team
from console.core.tables import Column, Table, link


def _person_status(person: Person) -> Any:
    if person.is_active:
        return format_html('<span class="badge ok">{}</span>', "Active")
    return format_html('<span class="badge muted">{}</span>', "Inactive")


# Sorts: the user name (unique), the email, the department and created (indexed), and the name
# shown (an index on its expression: console.accounts.models).
PEOPLE_TABLE = Table(
    name="people",
    columns=[
        Column(
            "username",
            "User name",
            sort="username",
            html=link(lambda p: reverse("person_detail", args=[p.pk]), lambda p: p.username),
        ),
        Column("name", "Name", sort="name_sort", sort_expression=PERSON_NAME_SORT, value=lambda p: p.full_name),
        Column("email", "Email", sort="email"),
        Column("department", "Department", sort="department"),
        Column("title", "Title", default=False),
        Column("source", "Source", value=lambda p: p.get_source_display()),
        Column("status", "Status", value=lambda p: "Active" if p.is_active else "Inactive", html=_person_status),
        Column("created_at", "Created", sort="created_at", default=False),
    ],
    ordering="username",
    total="exact",
)


def teams_sortable(queryset: QuerySet[Team]) -> QuerySet[Team]:
    """Teams with what their table sorts by: the name as the unique index on lower(name) holds it,
    and the member count (an aggregate: not indexed, which a list of teams can afford)."""
    return queryset.annotate(name_lower=Lower("name"), member_count=Count("memberships"))


TEAMS_TABLE = Table(
    name="teams",
    columns=[
        Column(
            "name",
            "Name",
            sort="name_lower",
            html=link(lambda t: reverse("team_detail", args=[t.pk]), lambda t: t.name),
        ),
        Column("member_count", "Members", sort="member_count"),
        Column(
            "roles",
            "Roles granted",
            value=lambda t: ", ".join(role.label for role in t.roles.all()) or "—",
        ),
        Column("source", "Source", value=lambda t: t.get_source_display()),
        Column("description", "Description", default=False),
    ],
    ordering="name",
    total="exact",
)
