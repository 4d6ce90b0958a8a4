"""Filters shared by the people and key lists in the UI and the API."""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import Q, QuerySet

from console.accounts.models import ApiKey, Person, Role, Source, Team
from console.accounts.selectors import people_search


class PersonFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(
        method="search",
        label="Search",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Name, user name, email"}),
    )
    active = django_filters.ChoiceFilter(
        choices=[("true", "Active"), ("false", "Inactive")], method="with_status", label="Status", empty_label="Any"
    )
    role = django_filters.ModelChoiceFilter(
        queryset=Role.objects.all(), to_field_name="name", method="with_role", label="Role", empty_label="Any role"
    )
    source = django_filters.ChoiceFilter(choices=Source.choices, label="Source", empty_label="Any")
    team = django_filters.CharFilter(
        method="in_team", label="Team", widget=forms.TextInput(attrs={"placeholder": "Team name"})
    )

    class Meta:
        model = Person
        fields = ["q", "active", "role", "source", "team"]

    def search(self, queryset: QuerySet[Person], name: str, value: str) -> QuerySet[Person]:
        return people_search(queryset=queryset, text=value)

    def with_status(self, queryset: QuerySet[Person], name: str, value: str) -> QuerySet[Person]:
        return queryset.filter(is_active=value == "true")

    def with_role(self, queryset: QuerySet[Person], name: str, value: Role) -> QuerySet[Person]:
        return queryset.filter(Q(roles=value) | Q(teams__roles=value)).distinct()

    def in_team(self, queryset: QuerySet[Person], name: str, value: str) -> QuerySet[Person]:
        """Members of the team of that name (any case); a person is in a team once, so no duplicates."""
        return queryset.filter(team_memberships__team__name__iexact=value.strip())


class ApiKeyFilterSet(django_filters.FilterSet):
    owner = django_filters.CharFilter(field_name="owner__username", lookup_expr="iexact", label="Owner")
    status = django_filters.ChoiceFilter(
        choices=[("active", "Not revoked"), ("revoked", "Revoked")],
        method="with_status",
        label="Status",
        empty_label="Any",
    )

    class Meta:
        model = ApiKey
        fields = ["owner", "status"]

    def with_status(self, queryset: QuerySet[ApiKey], name: str, value: str) -> QuerySet[ApiKey]:
        return queryset.filter(revoked_at__isnull=value == "active")


class TeamFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(
        field_name="name",
        lookup_expr="icontains",
        label="Search",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Team name"}),
    )
    source = django_filters.ChoiceFilter(choices=Source.choices, label="Source", empty_label="Any")

    class Meta:
        model = Team
        fields = ["q", "source"]


class TeamMemberFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(
        method="search",
        label="Search",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Name, user name, email"}),
    )

    class Meta:
        model = Person
        fields = ["q"]

    def search(self, queryset: QuerySet[Person], name: str, value: str) -> QuerySet[Person]:
        return people_search(queryset=queryset, text=value)
