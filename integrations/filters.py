"""Filters for the Users and Groups tabs of an integration."""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import Q, QuerySet

from integrations.models import ExtractionRun, TargetGroup, TargetMembership, TargetUser


class TargetUserFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(
        method="search",
        label="Search",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "User name, display name, email"}),
    )
    active = django_filters.ChoiceFilter(
        choices=[("true", "Active"), ("false", "Inactive")], method="with_active", label="Status", empty_label="Any"
    )
    group = django_filters.CharFilter(
        method="in_group",
        label="Member of group",
        widget=forms.TextInput(attrs={"placeholder": "Group name or id"}),
    )

    class Meta:
        model = TargetUser
        fields = ["q", "active", "group"]

    def search(self, queryset: QuerySet[TargetUser], name: str, value: str) -> QuerySet[TargetUser]:
        return queryset.filter(
            Q(user_name__icontains=value) | Q(display_name__icontains=value) | Q(email__icontains=value)
        )

    def with_active(self, queryset: QuerySet[TargetUser], name: str, value: str) -> QuerySet[TargetUser]:
        return queryset.filter(active=value == "true")

    def in_group(self, queryset: QuerySet[TargetUser], name: str, value: str) -> QuerySet[TargetUser]:
        """Members of the group with this exact name (any case) or this id."""
        value = value.strip()
        groups = TargetGroup.objects.filter(
            Q(display_name__iexact=value) | Q(pk=int(value) if value.isdecimal() else None)
        )
        return queryset.filter(pk__in=TargetMembership.objects.filter(group__in=groups).values("user_id"))


class TargetGroupFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(
        field_name="display_name",
        lookup_expr="icontains",
        label="Search",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Group name"}),
    )

    class Meta:
        model = TargetGroup
        fields = ["q"]


class ExtractionRunFilterSet(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ExtractionRun.Status.choices, label="Status", empty_label="Any")
    trigger = django_filters.ChoiceFilter(choices=ExtractionRun.Trigger.choices, label="Trigger", empty_label="Any")

    class Meta:
        model = ExtractionRun
        fields = ["status", "trigger"]


class PersonAccountFilterSet(django_filters.FilterSet):
    """The person's accounts on their page: no filter of their own (a person has a few accounts)."""

    class Meta:
        model = TargetUser
        fields: list[str] = []
