"""Housekeeping tasks of the console itself."""

from __future__ import annotations

from celery import shared_task
from django.contrib.sessions.models import Session
from django.utils import timezone


@shared_task(ignore_result=True)
def sessions_clear_expired() -> int:
    """Delete expired sign-in sessions (database sessions never expire by themselves)."""
    deleted, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    return deleted


@shared_task(ignore_result=True)
def counters_delete_ended_task() -> int:
    """Delete throttle and rate-limit counters whose window has ended."""
    from console.core.counters import counters_delete_ended

    return counters_delete_ended()
