"""What reconciliation listens to: each successful extraction."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.dispatch import receiver

from integrations.signals import extraction_succeeded


@receiver(extraction_succeeded)
def on_extraction(sender: Any, run: Any, **kwargs: Any) -> None:
    """Compute the integration's drift once the run's results are committed."""
    from reconciliation.tasks import drift_compute_task

    run_id = run.pk
    transaction.on_commit(lambda: drift_compute_task.delay(run_id=run_id))
