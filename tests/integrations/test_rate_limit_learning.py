"""A 429 with Retry-After teaches an integration's rate limit downward, once; a bulk plan says how long it takes."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, connections
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from console.accounts.models import Person
from console.audit.models import AuditEvent
from integrations import rate_limits
from integrations.extraction import extraction_run_execute
from integrations.models import ExtractionRun, Integration, TargetGroup, TargetMembership, TargetUser
from integrations.rate_limits import MIN_RATE_PER_SECOND, learn_from_429
from integrations.scim_client import ScimClient
from provisioning.execution import action_execute
from provisioning.models import Action
from provisioning.services import action_request
from tests.scim_peer import ERROR, PEER_TOKEN, SCIM, Peer, Throttled, _serve

LOWERED = "integration.rate_limit_lowered"


def _lowerings() -> int:
    return AuditEvent.objects.filter(verb=LOWERED).count()


@pytest.fixture
def peer_limiting_reads(scim2_server_app: Any) -> Iterator[dict[str, Any]]:
    """The real server behind a front that answers 429 with Retry-After to the next GETs of
    /Users pages from ``from_start`` on, ``refusals_left`` times."""
    state: dict[str, Any] = {"url": "", "refusals_left": 0, "retry_after": 1, "from_start": 1}

    def front(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start = int(
            dict(p.split("=", 1) for p in environ.get("QUERY_STRING", "").split("&") if "=" in p).get("startIndex", "1")
        )
        refuse = environ["REQUEST_METHOD"] == "GET" and environ["PATH_INFO"].rstrip("/").endswith("/Users")
        if refuse and start >= state["from_start"] and state["refusals_left"] > 0:
            state["refusals_left"] -= 1
            body = json.dumps({"schemas": [ERROR], "status": "429", "detail": "slow down"}).encode()
            start_response(
                "429 Too Many Requests",
                [
                    ("Content-Type", SCIM),
                    ("Retry-After", str(state["retry_after"])),
                    ("Content-Length", str(len(body))),
                ],
            )
            return [body]
        return scim2_server_app(environ, start_response)

    for port in _serve(front):
        state["url"] = f"http://localhost:{port}"
        yield state


def _extract(integration: Integration) -> ExtractionRun:
    run = ExtractionRun.objects.create(integration=integration, trigger="manual")
    done = extraction_run_execute(run_id=run.pk, client=ScimClient(integration, sleep=lambda seconds: None))
    assert done is not None
    return done


@pytest.mark.django_db
def test_an_action_meeting_a_429_lowers_the_limit_once_and_the_page_says_so(
    peer: Peer, peer_throttled: Throttled, make_person: Callable[..., Person], admin_client: Client
) -> None:
    peer_throttled.refusals_left = 2
    app = Integration.objects.create(
        name="Throttled", base_url=peer_throttled.url, bearer_token=PEER_TOKEN, provisioning_enabled=True
    )
    assert app.rate_limit_per_second == 10
    requester = make_person("requester", roles=["operator"])
    action = action_request(
        actor=requester, integration=app, action_type="SYNC_IDENTITIES", person=make_person("jane.doe")
    )
    assert action_execute(action.pk).retry_in == 1  # the server's Retry-After
    app.refresh_from_db()
    assert app.rate_limit_per_second == 5
    assert app.rate_limit_learned_at is not None
    assert app.rate_limit_learned_note.startswith("Lowered from 10/s to 5/s after a 429 with Retry-After 1 s at ")

    Action.objects.filter(pk=action.pk).update(next_attempt_at=None)
    assert action_execute(action.pk).retry_in == 1  # a second 429, within the cooldown: not lowered again
    app.refresh_from_db()
    assert app.rate_limit_per_second == 5
    Action.objects.filter(pk=action.pk).update(next_attempt_at=None)
    done = action_execute(action.pk).action
    assert done is not None
    assert done.state == "succeeded", done.last_error

    assert _lowerings() == 1
    event = AuditEvent.objects.get(verb=LOWERED)
    assert (event.target_id, event.details["from_per_second"], event.details["to_per_second"]) == (str(app.pk), 10, 5)
    assert event.details["retry_after"] == 1
    page = admin_client.get(f"/integrations/{app.pk}/").content.decode()
    assert 'data-testid="rate-limit-learned"' in page
    assert "Lowered from 10/s to 5/s after a 429 with Retry-After 1 s" in page
    assert "The application's 429 taught it" in page


# Committed (transaction=True): on PostgreSQL the lowering may go through another connection (below).
@pytest.mark.django_db(transaction=True)
def test_an_extraction_meeting_429s_lowers_the_limit_once(peer: Peer, peer_limiting_reads: dict[str, Any]) -> None:
    for n in range(3):
        peer.user(f"user{n}")
    peer_limiting_reads["refusals_left"] = 2  # the read is tried again after each (Retry-After honoured)
    integration = Integration.objects.create(
        name="App", base_url=peer_limiting_reads["url"], bearer_token=PEER_TOKEN, rate_limit_per_second=4
    )
    run = _extract(integration)
    assert run.status == "succeeded", run.error
    assert run.users_seen == 3
    integration.refresh_from_db()
    assert integration.rate_limit_per_second == 2
    assert "Lowered from 4/s to 2/s after a 429 with Retry-After 1 s" in integration.rate_limit_learned_note
    assert _lowerings() == 1


@pytest.mark.django_db(transaction=True)
def test_a_429_while_the_extraction_lends_its_connection_to_the_writer_is_learned_on_another(
    peer: Peer, peer_limiting_reads: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL an extraction's background writer holds the reading thread's connection:
    the lowering goes through a connection of its own (elsewhere, the same one)."""
    for n in range(5):
        peer.user(f"user{n}")
    peer_limiting_reads.update(refusals_left=1, from_start=3)  # the second page of two users
    integration = Integration.objects.create(
        name="Paged", base_url=peer_limiting_reads["url"], bearer_token=PEER_TOKEN, page_size=2
    )
    own_connection: list[bool] = []
    original = rate_limits._on_own_connection

    def spy(*args: Any) -> float | None:
        own_connection.append(True)
        return original(*args)

    monkeypatch.setattr(rate_limits, "_on_own_connection", spy)
    run = _extract(integration)
    assert run.status == "succeeded", run.error
    assert run.users_seen == 5
    integration.refresh_from_db()
    assert integration.rate_limit_per_second == 5
    assert _lowerings() == 1
    threaded = connection.vendor == "postgresql" and settings.EXTRACTION_BACKGROUND_WRITES
    assert own_connection == ([True] if threaded else [])


@pytest.mark.django_db(transaction=True)
def test_concurrent_429s_lower_the_limit_once() -> None:
    integration = Integration.objects.create(name="Busy", base_url="https://busy.example.com/scim", bearer_token="t")
    workers = [Integration.objects.get(pk=integration.pk) for _ in range(6)]  # each worker's own copy
    barrier = threading.Barrier(len(workers))
    results: list[float | None] = []

    def meet_429(copy: Integration) -> None:
        try:
            barrier.wait(timeout=10)
            results.append(learn_from_429(copy, 30))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=meet_429, args=(copy,)) for copy in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results, key=lambda r: r or 0) == [None] * 5 + [5]
    integration.refresh_from_db()
    assert integration.rate_limit_per_second == 5
    assert _lowerings() == 1
    assert {copy.rate_limit_per_second for copy in workers} == {5}  # every worker goes at the lowered rate


@pytest.mark.django_db
def test_a_worker_holding_the_old_limit_takes_the_lowered_one_instead_of_lowering_again() -> None:
    integration = Integration.objects.create(name="Busy", base_url="https://busy.example.com/scim", bearer_token="t")
    first, second = Integration.objects.get(pk=integration.pk), Integration.objects.get(pk=integration.pk)
    assert learn_from_429(first, 30) == 5
    assert learn_from_429(second, 30) is None
    assert second.rate_limit_per_second == 5
    assert second.rate_limit_learned_note == first.rate_limit_learned_note
    # Lowered meanwhile by another worker, its cooldown past: the update that halves 10 finds 5 and does nothing.
    Integration.objects.filter(pk=integration.pk).update(rate_limit_learned_at=timezone.now() - timedelta(hours=1))
    stale = {"rate_limit_per_second": 10.0, "rate_limit_learned_at": None, "rate_limit_learned_note": ""}
    real_stored = rate_limits._stored
    answers = iter([stale])

    def read_before_the_other_worker_wrote(pk: int) -> dict[str, Any] | None:
        return next(answers, None) or real_stored(pk)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rate_limits, "_stored", read_before_the_other_worker_wrote)
        assert learn_from_429(Integration.objects.get(pk=integration.pk), 30) is None
    integration.refresh_from_db()
    assert integration.rate_limit_per_second == 5
    assert _lowerings() == 1


@pytest.mark.django_db
def test_no_lowering_within_the_retry_after_or_the_cooldown_then_it_halves_again() -> None:
    integration = Integration.objects.create(name="Slow", base_url="https://slow.example.com/scim", bearer_token="t")
    start = timezone.now()
    assert learn_from_429(integration, 30, now=start) == 5
    assert learn_from_429(integration, 30, now=start + timedelta(seconds=59)) is None  # the cooldown is a minute
    assert learn_from_429(integration, None, now=start + timedelta(seconds=61)) == 2.5
    later = start + timedelta(seconds=61)
    assert learn_from_429(integration, 300, now=later + timedelta(seconds=200)) is None  # within its Retry-After
    assert learn_from_429(integration, 300, now=later + timedelta(seconds=301)) == 1.25
    integration.refresh_from_db()
    assert integration.rate_limit_per_second == 1.25
    assert "Lowered from 2.5/s to 1.25/s after a 429 with Retry-After 300 s" in integration.rate_limit_learned_note
    assert _lowerings() == 3


@pytest.mark.django_db
def test_the_limit_never_goes_below_the_floor_nor_up() -> None:
    integration = Integration.objects.create(
        name="Tiny", base_url="https://tiny.example.com/scim", bearer_token="t", rate_limit_per_second=0.08
    )
    start = timezone.now()
    assert learn_from_429(integration, 1, now=start) == MIN_RATE_PER_SECOND
    assert learn_from_429(integration, 1, now=start + timedelta(hours=1)) is None  # at the floor
    integration.refresh_from_db()
    assert integration.rate_limit_per_second == MIN_RATE_PER_SECOND

    other = Integration.objects.create(
        name="Other", base_url="https://other.example.com/scim", bearer_token="t", rate_limit_per_second=2
    )
    # 100 requests in 10 s were sent (faster than the limit, from elsewhere): halved from the limit, not raised.
    assert learn_from_429(other, None, 100, 10.0) == 1
    # One request in 2 s was refused: halved from the rate actually sent.
    assert learn_from_429(other, None, 1, 2.0, now=timezone.now() + timedelta(hours=1)) == 0.25
    assert "(0.5/s were being sent)" in Integration.objects.get(pk=other.pk).rate_limit_learned_note


@pytest.mark.django_db
def test_an_unsaved_integration_or_a_failing_database_learns_nothing_and_raises_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert learn_from_429(Integration(name="Unsaved", base_url="https://x.example.com"), 5) is None
    integration = Integration.objects.create(name="X", base_url="https://x.example.com/scim", bearer_token="t")

    def broken(pk: int) -> None:
        raise RuntimeError("database gone")

    monkeypatch.setattr(rate_limits, "_stored", broken)
    assert learn_from_429(integration, 5) is None
    assert integration.rate_limit_per_second == 10


@pytest.mark.django_db
def test_an_admin_editing_the_rate_limit_clears_what_a_429_taught(
    admin_client: Client, admin: Person, api_client_for: Callable[[Person], APIClient]
) -> None:
    integration = Integration.objects.create(name="Jira", base_url="https://jira.example.com/scim", bearer_token="t")
    assert learn_from_429(integration, 30) == 5
    form = {
        "name": "Jira",
        "kind": "scim",
        "base_url": "https://jira.example.com/scim",
        "auth_type": "bearer",
        "users_endpoint": "Users",
        "groups_endpoint": "Groups",
        "timeout_seconds": 30,
        "page_size": 100,
        "rate_limit_per_second": 5,
        "rate_limit_burst": 20,
        "max_concurrency": 4,
    }
    assert admin_client.post(f"/integrations/{integration.pk}/edit/", form).status_code == 302
    integration.refresh_from_db()
    assert integration.rate_limit_learned_note  # saved, the limit unchanged: the note stays
    assert (
        admin_client.post(f"/integrations/{integration.pk}/edit/", {**form, "rate_limit_per_second": 8}).status_code
        == 302
    )
    integration.refresh_from_db()
    assert (integration.rate_limit_per_second, integration.rate_limit_learned_note) == (8, "")
    assert integration.rate_limit_learned_at is None
    assert "rate-limit-learned" not in admin_client.get(f"/integrations/{integration.pk}/").content.decode()

    assert learn_from_429(integration, 30) == 4  # learning starts again at once
    api = api_client_for(admin)
    kept = api.patch(f"/api/v1/integrations/{integration.pk}/", {"timeout_seconds": 20}, format="json").json()
    assert kept["rate_limit_learned_note"].startswith("Lowered from 8/s to 4/s")
    cleared = api.patch(f"/api/v1/integrations/{integration.pk}/", {"rate_limit_per_second": 6}, format="json").json()
    assert (cleared["rate_limit_per_second"], cleared["rate_limit_learned_note"]) == (6, "")
    assert cleared["rate_limit_learned_at"] is None


@pytest.fixture
def accounts(db: None) -> tuple[Integration, list[TargetUser]]:
    """An integration at 0.5 requests/s with 60 accounts, one of them in a group."""
    integration = Integration.objects.create(
        name="Plans",
        base_url="https://plans.example.com/scim",
        bearer_token="t",
        provisioning_enabled=True,
        supports_hard_delete=True,
        rate_limit_per_second=0.5,
    )
    users = [
        TargetUser.objects.create(integration=integration, remote_id=f"u{n}", user_name=f"user{n}", content_hash="-")
        for n in range(60)
    ]
    group = TargetGroup.objects.create(integration=integration, remote_id="g1", display_name="Staff", content_hash="-")
    TargetMembership.objects.create(integration=integration, group=group, member_remote_id="u0", user=users[0])
    return integration, users


def test_a_bulk_plan_says_how_long_it_takes_at_the_rate_limit(
    accounts: tuple[Integration, list[TargetUser]],
    admin: Person,
    admin_client: Client,
    api_client_for: Callable[[Person], APIClient],
) -> None:
    integration, users = accounts
    # 60 deactivations and one membership removal: 61 requests at 0.5/s, 122 s.
    page = admin_client.post(
        "/actions/bulk/",
        {
            "integration": integration.pk,
            "action_type": "DEPROVISION_IDENTITY",
            "target_user": [u.pk for u in users],
            "dry_run": "1",
        },
    ).content.decode()
    assert "61 SCIM requests: about 3 min at 0.5 requests/s" in page
    body = (
        api_client_for(admin)
        .post(
            "/api/v1/actions/",
            {
                "integration": integration.pk,
                "action_type": "DEPROVISION_IDENTITY",
                "target_users": [u.pk for u in users],
                "dry_run": True,
            },
            format="json",
        )
        .json()
    )
    assert body["estimate"] == {
        "requests": 61,
        "rate_per_second": 0.5,
        "seconds": 122.0,
        "rate_limit_note": "",
        "text": "about 3 min at 0.5 requests/s",
    }
    assert Action.objects.count() == 0  # a dry run requests nothing


def test_a_plan_after_a_429_goes_at_the_lowered_limit_and_says_why(
    accounts: tuple[Integration, list[TargetUser]], admin_client: Client
) -> None:
    integration, users = accounts
    assert learn_from_429(integration, 120) == 0.25
    page = admin_client.post(
        "/actions/bulk/",
        {
            "integration": integration.pk,
            "action_type": "DELETE_IDENTITY",
            "target_user": [u.pk for u in users[:3]],
            "dry_run": "1",
        },
    ).content.decode()
    assert "3 SCIM requests: about 12 s at 0.25 requests/s" in page
    assert "Lowered from 0.5/s to 0.25/s after a 429 with Retry-After 120 s" in page
