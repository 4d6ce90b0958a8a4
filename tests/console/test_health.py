"""/healthz and /readyz."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from console.celery import app
from console.core.models import WorkerHeartbeat
from tests.conftest import WorkerProcess


def test_healthz_answers_without_signing_in(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_is_503_and_names_the_worker_when_no_worker_has_reported(client: Client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["worker"]
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True
    assert body["checks"]["worker"]["detail"] == "no worker has reported"


@pytest.mark.django_db
def test_readyz_is_503_when_the_last_heartbeat_is_stale(client: Client) -> None:
    old = timezone.now() - timedelta(minutes=10)
    WorkerHeartbeat.objects.create(hostname="w@gone", last_seen_at=old, started_at=old)
    body = client.get("/readyz").json()
    assert body["failed"] == ["worker"]
    assert "no worker has reported for" in body["checks"]["worker"]["detail"]


@pytest.mark.django_db
def test_readyz_names_the_broker_when_it_is_unreachable(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    WorkerHeartbeat.objects.create(hostname="w@here", last_seen_at=timezone.now(), started_at=timezone.now())
    unreachable = "redis://127.0.0.1:9/0"  # nothing listens on port 9
    original = app.conf.broker_url
    # Celery reads CELERY_BROKER_URL from the environment before its own setting.
    monkeypatch.setenv("CELERY_BROKER_URL", unreachable)
    app.conf.update(broker_url=unreachable)
    try:
        response = client.get("/readyz")
    finally:
        app.conf.update(broker_url=original)
    assert response.status_code == 503
    assert response.json()["failed"] == ["broker"]


@pytest.mark.worker
def test_readyz_is_200_once_a_real_worker_reports(client: Client, start_worker: Callable[..., WorkerProcess]) -> None:
    assert client.get("/readyz").status_code == 503
    start_worker("readyz")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        response = client.get("/readyz")
        if response.status_code == 200:
            break
        time.sleep(0.5)
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "ready"
