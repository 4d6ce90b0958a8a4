"""One drift computation of an integration at a time: a second one is skipped, and says why; a
task waits for the running one; a computation whose worker was lost holds nothing for ever."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from console.accounts.models import Person
from console.audit.models import AuditEvent
from integrations.models import Integration
from reconciliation import drift
from reconciliation.drift import drift_compute
from reconciliation.models import DriftItem, DriftRun
from reconciliation.tasks import DRIFT_WAIT_TRIES, drift_compute_task
from tests.reconciliation.drift.conftest import account


def _running(app: Integration, *, ago: timedelta = timedelta(seconds=5)) -> DriftRun:
    return DriftRun.objects.create(
        integration=app,
        trigger=DriftRun.Trigger.ON_DEMAND,
        status=DriftRun.Status.RUNNING,
        started_at=timezone.now() - ago,
    )


def test_a_computation_while_another_runs_is_skipped_and_says_which(app: Integration) -> None:
    ghost = account(app, "ghost")
    drift_compute(app)
    before = list(DriftItem.objects.filter(integration=app).values_list("key", "last_seen_at"))
    running = _running(app)
    account(app, "shadow")  # what a second computation would find

    skipped = drift_compute(app)

    assert skipped.status == DriftRun.Status.SKIPPED
    assert skipped.pk != running.pk
    assert skipped.error.startswith(f"Skipped: computation {running.pk} of Wiki, started ")
    assert skipped.error.endswith("was still running; its result stands.")
    assert skipped.counts["orphan"] == 1  # what is stored, untouched
    assert list(DriftItem.objects.filter(integration=app).values_list("key", "last_seen_at")) == before
    assert before[0][0] == f"account:{ghost.pk}"
    running.refresh_from_db()
    assert running.status == DriftRun.Status.RUNNING


def test_a_computation_whose_worker_was_lost_is_failed_and_the_next_one_runs(app: Integration, settings: Any) -> None:
    settings.DRIFT_LEASE_SECONDS = 60
    account(app, "ghost")
    lost = _running(app, ago=timedelta(seconds=61))

    run = drift_compute(app)

    assert run.status == DriftRun.Status.SUCCEEDED
    assert run.counts["orphan"] == 1
    lost.refresh_from_db()
    assert lost.status == DriftRun.Status.FAILED
    assert lost.error.startswith("Lost: still running after 60 seconds")
    assert lost.finished_at is not None


def test_another_integrations_computation_does_not_hold_this_one(app: Integration) -> None:
    other = Integration.objects.create(name="Other", base_url="https://other.example/scim/v2", bearer_token="t")
    _running(other)
    assert drift_compute(app).status == DriftRun.Status.SUCCEEDED


def test_the_task_waits_for_the_running_computation_then_records_a_skip(app: Integration) -> None:
    running = _running(app)
    result = drift_compute_task.apply(kwargs={"integration_id": app.pk})  # a retry runs at once when applied here

    assert result.successful(), result.traceback
    runs = list(DriftRun.objects.filter(integration=app).exclude(pk=running.pk))
    assert [r.status for r in runs] == [DriftRun.Status.SKIPPED]  # after DRIFT_WAIT_TRIES waits, once
    assert DRIFT_WAIT_TRIES > 1
    DriftRun.objects.filter(pk=running.pk).update(status=DriftRun.Status.SUCCEEDED, finished_at=timezone.now())
    drift_compute_task.apply(kwargs={"integration_id": app.pk})
    assert DriftRun.objects.filter(integration=app).latest("pk").status == DriftRun.Status.SUCCEEDED


def test_check_now_while_a_computation_runs_queues_nothing_and_says_so(
    app: Integration, admin: Person, api_client_for: Callable[[Person], Any], admin_client: Client
) -> None:
    running = _running(app)
    api = api_client_for(admin)

    answer = api.post(f"/api/v1/integrations/{app.pk}/drift/compute/")

    assert answer.status_code == 202
    body = answer.json()
    assert body["queued"] is False
    assert body["running"] == running.pk
    assert f"already running (computation {running.pk}, started " in body["detail"]
    assert not AuditEvent.objects.filter(verb="drift.requested").exists()
    page = admin_client.post(f"/integrations/{app.pk}/drift/check/", follow=True).content.decode()
    assert f"A drift computation of Wiki is already running (computation {running.pk}" in page
    DriftRun.objects.filter(pk=running.pk).update(status=DriftRun.Status.SUCCEEDED)
    queued = api.post(f"/api/v1/integrations/{app.pk}/drift/compute/").json()
    assert queued["queued"] is True
    assert queued["running"] is None


@pytest.mark.django_db(transaction=True)
def test_two_computations_at_once_never_run_side_by_side(app: Integration, monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL the second finds the first running and is skipped at once; on SQLite, whose
    transactions take the database's write lock first, it waits for the first to end, then runs."""
    account(app, "ghost")
    inside, release = threading.Event(), threading.Event()
    real = drift.drift_find

    def slow_find(integration: Integration) -> Any:
        inside.set()
        assert release.wait(20)
        return real(integration)

    monkeypatch.setattr(drift, "drift_find", slow_find)
    first: list[DriftRun] = []

    def compute() -> None:
        try:
            first.append(drift_compute(app))
        finally:
            connection.close()

    thread = threading.Thread(target=compute)
    thread.start()
    timer = threading.Timer(1.5, release.set)  # the first ends on its own, whatever the second does
    try:
        assert inside.wait(20)  # the first holds the integration, mid-computation
        timer.start()
        second = drift_compute(app)
    finally:
        release.set()
        timer.cancel()
        thread.join(30)

    (done,) = first
    assert done.status == DriftRun.Status.SUCCEEDED
    if connection.vendor == "postgresql":
        assert second.status == DriftRun.Status.SKIPPED
        assert f"computation {done.pk} of Wiki" in second.error
        assert second.finished_at is not None
        ended = DriftRun.objects.get(pk=done.pk).finished_at
        assert ended is not None
        assert second.finished_at < ended  # did not wait
    else:
        assert second.status == DriftRun.Status.SUCCEEDED
        assert second.finished_at is not None
        assert done.finished_at is not None
        assert second.finished_at > done.finished_at  # ran after the first, not beside it
    assert DriftItem.objects.filter(integration=app).count() == 1
    assert not DriftRun.objects.filter(status=DriftRun.Status.RUNNING).exists()
