"""Counts in fixed windows: one atomic step each, on Redis or in the database."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from console.core.counters import count_clear, count_give_back, count_in_window, counters_delete_ended
from console.core.models import ThrottleCounter
from console.core.tasks import counters_delete_ended_task

pytestmark = pytest.mark.django_db(transaction=True)


def test_parallel_attempts_are_each_counted_once() -> None:
    start = threading.Barrier(40)

    def count(_: int) -> int:
        start.wait()
        try:
            return count_in_window("parallel", 60).count
        finally:
            connection.close()

    with ThreadPoolExecutor(40) as pool:
        totals = list(pool.map(count, range(40)))
    assert sorted(totals) == list(range(1, 41))


def test_a_window_lasts_from_its_first_attempt_and_then_starts_again() -> None:
    first = count_in_window("short", 1)
    second = count_in_window("short", 1)
    assert (first.count, second.count) == (1, 2)
    assert 0 < second.seconds_left <= first.seconds_left <= 1
    time.sleep(1.1)
    assert count_in_window("short", 1).count == 1


def test_an_aligned_window_ends_on_the_clock() -> None:
    counted = count_in_window("minute", 60, aligned=True)
    assert abs(counted.seconds_left - (60 - time.time() % 60)) < 1


def test_an_attempt_given_back_is_not_counted_and_a_cleared_key_starts_again() -> None:
    for _ in range(3):
        count_in_window("key", 60)
    count_give_back("key")
    assert count_in_window("key", 60).count == 3
    count_clear("key")
    assert count_in_window("key", 60).count == 1
    count_clear("key")
    count_give_back("key")  # nothing to give back: never below zero
    assert count_in_window("key", 60).count == 1


def test_ended_counters_are_deleted_by_the_hourly_task() -> None:
    """The table's rows (where the cache is the database; Redis expires its own keys, and the
    task still clears whatever the table holds)."""
    now = timezone.now()
    ThrottleCounter.objects.create(key="ended", count=4, window_ends_at=now - timedelta(seconds=1))
    ThrottleCounter.objects.create(key="open", count=4, window_ends_at=now + timedelta(minutes=5))
    assert counters_delete_ended_task() == 1
    assert list(ThrottleCounter.objects.values_list("key", flat=True)) == ["open"]
    assert counters_delete_ended() == 0
    assert (
        settings.CELERY_BEAT_SCHEDULE["counters-delete-ended"]["task"]
        == "console.core.tasks.counters_delete_ended_task"
    )
