"""Liveness and readiness of the console's parts."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import Error as DatabaseDriverError
from django.db import connection
from django.utils import timezone
from kombu.exceptions import KombuError

from console.core.models import WorkerHeartbeat


def check_database() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseDriverError as exc:  # any driver error means not ready
        return False, f"database unreachable: {type(exc).__name__}"
    return True, "ok"


def check_broker() -> tuple[bool, str]:
    from console.celery import app

    with app.connection_for_write() as conn:
        # What this transport's driver raises when its server is away, and kombu's own.
        failures: tuple[type[BaseException], ...] = (OSError, KombuError, *conn.connection_errors, *conn.channel_errors)
        try:
            conn.ensure_connection(max_retries=1, timeout=3)
            # Virtual transports (SQLAlchemy, Redis) only touch the server on use.
            conn.default_channel  # noqa: B018
        except failures as exc:
            return False, f"broker unreachable: {type(exc).__name__}"
    return True, "ok"


def check_workers() -> tuple[bool, str]:
    try:
        newest = WorkerHeartbeat.objects.order_by("-last_seen_at").values_list("last_seen_at", flat=True).first()
    except DatabaseDriverError as exc:
        return False, f"worker heartbeats unreadable: {type(exc).__name__}"
    if newest is None:
        return False, "no worker has reported"
    age = timezone.now() - newest
    if age > timedelta(seconds=settings.WORKER_HEARTBEAT_MAX_AGE_SECONDS):
        return False, f"no worker has reported for {int(age.total_seconds())} s"
    return True, "ok"


def readiness() -> dict[str, tuple[bool, str]]:
    return {"database": check_database(), "broker": check_broker(), "worker": check_workers()}
