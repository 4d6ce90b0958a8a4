"""Reconciliation's writes that the page and the API share."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from console.audit.services import audit_record
from console.core.errors import Refused
from integrations.models import Integration


def drift_request(actor: Any, integration: Integration, request: Any = None) -> None:
    """Queue a computation of ``integration``'s drift (once the caller's transaction commits) and
    audit who asked. A deleted integration is refused (409): nothing of it is compared any more."""
    if integration.archived_at is not None:
        raise Refused(f"{integration.name} was deleted: its drift is no longer computed.")
    integration_id = integration.pk

    def queue() -> None:
        from reconciliation.tasks import drift_compute_task

        drift_compute_task.delay(integration_id=integration_id)

    transaction.on_commit(queue)
    audit_record(verb="reconciliation.drift_requested", actor=actor, target=integration, request=request)
