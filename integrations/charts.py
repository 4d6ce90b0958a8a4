"""Charts of an integration's extractions: how long each took, what it found, how many failed."""

from __future__ import annotations

from console.core.charts import Chart, Series
from integrations.models import ExtractionRun, Integration

RUNS = 20


def _label(run: ExtractionRun) -> str:
    at = run.started_at or run.queued_at
    return f"#{run.pk} {at:%d %b %H:%M}"


def extraction_charts(integration: Integration, *, last: int = RUNS) -> list[Chart]:
    """Duration and counts of the last ``last`` finished runs, oldest first, and their failure rate."""
    runs = list(
        ExtractionRun.objects.filter(
            integration=integration,
            status__in=[ExtractionRun.Status.SUCCEEDED, ExtractionRun.Status.FAILED],
            finished_at__isnull=False,
        ).order_by("-finished_at", "-pk")[:last]
    )[::-1]
    labels = [_label(run) for run in runs]
    durations = [
        round((run.finished_at - (run.started_at or run.queued_at)).total_seconds(), 1)  # type: ignore[operator]
        for run in runs
    ]
    failed = sum(run.status == ExtractionRun.Status.FAILED for run in runs)
    rate = f"{round(100 * failed / len(runs))}%" if runs else "none"
    duration = Chart(
        key=f"run-durations-{integration.pk}",
        title=f"Extraction duration (last {len(runs) or last} runs)",
        labels=labels,
        series=[
            Series(
                "Seconds (succeeded)",
                [d if r.status == "succeeded" else 0 for d, r in zip(durations, runs, strict=True)],
                "info",
            ),
            Series(
                "Seconds (failed)",
                [d if r.status == "failed" else 0 for d, r in zip(durations, runs, strict=True)],
                "bad",
            ),
        ],
        stacked=True,
        unit="seconds",
        label_heading="Run",
        empty_text="No extraction has finished yet.",
        notes=[f"Failed: {failed} of {len(runs)} runs ({rate})."] if runs else [],
    )
    counts = Chart(
        key=f"run-counts-{integration.pk}",
        title="What each extraction found",
        labels=labels,
        series=[
            Series("Users", [run.users_seen for run in runs], "info"),
            Series("Groups", [run.groups_seen for run in runs], "extra"),
            Series("Created", [run.created for run in runs], "good"),
            Series("Updated", [run.updated for run in runs], "warn"),
            Series("Removed", [run.removed for run in runs], "bad"),
        ],
        kind="line",
        unit="resources",
        label_heading="Run",
        empty_text="No extraction has finished yet.",
    )
    return [duration, counts]
