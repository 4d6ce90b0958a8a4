"""Extraction's writes beside its reads: the writer thread, its errors, the lease, what is stored."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from integrations.extraction import extraction_run_execute, extractions_recover, flow
from integrations.extraction.writer import BackgroundWriter
from integrations.models import ExtractionRun, Integration, TargetGroup, TargetMembership, TargetUser
from integrations.scim_client import ScimClient
from tests.integrations.conftest import Peer
from tests.integrations.test_extraction import run_now

pytestmark = pytest.mark.django_db


def test_the_writer_runs_beside_the_reader_on_postgresql_in_order_and_sees_its_transaction(
    make_integration: Callable[..., Integration],
) -> None:
    integration = make_integration("https://app.example.com/scim/v2")  # not committed: the test's transaction
    done: list[tuple[int, int, str]] = []

    def note(number: int) -> None:
        done.append((number, threading.get_ident(), Integration.objects.get(pk=integration.pk).name))

    with BackgroundWriter() as writer:
        for number in range(5):
            writer.submit(functools.partial(note, number))
    assert writer.threaded == (connection.vendor == "postgresql")
    assert [number for number, _, _ in done] == [0, 1, 2, 3, 4]
    assert {name for _, _, name in done} == {"App"}  # the reader's uncommitted row, seen by the writer
    threads = {ident for _, ident, _ in done}
    assert len(threads) == 1
    assert (threads == {threading.get_ident()}) == (not writer.threaded)
    assert Integration.objects.filter(pk=integration.pk).exists()  # the reader has its connection back


def test_an_error_in_a_write_reaches_the_reader_and_the_writes_after_it_are_dropped() -> None:
    done: list[int] = []

    def fail() -> None:
        raise ValueError("the database refused the batch")

    def three_writes() -> None:
        with BackgroundWriter() as writer:
            writer.submit(lambda: done.append(1))
            writer.submit(fail)
            writer.submit(lambda: done.append(3))

    with pytest.raises(ValueError, match="refused the batch"):
        three_writes()
    assert done == [1]


def test_the_reader_s_own_error_wins_and_the_writer_is_still_waited_for() -> None:
    done: list[int] = []

    def a_write_then_a_failed_read() -> None:
        with BackgroundWriter() as writer:
            writer.submit(lambda: done.append(1))
            raise KeyError("the reader failed")

    with pytest.raises(KeyError):
        a_write_then_a_failed_read()
    assert done == [1]  # what was handed over was written before the error went on


def test_an_extraction_with_writes_beside_its_reads_stores_what_the_server_holds(
    peer: Peer, make_integration: Callable[..., Integration], settings: Any, admin_client: Client
) -> None:
    settings.EXTRACTION_WRITE_SECONDS = 0  # a hand-over after every page: many writes in flight
    people = [peer.user(f"user{number:02d}", displayName=f"User {number}") for number in range(12)]
    peer.group("Evens", people[::2])
    peer.group("Odds", people[1::2])
    peer.group("Empty", [])
    integration = make_integration(peer.url, page_size=2)

    run = run_now(integration)

    assert run.status == "succeeded", run.error
    assert (run.users_seen, run.groups_seen, run.created, run.updated, run.removed) == (12, 3, 15, 0, 0)
    assert run.pages == 6 + 2
    users = dict(TargetUser.objects.filter(integration=integration).values_list("user_name", "display_name"))
    assert users == {f"user{number:02d}": f"User {number}" for number in range(12)}
    evens = TargetGroup.objects.get(integration=integration, display_name="Evens")
    members = TargetMembership.objects.filter(group=evens)
    assert sorted(members.values_list("user__user_name", flat=True)) == [f"user{n:02d}" for n in range(0, 12, 2)]
    assert evens.member_count == 6
    # The members are stored as memberships, not again in the group's resource.
    assert "members" not in evens.resource
    assert evens.resource["displayName"] == "Evens"
    assert evens.resource["id"] == evens.remote_id
    # A user's page lists its groups (found by its remote id).
    user = TargetUser.objects.get(integration=integration, user_name="user03")
    page = admin_client.get(f"/integrations/{integration.pk}/users/{user.pk}/").content.decode()
    assert ">Odds</a>" in page
    assert ">Evens</a>" not in page

    again = run_now(integration)
    assert (again.status, again.created, again.updated, again.removed) == ("succeeded", 0, 0, 0)


@pytest.mark.django_db(transaction=True)
def test_a_lease_lost_while_writes_are_in_flight_stops_the_run_and_keeps_it_failed(
    peer: Peer, make_integration: Callable[..., Integration], settings: Any
) -> None:
    settings.EXTRACTION_WRITE_SECONDS = 0
    for number in range(6):
        peer.user(f"user{number}")
    integration = make_integration(peer.url, page_size=1, discover_extensions=False)
    run = ExtractionRun.objects.create(integration=integration, trigger="manual")
    requests = 0
    read_before_the_loss: set[str] = set()

    class GivenUpAfterTwoPages(ScimClient):
        def get_json(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
            nonlocal requests
            requests += 1
            if requests == 3:  # the beat, on another connection, judges this worker lost
                beat = threading.Thread(target=recover_as_the_beat)
                beat.start()
                beat.join()
            body = super().get_json(path, params)
            if requests < 3:
                read_before_the_loss.update(resource["id"] for resource in body.get("Resources", []))
            return body

    def recover_as_the_beat() -> None:
        try:
            assert extractions_recover(now=timezone.now() + timedelta(seconds=settings.EXTRACTION_LEASE_SECONDS + 1))
        finally:
            connection.close()

    result = extraction_run_execute(run_id=run.pk, client=GivenUpAfterTwoPages(integration))

    assert result is not None
    assert (result.status, result.error[:11]) == ("failed", "worker lost")  # the late outcome did not overwrite it
    stored = set(TargetUser.objects.filter(integration=integration).values_list("remote_id", flat=True))
    assert len(read_before_the_loss) == 2
    assert stored <= read_before_the_loss  # nothing read after the loss was stored (the reader may be ahead)


def test_the_heartbeat_of_a_slow_page_goes_through_the_writer(
    make_integration: Callable[..., Integration], monkeypatch: pytest.MonkeyPatch
) -> None:
    integration = make_integration("https://slow.example.com/scim/v2")
    run = ExtractionRun.objects.create(integration=integration, trigger="manual", status="running")
    clock = [1000.0]
    monkeypatch.setattr(flow.time, "monotonic", lambda: clock[0])
    handed: list[Callable[[], None]] = []
    renew = flow._heartbeat(run, handed.append)
    renew()
    assert handed == []  # just renewed
    clock[0] += flow.HEARTBEAT_EVERY_SECONDS
    renew()
    assert len(handed) == 1
    before = ExtractionRun.objects.get(pk=run.pk).heartbeat_at
    handed[0]()  # what the writer runs
    assert ExtractionRun.objects.get(pk=run.pk).heartbeat_at != before
