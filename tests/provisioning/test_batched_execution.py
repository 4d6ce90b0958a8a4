"""Actions queued together go to the workers in few messages, and a worker claims and runs
each message's actions as one batch: one lease, one concurrency slot, the syncs' accounts
looked for a few at a time, the outcomes written together. Against the real SCIM server."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.db import transaction
from django.test import Client, override_settings
from django.utils import timezone

from console.accounts.models import Person
from console.audit.models import AuditEvent
from integrations.models import Integration, TargetUser
from integrations.scim_client import ScimClient
from provisioning.batches import batch_request
from provisioning.execution import actions_execute, claim, claim_batch
from provisioning.models import Action, ActionEvent, ScimCall
from provisioning.services import action_request, actions_sent_together
from provisioning.tasks import actions_execute_task
from tests.provisioning.conftest import server_user
from tests.provisioning.test_workers import wait_for
from tests.scim_peer import PEER_TOKEN, Peer

pytestmark = pytest.mark.django_db


def request_syncs(actor: Person, app: Integration, people: list[Person]) -> list[Action]:
    with transaction.atomic(), actions_sent_together():
        return [
            action_request(actor=actor, integration=app, action_type="SYNC_IDENTITIES", person=person)
            for person in people
        ]


_upstream = httpx.Client()


def forward(request: httpx.Request) -> httpx.Response:
    """Pass a request on to the real server (behind a front that adds one fault)."""
    response = _upstream.send(
        _upstream.build_request(request.method, request.url, headers=request.headers, content=request.content)
    )
    return httpx.Response(response.status_code, headers=response.headers, content=response.content)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[int], dict[str, Any]]]:
    messages: list[tuple[list[int], dict[str, Any]]] = []
    monkeypatch.setattr(
        actions_execute_task, "apply_async", lambda args, **options: messages.append((args[0], options))
    )
    return messages


@override_settings(ACTION_BATCH_SIZE=4)
def test_actions_queued_together_are_sent_in_messages_of_the_batch_size(
    app: Integration,
    requester: Person,
    make_person: Callable[..., Person],
    sent: list[tuple[list[int], dict[str, Any]]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    people = [make_person(f"p{i}") for i in range(10)]
    leaver = app.target_users.create(remote_id="u-9", user_name="leaver", content_hash="-")
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic(), actions_sent_together():
        syncs = [
            action_request(actor=requester, integration=app, action_type="SYNC_IDENTITIES", person=p) for p in people
        ]
        deprovision = action_request(
            actor=requester, integration=app, action_type="DEPROVISION_IDENTITY", target_user=leaver
        )
        try:  # a savepoint that rolls back takes its action with it, message and all
            with transaction.atomic():
                action_request(
                    actor=requester, integration=app, action_type="SYNC_IDENTITIES", person=make_person("gone")
                )
                raise RuntimeError
        except RuntimeError:
            pass
        assert sent == []  # nothing before the commit
    ids = [a.pk for a in syncs]
    assert sent == [
        (ids[0:4], {"countdown": 0.0, "queue": "celery"}),
        (ids[4:8], {"countdown": 0.0, "queue": "celery"}),
        (ids[8:10], {"countdown": 0.0, "queue": "celery"}),
        ([deprovision.pk], {"countdown": 0.0, "queue": "leavers"}),  # leavers keep their own queue
    ]


def test_a_bulk_request_is_one_batch_claim_holding_one_slot(
    peer: Peer,
    app: Integration,
    requester: Person,
    make_person: Callable[..., Person],
    sent: list[tuple[list[int], dict[str, Any]]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    app.max_concurrency = 1
    app.save()
    people = [make_person(f"bulk{i}", email=f"bulk{i}@example.com") for i in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        batch = batch_request(actor=requester, integration=app, action_type="SYNC_IDENTITIES", people=people)
    ids = sorted(batch.actions.values_list("pk", flat=True))
    assert [sorted(message) for message, _ in sent] == [ids]  # one message for the batch

    taken = claim_batch(ids)
    assert sorted(a.pk for a in taken.actions) == ids
    assert len({a.lease_token for a in taken.actions}) == 1  # one lease
    other = action_request(
        actor=requester, integration=app, action_type="CREATE_ENTITLEMENT", parameters={"display_name": "Ops"}
    )
    assert claim(other.pk).busy  # the batch holds the only slot, whatever its size
    notes = list(ActionEvent.objects.filter(action_id__in=ids, to_state="running").values_list("note", flat=True))
    assert len(notes) == 3
    assert all("one of 3 claimed together" in note for note in notes)
    assert AuditEvent.objects.filter(verb="action.running", target_id__in=[str(pk) for pk in ids]).count() == 3


def test_a_batch_of_syncs_looks_accounts_up_together_and_writes_every_outcome(
    peer: Peer, app: Integration, requester: Person, make_person: Callable[..., Person]
) -> None:
    # One account exists already, deactivated: its sync reactivates it instead of a duplicate.
    rehired = peer.user("Person.With.A.Long.Name.07", active=False)  # userName is not case-exact
    people = [make_person(f"person.with.a.long.name.{i:02}") for i in range(50)]
    actions = request_syncs(requester, app, people)

    outcomes = actions_execute([a.pk for a in actions])

    done = [outcome.action for outcome in outcomes]
    assert all(a is not None and a.state == "succeeded" for a in done)
    for action in Action.objects.filter(pk__in=[a.pk for a in actions]):
        assert action.state == "succeeded"
        assert action.lease_token == ""
        expected = "reactivated" if action.person_id == people[7].pk else "created"
        assert action.result["operation"] == expected
        assert action.target_user is not None
        assert action.target_user.user_name.lower() == action.person.username  # type: ignore[union-attr]
        assert ActionEvent.objects.filter(action=action, from_state="running", to_state="succeeded").count() == 1
        assert AuditEvent.objects.filter(verb="action.succeeded", target_id=str(action.pk)).count() == 1
    # The server holds each account once, the re-hire's the one it had.
    for person in people:
        found = server_user(peer, person.username)
        assert found is not None
        assert found["active"] is True
    assert server_user(peer, "person.with.a.long.name.07")["id"] == rehired["id"]  # type: ignore[index]
    assert peer.http.get("/Users").json()["totalResults"] == 50
    # Two combined look-ups (their filters kept under 2,000 characters), each in the log of
    # every sync it settled, and then only the creates: no sync looked for itself.
    lookups = ScimCall.objects.filter(method="GET", url__contains="+or+").values_list("at", flat=True)
    assert len(set(lookups)) == 2
    assert len(lookups) == 50
    for action in actions:
        methods = list(ScimCall.objects.filter(action=action).order_by("at", "pk").values_list("method", flat=True))
        if action.person_id == people[7].pk:
            # the look-up, the reactivation on its own, the other changes, the account read back
            assert methods == ["GET", "PATCH", "PATCH", "GET"]
        else:
            assert methods == ["GET", "POST"]
    assert TargetUser.objects.filter(integration=app).count() == 50  # the console's picture, at once


def test_a_server_that_ignores_the_combined_filter_makes_each_sync_look_for_itself(
    peer: Peer, app: Integration, requester: Person, make_person: Callable[..., Person]
) -> None:
    peer.user("somebody.else")
    peer.user("p1")  # exists: its sync must find it, not create a second
    seen: list[str] = []

    def send(request: httpx.Request) -> httpx.Response:
        """A server that drops a filter it does not understand, and lists every account."""
        query = request.url.params.get("filter", "")
        seen.append(query)
        if " or " in query:
            request.url = request.url.copy_remove_param("filter")
        return forward(request)

    client = ScimClient(app, http=httpx.Client(transport=httpx.MockTransport(send)))
    people = [make_person(f"p{i}") for i in range(3)]
    actions = request_syncs(requester, app, people)

    outcomes = actions_execute([a.pk for a in actions], client)

    results = {o.action.person_id: o.action.result["operation"] for o in outcomes if o.action is not None}
    assert results[people[0].pk] == results[people[2].pk] == "created"
    assert results[people[1].pk] in {"updated", "unchanged"}  # found, not made again
    assert seen[0].count(" or ") == 2  # the combined look-up went first, and was not trusted
    assert [query for query in seen[1:] if query] == ['userName eq "p0"', 'userName eq "p1"', 'userName eq "p2"']
    assert peer.http.get("/Users").json()["totalResults"] == 4


def test_a_sync_of_a_batch_that_fails_is_written_after_the_successes_before_it(
    peer: Peer, app: Integration, requester: Person, make_person: Callable[..., Person]
) -> None:
    people = [make_person("ok0"), make_person("clash", external_id="e-1"), make_person("ok1")]
    actions = request_syncs(requester, app, people)
    bad_id = actions[1].pk

    def refuse_one(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and json.loads(request.content)["userName"] == "clash":
            body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "400", "detail": "bad"}
            return httpx.Response(400, json=body)
        return forward(request)

    client = ScimClient(app, http=httpx.Client(transport=httpx.MockTransport(refuse_one)))
    outcomes = actions_execute([a.pk for a in actions], client)

    states = {o.action.pk: o.action.state for o in outcomes if o.action is not None}
    assert states == {actions[0].pk: "succeeded", bad_id: "failed", actions[2].pk: "succeeded"}
    first_done = ActionEvent.objects.get(action=actions[0], to_state="succeeded")
    failure = ActionEvent.objects.get(action_id=bad_id, to_state="failed")
    assert first_done.pk < failure.pk  # written in the order it happened
    assert "bad" in Action.objects.get(pk=bad_id).last_error
    # The failed sync's own calls are in its log.
    assert list(ScimCall.objects.filter(action_id=bad_id).values_list("method", "status")) == [
        ("GET", 200),
        ("POST", 400),
    ]


@pytest.mark.worker
def test_bulk_syncs_through_a_real_worker(
    peer: Peer, start_worker: Callable[..., Any], make_person: Callable[..., Person]
) -> None:
    app = Integration.objects.create(
        name="Bulk", base_url=peer.url, bearer_token=PEER_TOKEN, provisioning_enabled=True, max_concurrency=2
    )
    operator = make_person("operator", roles=["operator"])
    people = [make_person(f"w{i}", email=f"w{i}@example.com") for i in range(60)]
    start_worker("bulk", concurrency=2)
    batch = batch_request(actor=operator, integration=app, action_type="SYNC_IDENTITIES", people=people)

    wait_for(lambda: batch.actions.filter(state="succeeded").count() == 60)
    assert peer.http.get("/Users").json()["totalResults"] == 60
    assert ScimCall.objects.filter(action__batch=batch, method="POST").count() == 60
    tokens = set(ActionEvent.objects.filter(action__batch=batch, to_state="running").values_list("note", flat=True))
    assert any("claimed together" in note for note in tokens)
    # Far fewer look-ups than syncs: they were made together.
    lookups = set(ScimCall.objects.filter(action__batch=batch, method="GET").values_list("url", flat=True))
    assert len(lookups) <= 6


def test_an_action_another_worker_took_over_mid_batch_is_left_to_it(
    peer: Peer,
    app: Integration,
    requester: Person,
    make_person: Callable[..., Person],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_now = timezone.now
    skipped = timedelta(0)
    monkeypatch.setattr(timezone, "now", lambda: real_now() + skipped)  # every clock of the console
    people = [make_person(f"m{i}") for i in range(3)]
    first, second, third = request_syncs(requester, app, people)
    rescuer: list[str] = []

    def after_first_create(response: httpx.Response) -> None:
        """The worker stalls past its lease after the first create; meanwhile another takes the second."""
        nonlocal skipped
        if response.request.method == "POST" and not rescuer:
            skipped += timedelta(seconds=settings.ACTION_LEASE_SECONDS + 1)
            taken = claim(second.pk).action
            assert taken is not None
            rescuer.append(taken.lease_token)

    client = ScimClient(app, http=httpx.Client(event_hooks={"response": [after_first_create]}))
    outcomes = actions_execute([first.pk, second.pk, third.pk], client)

    assert [o.action is not None for o in outcomes] == [True, False, True]
    states = dict(Action.objects.values_list("pk", "state"))
    assert (states[first.pk], states[second.pk], states[third.pk]) == ("succeeded", "running", "succeeded")
    second.refresh_from_db()
    assert second.lease_token == rescuer[0]  # still the rescuer's: nothing of the first worker's counted
    assert not ScimCall.objects.filter(action=second, method="POST").exists()  # it sent nothing for it
    assert server_user(peer, "m1") is None
    assert server_user(peer, "m0") is not None
    assert server_user(peer, "m2") is not None


def test_the_action_page_shows_each_logged_body_indented(
    peer: Peer, app: Integration, requester: Person, make_person: Callable[..., Person]
) -> None:
    """Bodies are stored as compact JSON; the page indents them for people."""
    [action] = request_syncs(requester, app, [make_person("shown")])
    actions_execute([action.pk])
    post = ScimCall.objects.get(action=action, method="POST")
    assert "\n" not in post.request_body  # stored compact
    viewer = Client()
    viewer.force_login(make_person("watcher", roles=["viewer"]))
    page = viewer.get(f"/actions/{action.pk}/")
    assert page.status_code == 200
    assert '\n  "userName": "shown"' in page.content.decode()  # shown indented
