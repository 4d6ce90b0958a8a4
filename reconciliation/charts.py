"""The Drift tab's chart: open items per category after each of the last computations."""

from __future__ import annotations

from console.core.charts import Chart, Series
from integrations.models import Integration
from reconciliation.models import DriftCategory, DriftRun

RUNS = 20
COLOURS = {
    DriftCategory.MISSING: "warn",
    DriftCategory.ORPHAN: "bad",
    DriftCategory.SHOULD_BE_INACTIVE: "#ad1457",
    DriftCategory.SHOULD_BE_ACTIVE: "good",
    DriftCategory.ATTRIBUTE: "info",
    DriftCategory.MISSING_MEMBERSHIP: "extra",
    DriftCategory.UNEXPLAINED_MEMBERSHIP: "neutral",
}


def _count(run: DriftRun, category: str) -> int:
    value = run.counts.get(category, 0) if isinstance(run.counts, dict) else 0
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def drift_chart(integration: Integration, *, last: int = RUNS) -> Chart:
    """Open items per category after each of the last ``last`` computations that succeeded, oldest first."""
    recent = list(DriftRun.objects.filter(integration=integration).order_by("-started_at", "-pk")[:last])
    runs = [run for run in reversed(recent) if run.status == DriftRun.Status.SUCCEEDED]
    failed = sum(1 for run in recent if run.status == DriftRun.Status.FAILED)  # skipped, running: not drawn
    return Chart(
        key=f"drift-{integration.pk}",
        title=f"Open drift per category (last {len(runs) or last} computations)",
        labels=[f"#{run.pk} {run.started_at:%d %b %H:%M}" for run in runs],
        series=[
            Series(str(label), [_count(run, value) for run in runs], COLOURS[DriftCategory(value)])
            for value, label in DriftCategory.choices
        ],
        stacked=True,
        unit="items",
        label_heading="Computation",
        empty_text="No drift computed yet, or none found.",
        notes=[f"{failed} of the last {len(recent)} computations failed (not drawn)."] if failed else [],
    )
