"""Reconciliation's reads: the open drift of an integration, its counts and its recent computations."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, QuerySet

from integrations.models import Integration
from reconciliation.models import DriftCategory, DriftItem, DriftRun

RECENT_RUNS = 20


@dataclass(frozen=True)
class CategoryCount:
    category: str
    label: str
    count: int


def drift_items(*, integration: Integration) -> QuerySet[DriftItem]:
    """The integration's open items, with what each row shows (account, person, group) in the same query."""
    return DriftItem.objects.filter(integration=integration).select_related("target_user", "person", "group")


def drift_counts(*, integration: Integration) -> list[CategoryCount]:
    """Open items per category, every category present (zero where none), in the categories' order."""
    found = dict(
        DriftItem.objects.filter(integration=integration)
        .order_by()
        .values_list("category")
        .annotate(n=Count("pk"))
        .values_list("category", "n")
    )
    return [CategoryCount(value, str(label), found.get(value, 0)) for value, label in DriftCategory.choices]


def drift_runs(*, integration: Integration, last: int = RECENT_RUNS) -> list[DriftRun]:
    """The integration's last ``last`` computations, newest first."""
    return list(DriftRun.objects.filter(integration=integration).order_by("-started_at", "-pk")[:last])


@dataclass(frozen=True)
class IntegrationDrift:
    integration: Integration
    total: int
    categories: list[CategoryCount]


def open_drift_per_integration() -> list[IntegrationDrift]:
    """Each live integration with open drift: its open items, in all and per category, most first."""
    rows = (
        DriftItem.objects.filter(integration__archived_at__isnull=True)
        .order_by()
        .values("integration_id", "category")
        .annotate(n=Count("pk"))
    )
    per: dict[int, dict[str, int]] = {}
    for row in rows:
        per.setdefault(row["integration_id"], {})[row["category"]] = row["n"]
    integrations = Integration.objects.in_bulk(list(per))
    labels = dict(DriftCategory.choices)
    result = [
        IntegrationDrift(
            integration=integrations[pk],
            total=sum(counts.values()),
            categories=[
                CategoryCount(value, str(labels[value]), counts[value])
                for value in DriftCategory.values
                if value in counts
            ],
        )
        for pk, counts in per.items()
        if pk in integrations
    ]
    result.sort(key=lambda r: (-r.total, r.integration.name.lower()))
    return result
