"""Charts of actions: what finished each day and how, what waits for approval, and how long
a deprovision takes to be verified in the application."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import Count, F
from django.db.models.functions import TruncDate
from django.utils import timezone

from console.core.charts import Chart, Series, as_date, day_label, days_back
from integrations.models import Integration
from provisioning.models import Action, ActionState, Revocation
from provisioning.revocations import LATENCY_DAYS, LATENCY_SAMPLE, percentile, revocation_latency

OUTCOMES = [
    (ActionState.SUCCEEDED, "Succeeded", "good"),
    (ActionState.FAILED, "Failed", "bad"),
    (ActionState.REJECTED, "Rejected", "warn"),
    (ActionState.CANCELLED, "Cancelled", "neutral"),
]
DAYS = 14


def actions_per_day(*, integration: Integration | None = None, days: int = DAYS, today: date | None = None) -> Chart:
    """Actions that finished on each of the last ``days`` days (UTC), by outcome."""
    today = today or timezone.now().astimezone(UTC).date()
    span = days_back(days, today)
    since = datetime.combine(span[0], time.min, tzinfo=UTC)
    finished = Action.objects.filter(finished_at__gte=since, state__in=[state for state, _, _ in OUTCOMES])
    if integration is not None:
        finished = finished.filter(integration=integration)
    counts: dict[tuple[date, str], int] = {}
    rows = finished.annotate(day=TruncDate("finished_at", tzinfo=UTC)).values("day", "state").annotate(n=Count("pk"))
    for row in rows:
        counts[(as_date(row["day"]), row["state"])] = row["n"]
    where = f" in {integration.name}" if integration is not None else ""
    return Chart(
        key=f"actions-per-day-{integration.pk}" if integration is not None else "actions-per-day",
        title=f"Actions finished per day{where}, by outcome (last {days} days, UTC)",
        labels=[day_label(day) for day in span],
        series=[
            Series(label, [counts.get((day, state), 0) for day in span], colour) for state, label, colour in OUTCOMES
        ],
        stacked=True,
        unit="actions",
        label_heading="Day (UTC)",
        empty_text=f"No action finished{where} in the last {days} days.",
    )


def error_rate_per_day(*, integration: Integration, days: int = DAYS, today: date | None = None) -> Chart:
    """The share of an integration's finished actions, and of its extractions, that failed each day."""
    from integrations.models import ExtractionRun

    today = today or timezone.now().astimezone(UTC).date()
    span = days_back(days, today)
    since = datetime.combine(span[0], time.min, tzinfo=UTC)

    def rates(rows: Any, failed_state: str) -> list[float | int]:
        totals: dict[date, int] = {}
        failed: dict[date, int] = {}
        for row in rows:
            day = as_date(row["day"])
            totals[day] = totals.get(day, 0) + row["n"]
            if row["state"] == failed_state:
                failed[day] = failed.get(day, 0) + row["n"]
        return [round(100 * failed.get(day, 0) / totals[day], 1) if totals.get(day) else 0 for day in span]

    actions = (
        Action.objects.filter(
            integration=integration, finished_at__gte=since, state__in=[state for state, _, _ in OUTCOMES]
        )
        .annotate(day=TruncDate("finished_at", tzinfo=UTC))
        .values("day", "state")
        .annotate(n=Count("pk"))
    )
    runs = (
        ExtractionRun.objects.filter(integration=integration, finished_at__gte=since)
        .annotate(day=TruncDate("finished_at", tzinfo=UTC), state=F("status"))
        .values("day", "state")
        .annotate(n=Count("pk"))
    )
    return Chart(
        key=f"error-rate-{integration.pk}",
        title=f"Error rate per day in {integration.name} (last {days} days, UTC)",
        labels=[day_label(day) for day in span],
        series=[
            Series("Actions that failed (%)", rates(actions, ActionState.FAILED), "bad"),
            Series("Extractions that failed (%)", rates(runs, ExtractionRun.Status.FAILED), "warn"),
        ],
        kind="line",
        unit="%",
        label_heading="Day (UTC)",
        empty_text=f"Nothing failed in {integration.name} in the last {days} days.",
    )


def pending_approvals() -> Chart:
    """Actions waiting for approval, per integration."""
    rows = list(
        Action.objects.filter(state=ActionState.PENDING_APPROVAL)
        .values("integration__name")
        .annotate(n=Count("pk"))
        .order_by("-n", "integration__name")[:20]
    )
    return Chart(
        key="pending-approvals",
        title="Waiting for approval, per integration",
        labels=[row["integration__name"] for row in rows],
        series=[Series("Waiting for approval", [row["n"] for row in rows], "warn")],
        unit="actions",
        label_heading="Integration",
        empty_text="Nothing waits for approval.",
    )


def revocation_latency_per_day(*, integration: Integration, days: int | None = None) -> Chart:
    """p50 and p95 of the time from a deprovision's request to its verified read-back, per day
    (UTC) of the read-back, over the days of the period that had one; the period's totals below."""
    days = days or LATENCY_DAYS
    since = timezone.now() - timedelta(days=days)
    verified = Revocation.objects.filter(
        integration=integration, verified_at__gte=since, outcome=Revocation.Outcome.VERIFIED
    ).order_by("-verified_at")
    by_day: dict[date, list[float]] = {}
    for verified_at, seconds in verified.values_list("verified_at", "latency_seconds")[:LATENCY_SAMPLE]:
        by_day.setdefault(verified_at.astimezone(UTC).date(), []).append(seconds)
    span = sorted(by_day)
    p50 = [round(percentile(sorted(by_day[day]), 0.5) or 0.0, 1) for day in span]
    p95 = [round(percentile(sorted(by_day[day]), 0.95) or 0.0, 1) for day in span]
    total = revocation_latency(integration=integration, days=days)
    notes = []
    if total["count"] or total["not_verified"]:
        overall = f" (p50 {total['p50_seconds']:.1f} s, p95 {total['p95_seconds']:.1f} s)" if total["count"] else ""
        notes.append(f"Last {days} days: {total['count']} verified{overall}, {total['not_verified']} not verified.")
    return Chart(
        key=f"revocation-latency-{integration.pk}",
        title=f"Revocation latency per day, request to verified (last {days} days, UTC)",
        labels=[day_label(day) for day in span],
        series=[Series("p50 (seconds)", p50, "info"), Series("p95 (seconds)", p95, "warn")],
        unit="seconds",
        label_heading="Day (UTC)",
        empty_text=f"No deprovision in {integration.name} was verified in the last {days} days.",
        notes=notes,
    )
