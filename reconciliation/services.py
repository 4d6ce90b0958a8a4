"""What the drift report's page and API share: asking for a drift computation now."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from console.audit.services import audit_record
from console.core.errors import Refused
from integrations.models import Integration


def drift_request(actor: Any, integration: Integration, request: Any = None) -> None:
    """Queue a drift computation of ``integration`` (the report's "Check now") and record who asked.

    Refused (409) for a deleted integration: its drift is no longer computed. The task is sent
    once the audit event commits; the computation compares what the last extraction read.
    """
    if integration.archived_at is not None:
        raise Refused(f"{integration.name} was deleted: its drift is no longer computed.")
    from reconciliation.tasks import drift_compute_task

    integration_id = integration.pk
    with transaction.atomic():
        audit_record(verb="drift.requested", actor=actor, target=integration, request=request)
        transaction.on_commit(lambda: drift_compute_task.delay(integration_id=integration_id))
