"""What reconciliation listens to: each successful extraction, and each drift computation."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.dispatch import receiver

from console.audit.services import audit_record
from console.core.errors import ConsoleError
from integrations.signals import extraction_succeeded
from reconciliation.signals import drift_computed

logger = logging.getLogger(__name__)


@receiver(extraction_succeeded)
def on_extraction(sender: Any, run: Any, **kwargs: Any) -> None:
    """Compute the integration's drift once the run's results are committed."""
    from reconciliation.tasks import drift_compute_task

    run_id = run.pk
    transaction.on_commit(lambda: drift_compute_task.delay(run_id=run_id))


@receiver(drift_computed)
def on_drift_computed(sender: Any, drift_run: Any, **kwargs: Any) -> None:
    """Auto-remediation, where the integration's lifecycle policy opted in (sent after commit)."""
    from reconciliation.auto import auto_remediate

    try:
        auto_remediate(drift_run)
    except ConsoleError as refusal:  # refused as a request would be: said in the audit log, drift stays open
        logger.warning("auto-remediation refused", extra={"integration": drift_run.integration_id})
        audit_record(
            verb="auto_remediation.refused",
            target=drift_run.integration,
            details={"drift_run": drift_run.pk, "problem": str(refusal)},
        )
