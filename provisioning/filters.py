"""Filters shared by the list pages and the API (Actions, access requests, revocations)."""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import Q, QuerySet

from integrations.models import Integration
from provisioning.models import AccessRequest, Action, ActionState, ActionType, Revocation


class ActionFilterSet(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(choices=ActionState.choices, label="State", empty_label="Any")
    action_type = django_filters.ChoiceFilter(choices=ActionType.choices, label="Type", empty_label="Any")
    integration = django_filters.ModelChoiceFilter(
        queryset=Integration.all_objects.order_by("name"), label="Integration", empty_label="Any"
    )
    person = django_filters.CharFilter(
        method="about_person",
        label="Person",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "User name"}),
    )

    class Meta:
        model = Action
        fields = ["state", "action_type", "integration", "person"]

    def about_person(self, queryset: QuerySet[Action], name: str, value: str) -> QuerySet[Action]:
        """Actions about the person or account with this user name (any case)."""
        value = value.strip()
        return queryset.filter(
            Q(person__username__iexact=value) | Q(target_user__user_name__iexact=value) | Q(subject__iexact=value)
        )


class AccessRequestFilterSet(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(choices=AccessRequest.State.choices, label="State", empty_label="Any")
    integration = django_filters.ModelChoiceFilter(
        queryset=Integration.all_objects.order_by("name"), label="Integration", empty_label="Any"
    )
    mine = django_filters.BooleanFilter(method="of_mine", label="Only mine", widget=forms.CheckboxInput)

    class Meta:
        model = AccessRequest
        fields = ["state", "integration", "mine"]

    def of_mine(self, queryset: QuerySet[AccessRequest], name: str, value: bool) -> QuerySet[AccessRequest]:
        user = getattr(self.request, "user", None)
        return queryset.filter(requested_by=user) if value and user is not None else queryset


class RevocationFilterSet(django_filters.FilterSet):
    outcome = django_filters.ChoiceFilter(choices=Revocation.Outcome.choices, label="Outcome", empty_label="Any")
    integration = django_filters.ModelChoiceFilter(
        queryset=Integration.all_objects.order_by("name"), label="Integration", empty_label="Any"
    )
    person = django_filters.CharFilter(
        method="about_person",
        label="Person or account",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "User name"}),
    )

    class Meta:
        model = Revocation
        fields = ["outcome", "integration", "person"]

    def about_person(self, queryset: QuerySet[Revocation], name: str, value: str) -> QuerySet[Revocation]:
        """Revocations of the person or the account with this user name (any case)."""
        value = value.strip()
        return queryset.filter(Q(person__username__iexact=value) | Q(account__iexact=value))
