"""Runs whose worker died or whose message was lost are failed by a lease, so the next can start."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from integrations.extraction import extraction_run_execute, extraction_start, extractions_recover
from integrations.models import ExtractionRun, Integration, TargetUser
from integrations.scim_client import ScimClient
from integrations.tasks import extraction_run_task, extractions_recover_task
from tests.integrations.conftest import Peer

pytestmark = pytest.mark.django_db


def stuck_run(integration: Integration, *, silent_for: timedelta) -> ExtractionRun:
    """A run a worker claimed and then stopped renewing: as a worker that died leaves it."""
    then = timezone.now() - silent_for
    return ExtractionRun.objects.create(
        integration=integration,
        trigger="schedule",
        status="running",
        queued_at=then,
        started_at=then,
        heartbeat_at=then,
    )


def test_beat_runs_the_recovery_every_minute() -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["extractions-recover"]
    assert entry["task"] == extractions_recover_task.name
    assert entry["schedule"] == 60
    assert settings.EXTRACTION_LEASE_SECONDS == 600


def test_a_run_whose_worker_died_is_failed_and_the_next_extraction_starts(
    peer: Peer, make_integration: Callable[..., Integration]
) -> None:
    peer.user("ada")
    integration = make_integration(peer.url)
    stuck = stuck_run(integration, silent_for=timedelta(seconds=settings.EXTRACTION_LEASE_SECONDS + 5))
    assert extraction_start(integration=integration, trigger="manual") == stuck  # still blocks a new one
    extraction_run_task(stuck.pk)  # the redelivered task: the run is not queued, so it is not taken
    stuck.refresh_from_db()
    assert stuck.status == "running"

    assert extractions_recover_task() == 1

    stuck.refresh_from_db()
    assert stuck.status == "failed"
    assert stuck.error.startswith("worker lost")
    assert stuck.finished_at is not None
    fresh = extraction_start(integration=integration, trigger="manual")
    assert fresh.pk != stuck.pk
    done = extraction_run_execute(run_id=fresh.pk)
    assert done is not None
    assert done.status == "succeeded", done.error
    assert TargetUser.objects.get(integration=integration).user_name == "ada"


def test_a_run_that_renewed_its_heartbeat_within_the_lease_is_left_alone(
    make_integration: Callable[..., Integration], settings: Any
) -> None:
    settings.EXTRACTION_LEASE_SECONDS = 120
    integration = make_integration("https://scim.example.com/v2")
    alive = stuck_run(integration, silent_for=timedelta(seconds=100))
    assert extractions_recover() == 0
    alive.refresh_from_db()
    assert alive.status == "running"
    assert extractions_recover(now=timezone.now() + timedelta(seconds=30)) == 1


def test_a_queued_run_that_no_worker_ever_took_is_failed_after_the_limit(
    make_integration: Callable[..., Integration], settings: Any
) -> None:
    settings.EXTRACTION_QUEUED_MAX_SECONDS = 300
    integration = make_integration("https://scim.example.com/v2")
    lost = ExtractionRun.objects.create(
        integration=integration, trigger="schedule", queued_at=timezone.now() - timedelta(seconds=301)
    )
    recent = ExtractionRun.objects.create(
        integration=make_integration("https://b.example.com", name="B"), trigger="api"
    )
    assert extractions_recover() == 1
    lost.refresh_from_db()
    recent.refresh_from_db()
    assert (lost.status, recent.status) == ("failed", "queued")
    assert "never started" in lost.error
    assert extraction_start(integration=integration, trigger="manual").pk != lost.pk


class PageWatcher(ScimClient):
    """The real client, noting the run's heartbeat before each request and able to act between pages.

    It reads the database between pages, so the tests that use it write in step with the
    reads (``EXTRACTION_BACKGROUND_WRITES`` off): a background writer holds the connection
    while it writes. ``test_background_writes`` covers the lease with the writer on.
    """

    def __init__(self, integration: Integration, run: ExtractionRun, between: Callable[[int], None] | None = None):
        super().__init__(integration)
        self.run, self.between, self.heartbeats = run, between, []  # type: ignore[var-annotated]

    def get_json(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.heartbeats.append(ExtractionRun.objects.values_list("heartbeat_at", flat=True).get(pk=self.run.pk))
        if self.between is not None:
            self.between(len(self.heartbeats))
        return super().get_json(path, params)


def test_each_page_renews_the_heartbeat(
    peer: Peer, make_integration: Callable[..., Integration], settings: Any
) -> None:
    settings.EXTRACTION_BACKGROUND_WRITES = False  # the watcher reads the database between pages
    settings.EXTRACTION_WRITE_SECONDS = 0  # what was read is written after every page
    for name in ("ada", "bob", "carl"):
        peer.user(name)
    integration = make_integration(peer.url, page_size=1, discover_extensions=False)
    run = ExtractionRun.objects.create(integration=integration, trigger="manual")
    client = PageWatcher(integration, run)
    done = extraction_run_execute(run_id=run.pk, client=client)
    assert done is not None
    assert done.status == "succeeded", done.error
    beats = client.heartbeats
    assert None not in beats  # set when the run was claimed
    assert beats == sorted(beats)
    assert len(set(beats[:4])) == 4  # three pages of users, then the empty page: renewed after each
    assert done.heartbeat_at is not None
    assert done.heartbeat_at >= beats[-1]


def test_a_worker_that_lost_its_lease_stops_and_leaves_the_run_failed(
    peer: Peer, make_integration: Callable[..., Integration], settings: Any
) -> None:
    settings.EXTRACTION_BACKGROUND_WRITES = False  # the watcher reads the database between pages
    settings.EXTRACTION_WRITE_SECONDS = 0
    for name in ("ada", "bob", "carl"):
        peer.user(name)
    integration = make_integration(peer.url, page_size=1, discover_extensions=False)
    run = ExtractionRun.objects.create(integration=integration, trigger="manual")

    def given_up_after_the_first_page(request_number: int) -> None:
        if request_number == 2:  # while this worker was slow, recovery judged it lost
            assert extractions_recover(now=timezone.now() + timedelta(seconds=settings.EXTRACTION_LEASE_SECONDS + 1))

    client = PageWatcher(integration, run, between=given_up_after_the_first_page)
    result = extraction_run_execute(run_id=run.pk, client=client)

    assert result is not None
    assert result.status == "failed"
    assert result.error.startswith("worker lost")  # the worker's late outcome did not overwrite it
    assert len(client.heartbeats) == 2  # it stopped at the page after losing the lease
    assert TargetUser.objects.filter(integration=integration).count() == 1  # that page was not written
    assert extraction_start(integration=integration, trigger="manual").status == "queued"


def test_pages_read_between_two_writes_are_written_together_with_their_progress(
    peer: Peer, make_integration: Callable[..., Integration], settings: Any
) -> None:
    settings.EXTRACTION_BACKGROUND_WRITES = False  # the watcher reads the database between pages
    settings.EXTRACTION_WRITE_SECONDS = 3600  # no page is written on time: only at the end of each list
    for name in ("ada", "bob", "carl"):
        peer.user(name)
    integration = make_integration(peer.url, page_size=1, discover_extensions=False)
    run = ExtractionRun.objects.create(integration=integration, trigger="manual")
    stored: list[int] = []

    def count_stored(request_number: int) -> None:
        stored.append(TargetUser.objects.filter(integration=integration).count())

    client = PageWatcher(integration, run, between=count_stored)
    done = extraction_run_execute(run_id=run.pk, client=client)

    assert done is not None
    assert done.status == "succeeded", done.error
    # Before each of the four user requests (three pages, then the empty one) nothing was written yet,
    # and the lease was not renewed in between; the three users came in one write at the end of the list.
    assert stored[:4] == [0, 0, 0, 0]
    assert len(set(client.heartbeats[:4])) == 1
    assert stored[4] == 3  # the groups' first request: the users' write came before it
    assert client.heartbeats[4] > client.heartbeats[3]
    assert (done.created, done.users_seen, done.pages) == (3, 3, 3)


def test_a_lost_lease_discards_what_was_read_since_the_last_write(
    peer: Peer, make_integration: Callable[..., Integration], settings: Any
) -> None:
    settings.EXTRACTION_BACKGROUND_WRITES = False  # the watcher reads the database between pages
    settings.EXTRACTION_WRITE_SECONDS = 3600
    for name in ("ada", "bob", "carl"):
        peer.user(name)
    integration = make_integration(peer.url, page_size=1, discover_extensions=False)
    run = ExtractionRun.objects.create(integration=integration, trigger="manual")

    def given_up_while_reading(request_number: int) -> None:
        if request_number == 3:
            assert extractions_recover(now=timezone.now() + timedelta(seconds=settings.EXTRACTION_LEASE_SECONDS + 1))

    client = PageWatcher(integration, run, between=given_up_while_reading)
    result = extraction_run_execute(run_id=run.pk, client=client)

    assert result is not None
    assert (result.status, result.error[:11]) == ("failed", "worker lost")
    assert len(client.heartbeats) == 4  # it read to the end of the list, then its write found the lease gone
    assert not TargetUser.objects.filter(integration=integration).exists()


def test_a_slow_page_renews_the_lease_before_its_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries and slow answers inside one page must not make a healthy run look lost."""
    from integrations.extraction import LeaseLost, flow

    integration = Integration.objects.create(name="Slow", base_url="https://slow.example.com/scim/v2")
    run = stuck_run(integration, silent_for=timedelta(minutes=5))
    before = run.heartbeat_at
    clock = [1000.0]
    monkeypatch.setattr(flow.time, "monotonic", lambda: clock[0])
    renew = flow._heartbeat(run)
    renew()  # just renewed: no write
    run.refresh_from_db()
    assert run.heartbeat_at == before
    clock[0] += flow.HEARTBEAT_EVERY_SECONDS
    renew()
    run.refresh_from_db()
    assert run.heartbeat_at is not None
    assert before is not None
    assert run.heartbeat_at > before
    ExtractionRun.objects.filter(pk=run.pk).update(status="failed")  # given up meanwhile
    clock[0] += flow.HEARTBEAT_EVERY_SECONDS
    with pytest.raises(LeaseLost):
        renew()


def test_batches_grow_from_the_start_of_a_list_and_halve_near_its_end(settings: Any) -> None:
    """The first batch is small, so the writer starts early; each after it doubles up to the most;
    near the end (by the server's total) they halve again, so the last write, which nothing
    overlaps, is small. Lists too small for that are written at their end."""
    from integrations.extraction.storage import FLUSH_MAX_ROWS, SMALLEST_BATCH_ROWS, WritePace

    settings.EXTRACTION_WRITE_SECONDS = 3600  # nothing is due on time here
    pace = WritePace()
    assert not pace.due(SMALLEST_BATCH_ROWS - 1)
    assert not pace.due(SMALLEST_BATCH_ROWS - 1, still_to_read=0)
    assert pace.due(SMALLEST_BATCH_ROWS)
    for _ in range(10):
        pace.written()
    assert not pace.due(FLUSH_MAX_ROWS - 1)  # no total: the size and the time alone
    assert pace.due(FLUSH_MAX_ROWS)
    assert not pace.due(2000, still_to_read=2001)
    assert pace.due(2000, still_to_read=2000)

    def batches_of(rows: int, total: int | None) -> list[int]:
        """A list of ``rows`` read 100 at a time; the server reports ``total``."""
        pace, batches, waiting, read = WritePace(), [], 0, 0
        while read < rows:
            read += 100
            waiting += 100
            if pace.due(waiting, None if total is None else total - read):
                batches.append(waiting)
                pace.written()
                waiting = 0
        if waiting:
            batches.append(waiting)  # at the end of the list
        return batches

    assert batches_of(20_000, 20_000) == [500, 1000, 2000, 4000, 5000, 3800, 1900, 900, 500, 400]
    assert batches_of(20_000, None) == [500, 1000, 2000, 4000, 5000, 5000, 2500]
    assert batches_of(400, 400) == [400]
