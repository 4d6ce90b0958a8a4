"""Audit filters shared by the Audit page and ``/api/v1/audit-events/``."""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import QuerySet

from console.audit.models import AuditEvent


class AuditEventFilterSet(django_filters.FilterSet):
    actor = django_filters.CharFilter(field_name="actor_label", lookup_expr="iexact", label="Actor")
    verb = django_filters.CharFilter(
        method="with_verb",
        label="Verb",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "e.g. api_key. or auth.signed_in"}),
    )
    target_type = django_filters.CharFilter(field_name="target_type", lookup_expr="iexact", label="Target type")
    target_id = django_filters.CharFilter(field_name="target_id", label="Target id")
    since = django_filters.IsoDateTimeFilter(
        field_name="occurred_at",
        lookup_expr="gte",
        label="From",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    until = django_filters.IsoDateTimeFilter(
        field_name="occurred_at",
        lookup_expr="lt",
        label="Until",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    class Meta:
        model = AuditEvent
        fields = ["actor", "verb", "target_type", "target_id", "since", "until"]

    def with_verb(self, queryset: QuerySet[AuditEvent], name: str, value: str) -> QuerySet[AuditEvent]:
        """``auth.signed_in`` matches exactly; ``api_key.`` matches every verb it begins."""
        value = value.strip()
        return queryset.filter(verb__startswith=value) if value.endswith(".") else queryset.filter(verb=value)
