"""Since when an item drifts, its resolution, the run's record, and asking for a computation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from console.accounts.models import Person
from console.audit.models import AuditEvent
from console.core.errors import Refused
from integrations.models import Integration
from reconciliation import drift
from reconciliation.drift import drift_compute
from reconciliation.models import DriftCategory, DriftItem, DriftRun
from reconciliation.services import drift_request
from reconciliation.signals import drift_computed
from tests.reconciliation.drift.conftest import account


def test_an_item_keeps_since_when_it_drifts_and_goes_once_resolved(
    app: Integration, person: Callable[..., Person]
) -> None:
    ghost = account(app, "ghost")
    drift_compute(app)
    first = DriftItem.objects.get(integration=app)
    earlier = timezone.now() - timedelta(days=3)
    DriftItem.objects.filter(pk=first.pk).update(first_seen_at=earlier, last_seen_at=earlier)

    account(app, "shadow")
    run = drift_compute(app)
    again = DriftItem.objects.get(integration=app, key=f"account:{ghost.pk}")
    assert again.first_seen_at == earlier  # drifted since then
    assert again.last_seen_at > earlier
    assert run.counts[DriftCategory.ORPHAN] == 2

    ghost.owner = person("ghost")
    ghost.owner_source = "manual"
    ghost.save()
    run = drift_compute(app)
    assert not DriftItem.objects.filter(key=f"account:{ghost.pk}").exists()  # resolved: deleted
    assert run.counts == {**dict.fromkeys(DriftCategory.values, 0), "orphan": 1}
    assert run.finished_at is not None
    assert run.finished_at >= run.started_at


def test_the_signal_is_sent_once_the_computation_commits(
    app: Integration, django_capture_on_commit_callbacks: Any
) -> None:
    heard: list[DriftRun] = []

    def listen(sender: Any, drift_run: DriftRun, **kwargs: Any) -> None:
        heard.append(drift_run)

    drift_computed.connect(listen)
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            run = drift_compute(app)
        assert not heard
        for callback in callbacks:
            callback()
    finally:
        drift_computed.disconnect(listen)
    assert heard == [run]


def test_a_failure_is_recorded_on_the_run_and_keeps_the_items(
    app: Integration, monkeypatch: pytest.MonkeyPatch
) -> None:
    account(app, "ghost")
    drift_compute(app)

    def broken(integration: Integration) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(drift, "drift_find", broken)
    run = drift_compute(app)  # not raised
    run.refresh_from_db()
    assert run.status == DriftRun.Status.FAILED
    assert run.error == "RuntimeError: the database went away"
    assert run.finished_at is not None
    assert run.counts[DriftCategory.ORPHAN] == 1
    assert DriftItem.objects.filter(integration=app).count() == 1


def test_a_failure_while_storing_rolls_the_items_back(app: Integration, monkeypatch: pytest.MonkeyPatch) -> None:
    account(app, "ghost")
    drift_compute(app)
    account(app, "shadow")

    def broken(*args: Any) -> None:
        DriftItem.objects.filter(integration=app).delete()
        raise RuntimeError("disk full")

    monkeypatch.setattr(drift, "_store", broken)
    run = drift_compute(app)
    assert run.status == DriftRun.Status.FAILED
    assert DriftItem.objects.filter(integration=app).count() == 1  # as before the failed computation


def test_the_task_computes_after_an_extraction_and_on_demand(app: Integration) -> None:
    from integrations.models import ExtractionRun
    from reconciliation.tasks import drift_compute_task

    account(app, "ghost")
    extraction = ExtractionRun.objects.create(integration=app, trigger="manual", status="succeeded")
    drift_compute_task(run_id=extraction.pk)
    drift_compute_task(integration_id=app.pk)
    runs = list(DriftRun.objects.filter(integration=app).order_by("pk"))
    assert [(r.trigger, r.extraction_run_id) for r in runs] == [("extraction", extraction.pk), ("on_demand", None)]


def test_asking_for_a_computation_queues_it_and_records_who_asked(
    app: Integration, admin: Person, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    from reconciliation import tasks

    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(tasks.drift_compute_task, "delay", lambda **kwargs: sent.append(kwargs))
    with django_capture_on_commit_callbacks(execute=True):
        drift_request(admin, app)
    assert sent == [{"integration_id": app.pk}]
    event = AuditEvent.objects.get(verb="drift.requested")
    assert event.actor_id == admin.pk
    assert event.target_id == str(app.pk)


def test_a_deleted_integration_is_refused(app: Integration, admin: Person) -> None:
    app.archived_at = timezone.now()
    app.save()
    with pytest.raises(Refused, match="was deleted"):
        drift_request(admin, app)
    assert not AuditEvent.objects.filter(verb="drift.requested").exists()
