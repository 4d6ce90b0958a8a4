"""What the drift report's page and API share: asking for a drift computation now."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from console.audit.services import audit_record
from console.core.errors import Refused
from integrations.models import Integration
from reconciliation.models import DriftRun


def drift_request(actor: Any, integration: Integration, request: Any = None) -> DriftRun | None:
    """Queue a drift computation of ``integration`` (the report's "Check now") and record who asked.

    While a computation of it runs, nothing is queued: that one is answered (its result is the
    one asked for), and nothing is recorded. Refused (409) for a deleted integration: its drift
    is no longer computed. The task is sent once the audit event commits; the computation
    compares what the last extraction read.
    """
    if integration.archived_at is not None:
        raise Refused(f"{integration.name} was deleted: its drift is no longer computed.")
    from reconciliation.drift import drift_running
    from reconciliation.tasks import drift_compute_task

    running = drift_running(integration)
    if running is not None:
        return running
    integration_id = integration.pk
    with transaction.atomic():
        audit_record(verb="drift.requested", actor=actor, target=integration, request=request)
        transaction.on_commit(lambda: drift_compute_task.delay(integration_id=integration_id))
    return None


def drift_running_words(run: DriftRun) -> str:
    """What "Check now" answers while a computation runs."""
    started = timezone.localtime(run.started_at).strftime("%Y-%m-%d %H:%M:%S")
    return (
        f"A drift computation of {run.integration.name} is already running (computation {run.pk}, started "
        f"{started}): nothing more was queued; its result appears once it finishes."
    )
