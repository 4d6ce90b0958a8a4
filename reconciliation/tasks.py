"""Reconciliation's work for the workers."""

from __future__ import annotations

from celery import Task, shared_task

# While another computation of the integration runs, a computation waits this long, this many
# times at most (then it is recorded as skipped).
DRIFT_WAIT_SECONDS = 5
DRIFT_WAIT_TRIES = 60


@shared_task(bind=True, ignore_result=True, max_retries=DRIFT_WAIT_TRIES)
def drift_compute_task(self: Task, *, run_id: int | None = None, integration_id: int | None = None) -> None:
    """Compute an integration's drift: after extraction run ``run_id``, or on demand. While another
    computation of it runs, wait for it (it may have read the application before this extraction)."""
    from integrations.models import ExtractionRun, Integration
    from reconciliation.drift import drift_compute, drift_running
    from reconciliation.models import DriftRun

    extraction_run = None
    if run_id is not None:
        extraction_run = ExtractionRun.objects.select_related("integration").filter(pk=run_id).first()
        integration = extraction_run.integration if extraction_run is not None else None
    else:
        integration = Integration.objects.filter(pk=integration_id).first() if integration_id is not None else None
    if integration is None:
        return
    if drift_running(integration) is not None and self.request.retries < DRIFT_WAIT_TRIES:
        raise self.retry(countdown=DRIFT_WAIT_SECONDS)
    trigger = DriftRun.Trigger.EXTRACTION if extraction_run is not None else DriftRun.Trigger.ON_DEMAND
    drift_compute(integration, trigger=trigger, extraction_run=extraction_run)


@shared_task(ignore_result=True, acks_late=True)
def plan_build_task(*, plan_id: int) -> None:
    """Make the items of a plan too large to make in the web request."""
    from reconciliation.plans import plan_build

    plan_build(plan_id=plan_id)
