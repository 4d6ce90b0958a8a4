"""Housekeeping runs on a real worker."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone

from console.core.tasks import sessions_clear_expired
from tests.conftest import WorkerProcess


def test_beat_schedules_the_session_clean_up() -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["sessions-clear-expired"]
    assert entry["task"] == sessions_clear_expired.name


@pytest.mark.worker
def test_a_real_worker_clears_expired_sessions(start_worker: Callable[..., WorkerProcess]) -> None:
    live = SessionStore()
    live.create()
    expired = SessionStore()
    expired.create()
    Session.objects.filter(session_key=expired.session_key).update(expire_date=timezone.now() - timedelta(days=1))
    start_worker("housekeeping", concurrency=1)
    sessions_clear_expired.delay()
    deadline = time.monotonic() + 20
    while Session.objects.filter(session_key=expired.session_key).exists() and time.monotonic() < deadline:
        time.sleep(0.25)
    assert not Session.objects.filter(session_key=expired.session_key).exists()
    assert Session.objects.filter(session_key=live.session_key).exists()
