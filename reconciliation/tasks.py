"""Reconciliation's work for the workers."""

from __future__ import annotations

from celery import shared_task


@shared_task(ignore_result=True)
def drift_compute_task(*, run_id: int | None = None, integration_id: int | None = None) -> None:
    """Compute an integration's drift: after extraction run ``run_id``, or on demand."""
    from integrations.models import ExtractionRun, Integration
    from reconciliation.drift import drift_compute
    from reconciliation.models import DriftRun

    if run_id is not None:
        run = ExtractionRun.objects.select_related("integration").filter(pk=run_id).first()
        if run is None:
            return
        drift_compute(run.integration, trigger=DriftRun.Trigger.EXTRACTION, extraction_run=run)
        return
    integration = Integration.objects.filter(pk=integration_id).first() if integration_id is not None else None
    if integration is not None:
        drift_compute(integration, trigger=DriftRun.Trigger.ON_DEMAND)


@shared_task(ignore_result=True, acks_late=True)
def plan_build_task(*, plan_id: int) -> None:
    """Make the items of a plan too large to make in the web request."""
    from reconciliation.plans import plan_build

    plan_build(plan_id=plan_id)
