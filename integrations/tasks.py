"""Celery tasks of integrations: thin wrappers that re-fetch by id and call the service."""

from __future__ import annotations

from celery import shared_task

from integrations.extraction import ExtractionRefused, extraction_run_execute, extractions_recover


@shared_task(acks_late=True, ignore_result=True)
def extraction_run_task(run_id: int) -> None:
    extraction_run_execute(run_id=run_id)


@shared_task(ignore_result=True)
def extractions_dispatch_due() -> int:
    """Beat calls this every minute: queue the extractions whose interval has passed."""
    from integrations.extraction import extraction_start
    from integrations.selectors import integrations_due

    due = integrations_due()
    for integration in due:
        try:
            extraction_start(integration=integration, trigger="schedule")
        except ExtractionRefused:  # disabled since it was found due
            continue
    return len(due)


@shared_task(ignore_result=True)
def extractions_recover_task() -> int:
    """Beat calls this every minute: fail runs whose worker or message was lost."""
    return extractions_recover()


# At most once: a probe that writes must not run again after a lost worker (it would make a
# second test user); a lost probe shows as lost on the page, and the admin probes again.
@shared_task(acks_late=False, ignore_result=True)
def probe_task(integration_id: int, writes: bool, actor_id: int | None = None) -> None:
    from integrations.probe import probe_execute

    probe_execute(integration_id=integration_id, writes=writes, actor_id=actor_id)
