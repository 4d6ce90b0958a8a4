"""Verified revocation: a deprovision reads the account back, and keeps what it found.

Against the real SCIM server a deprovision is verified, and its record says so with the
time it took; behind a front that answers 200 to every PATCH and changes nothing, the
deprovision fails with what the application still shows, and its record says mismatch.
The records are read on their page, in its exports, through the API and on the dashboard.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from console.accounts.models import IdentityEvent, Person
from console.audit.models import AuditEvent
from integrations.extraction import extraction_run_execute
from integrations.models import ExtractionRun, Integration, TargetUser
from integrations.scim_client import ScimClient
from provisioning.action_types.deprovision import verify
from provisioning.models import Action, Revocation
from provisioning.revocations import revocation_calls
from provisioning.services import Cause, action_request
from tests.provisioning.conftest import account, run_action, server_user
from tests.scim_fronts import Bent
from tests.scim_peer import PEER_TOKEN, Peer

pytestmark = pytest.mark.django_db


def _deprovision(app: Integration, requester: Person, user_name: str, person: Person | None = None) -> Action:
    return run_action(
        action_request(
            actor=requester,
            integration=app,
            action_type="DEPROVISION_IDENTITY",
            target_user=account(app, user_name),
            person=person,
        )
    )


@pytest.fixture
def leaver(make_person: Callable[..., Person]) -> Person:
    return make_person("jane", roles=[], active=False)


def test_a_deprovision_is_read_back_and_its_record_says_verified_with_the_time(
    peer: Peer, app: Integration, extract: Callable[[], None], requester: Person, leaver: Person
) -> None:
    jane = peer.user("jane@example.com", active=True)
    engineers = peer.group("Engineers", [jane])
    extract()

    done = _deprovision(app, requester, "jane@example.com", leaver)

    assert done.state == "succeeded", done.last_error
    assert server_user(peer, "jane@example.com")["active"] is False  # type: ignore[index]
    record = Revocation.objects.get(action=done)
    assert record.outcome == Revocation.Outcome.VERIFIED
    assert record.reason == "jane@example.com reads inactive, and out of the 1 group it was in"
    assert (record.integration, record.account, record.person) == (app, "jane@example.com", leaver)
    assert record.target_user == account(app, "jane@example.com")
    assert record.requested_at == done.created_at
    assert record.measured_from == Revocation.MeasuredFrom.REQUEST  # asked for by someone, not by an event
    assert done.created_at <= record.verified_at <= done.finished_at  # type: ignore[operator]
    assert record.latency_seconds == pytest.approx((record.verified_at - done.created_at).total_seconds())
    # The request and the answers are the call log of the attempt, read back last.
    calls = [(c.method, c.url.rsplit("/", 1)[-1], c.status) for c in revocation_calls(record)]
    assert calls[0] == ("PATCH", jane["id"], 204)
    assert calls[-2:] == [("GET", jane["id"], 200), ("GET", engineers["id"], 200)]
    event = AuditEvent.objects.get(verb="revocation.verified")
    assert (event.target_id, event.details["reason"]) == (str(done.pk), record.reason)


def test_a_leavers_deprovision_is_measured_from_the_identity_event(
    peer: Peer,
    app: Integration,
    extract: Callable[[], None],
    requester: Person,
    leaver: Person,
    make_person: Callable[..., Person],
    api_client_for: Callable[[Person], Any],
) -> None:
    """Caused by an identity event (a deactivation at the identity provider), the latency runs from it."""
    peer.user("jane@example.com", active=True)
    extract()
    event = IdentityEvent.objects.create(person=leaver, kind=IdentityEvent.Kind.DEACTIVATED)
    IdentityEvent.objects.filter(pk=event.pk).update(occurred_at=timezone.now() - timedelta(seconds=30))
    event.refresh_from_db()
    jane = account(app, "jane@example.com")
    jane.owner = leaver
    jane.save()
    action = action_request(
        actor=None,
        integration=app,
        action_type="DEPROVISION_IDENTITY",
        target_user=jane,
        cause=Cause("Leaver: jane@example.com was deactivated", event_id=event.pk),
    )
    assert action.cause_event_id == event.pk

    done = run_action(action)

    assert done.state == "succeeded", done.last_error
    record = Revocation.objects.get(action=done)
    assert record.measured_from == Revocation.MeasuredFrom.IDENTITY_EVENT
    assert record.person == leaver  # the action names no person: the account's owner is theirs
    assert record.requested_at == event.occurred_at
    assert record.latency_seconds == pytest.approx((record.verified_at - event.occurred_at).total_seconds())
    assert record.latency_seconds >= 30
    body = api_client_for(make_person("watcher", roles=["viewer"])).get(f"/api/v1/people/{leaver.pk}/revocations/")
    assert body.json()["results"][0]["measured_from"] == "identity event"
    # Asked for by someone, without an identity event: from the request, as before.
    peer.user("bob", active=True)
    extract()
    other = _deprovision(app, requester, "bob")
    assert Revocation.objects.get(action=other).measured_from == Revocation.MeasuredFrom.REQUEST


def test_a_deprovision_asked_for_by_account_is_recorded_as_its_owners_revocation(
    peer: Peer,
    app: Integration,
    extract: Callable[[], None],
    requester: Person,
    leaver: Person,
    api_client_for: Callable[[Person], Any],
    make_person: Callable[..., Person],
) -> None:
    """Lifecycle automation and the accounts tab name the account, not the person: the record
    still belongs to the person who owns it, and their revocations answer it."""
    peer.user("jane@example.com", active=True)
    extract()
    TargetUser.objects.filter(pk=account(app, "jane@example.com").pk).update(owner=leaver)

    done = _deprovision(app, requester, "jane@example.com")

    assert done.person_id is None
    record = Revocation.objects.get(action=done)
    assert (record.outcome, record.person) == (Revocation.Outcome.VERIFIED, leaver)
    response = api_client_for(make_person("auditor", roles=["admin"])).get(f"/api/v1/people/{leaver.pk}/revocations/")
    assert response.status_code == 200
    assert [row["account"] for row in response.json()["results"]] == ["jane@example.com"]


def test_an_account_already_gone_is_verified(
    peer: Peer, app: Integration, extract: Callable[[], None], requester: Person
) -> None:
    """A 404 on the read-back: nothing is left active."""
    peer.user("ada")
    extract()
    action = action_request(
        actor=requester, integration=app, action_type="DEPROVISION_IDENTITY", target_user=account(app, "ada")
    )
    peer.http.delete(f"/Users/{action.parameters['user_id']}")
    scim = ScimClient(app)

    found = verify(scim, action, action.parameters["user_id"], [])

    scim.http.close()
    assert found == (Revocation.Outcome.VERIFIED, "ada is no longer in the application")


def test_an_answer_silent_on_active_cannot_verify(
    peer: Peer, app: Integration, extract: Callable[[], None], requester: Person
) -> None:
    """An account whose resource leaves ``active`` out: neither verified nor a mismatch."""
    peer.user("ada")  # no active attribute at all
    extract()
    action = action_request(
        actor=requester, integration=app, action_type="DEPROVISION_IDENTITY", target_user=account(app, "ada")
    )
    scim = ScimClient(app)

    found = verify(scim, action, action.parameters["user_id"], [])

    scim.http.close()
    assert found == (
        Revocation.Outcome.UNVERIFIED,
        "the application's answer for ada does not say whether it is active",
    )


@pytest.fixture
def idle_app(bent: Bent, db: None) -> Integration:
    """An application that answers 200 to every PATCH and changes nothing."""
    return Integration.objects.create(
        name="Idle app", base_url=bent.url, bearer_token=PEER_TOKEN, provisioning_enabled=True
    )


def test_an_application_that_answers_200_and_does_nothing_fails_the_deprovision(
    bent: Bent, idle_app: Integration, requester: Person, leaver: Person
) -> None:
    server = Peer(bent.url)
    jane = server.user("jane@example.com", active=True)
    server.group("Engineers", [jane])
    run = ExtractionRun.objects.create(integration=idle_app, trigger="manual")
    assert extraction_run_execute(run_id=run.pk).status == "succeeded"  # type: ignore[union-attr]
    bent.patch_does_nothing = True

    done = _deprovision(idle_app, requester, "jane@example.com", leaver)

    assert [w.method for w in bent.refused] == ["PATCH", "PATCH"]  # answered 200, never reached the server
    assert done.state == "failed"
    reason = (
        "the application answered success but still shows jane@example.com active; "
        "jane@example.com is still a member of Engineers"
    )
    assert done.last_error == reason
    record = Revocation.objects.get(action=done)
    assert (record.outcome, record.reason, record.person) == (Revocation.Outcome.MISMATCH, reason, leaver)
    assert server_user(server, "jane@example.com")["active"] is True  # type: ignore[index]
    # Its calls are logged like any other attempt's, the 200s among them.
    assert [(c.method, c.status) for c in revocation_calls(record)][:1] == [("PATCH", 200)]


def _record(app: Integration, name: str, latency: float, outcome: str = "verified", **fields: Any) -> Revocation:
    action = Action.objects.create(integration=app, action_type="DEPROVISION_IDENTITY", state="succeeded", subject=name)
    verified_at = fields.pop("verified_at", timezone.now())
    return Revocation.objects.create(
        action=action,
        integration=app,
        account=name,
        requested_at=verified_at - timedelta(seconds=latency),
        attempt=1,
        outcome=outcome,
        reason=f"{name}: {outcome}",
        verified_at=verified_at,
        latency_seconds=latency,
        **fields,
    )


def test_the_latency_api_answers_p50_and_p95_over_30_days(
    app: Integration, make_person: Callable[..., Person], api_client_for: Callable[[Person], Any]
) -> None:
    for seconds in range(1, 21):  # 1 … 20 s
        _record(app, f"u{seconds}", float(seconds))
    _record(app, "mismatched", 3.0, outcome="mismatch")
    _record(app, "long-ago", 999.0, verified_at=timezone.now() - timedelta(days=31))

    response = api_client_for(make_person("watcher", roles=["viewer"])).get(
        f"/api/v1/integrations/{app.pk}/revocation-latency/"
    )

    assert response.status_code == 200
    assert response.json() == {
        "integration": app.pk,
        "days": 30,
        "count": 20,
        "not_verified": 1,
        "sampled": 20,
        "p50_seconds": 10.0,
        "p95_seconds": 19.0,
    }


def test_a_persons_revocations_api_answers_what_is_recorded(
    peer: Peer,
    app: Integration,
    extract: Callable[[], None],
    requester: Person,
    leaver: Person,
    make_person: Callable[..., Person],
    api_client_for: Callable[[Person], Any],
) -> None:
    peer.user("jane@example.com")
    peer.user("bob")
    extract()
    done = _deprovision(app, requester, "jane@example.com", leaver)
    _deprovision(app, requester, "bob")  # nobody's: not in jane's list
    client = api_client_for(make_person("watcher", roles=["viewer"]))

    body = client.get(f"/api/v1/people/{leaver.pk}/revocations/").json()

    (only,) = body["results"]
    record = Revocation.objects.get(action=done)
    assert {k: only[k] for k in ("id", "action", "integration", "account", "person", "outcome", "reason")} == {
        "id": record.pk,
        "action": done.pk,
        "integration": app.pk,
        "account": "jane@example.com",
        "person": leaver.pk,
        "outcome": "verified",
        "reason": record.reason,
    }
    assert only["latency_seconds"] == pytest.approx(record.latency_seconds)
    assert [c["method"] for c in only["calls"]] == [c.method for c in revocation_calls(record)]
    assert "Bearer" not in json.dumps(only)  # the call log holds no credential
    assert client.get("/api/v1/people/999999/revocations/").status_code == 404


def test_the_revocations_page_sorts_filters_and_exports(
    app: Integration, make_person: Callable[..., Person], client: Client
) -> None:
    _record(app, "slow", 40.0, measured_from=Revocation.MeasuredFrom.IDENTITY_EVENT)
    _record(app, "quick", 2.0)
    _record(app, "liar", 5.0, outcome="mismatch")
    client.force_login(make_person("watcher", roles=["viewer"]))

    page = client.get("/actions/revocations/?ordering=latency_seconds")
    assert page.status_code == 200
    text = page.content.decode()
    assert text.index("quick") < text.index("liar") < text.index("slow")
    assert "Mismatch" in text
    assert "The identity event" in text  # what each time is measured from
    assert "The request" in text
    assert "liar: mismatch" in text

    mismatches = client.get("/actions/revocations/?outcome=mismatch").content.decode()
    assert "liar" in mismatches
    assert "quick" not in mismatches

    exported = client.get("/actions/revocations/?outcome=verified&ordering=-latency_seconds&as=csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode())))  # type: ignore[attr-defined]
    assert [(r["account"], r["outcome"], r["latency_seconds"], r["measured_from"]) for r in rows] == [
        ("slow", "verified", "40.0", "identity event"),
        ("quick", "verified", "2.0", "request"),
    ]
    as_json = client.get("/actions/revocations/?person=LIAR&as=json")
    (liar,) = json.loads(b"".join(as_json.streaming_content))  # type: ignore[attr-defined]
    assert (liar["account"], liar["outcome"], liar["reason"], liar["integration"]) == (
        "liar",
        "mismatch",
        "liar: mismatch",
        app.name,
    )


def test_the_dashboard_shows_each_integrations_revocation_latency(
    app: Integration, make_person: Callable[..., Person], client: Client
) -> None:
    for seconds in (1.0, 3.0, 8.0):
        _record(app, f"u{seconds}", seconds)
    client.force_login(make_person("watcher", roles=["viewer"]))

    text = client.get("/").content.decode()

    assert "Revocation latency" in text
    row = text[text.index("Revocation latency per integration") :]
    assert app.name in row
    assert '<td class="num">3.0 s</td>' in row  # p50, figures aligned as the dashboard's other tables
    assert '<td class="num">8.0 s</td>' in row  # p95


def test_revocations_are_refused_without_console_view(
    app: Integration, make_person: Callable[..., Person], client: Client, api_client_for: Callable[[Person], Any]
) -> None:
    nobody = make_person("nobody", roles=[])
    client.force_login(nobody)
    assert client.get("/actions/revocations/").status_code == 403
    api = api_client_for(nobody)
    assert api.get(f"/api/v1/people/{nobody.pk}/revocations/").status_code == 403
    assert api.get(f"/api/v1/integrations/{app.pk}/revocation-latency/").status_code == 403


def test_a_persons_page_links_their_revocations_and_says_when_nothing_was_done(
    peer: Peer,
    app: Integration,
    extract: Callable[[], None],
    requester: Person,
    leaver: Person,
    make_person: Callable[..., Person],
) -> None:
    peer.user("jane@example.com")
    extract()
    _deprovision(app, requester, "jane@example.com", leaver)
    quiet = make_person("quiet", roles=[])
    client = Client()
    client.force_login(make_person("watcher", roles=["viewer"]))

    page = client.get(f"/people/{leaver.pk}/").content.decode()
    link = "/actions/revocations/?person=jane"
    assert f'href="{link}"' in page
    assert "jane@example.com reads inactive" in client.get(link).content.decode()
    empty = client.get(f"/people/{quiet.pk}/").content.decode()
    # A viewer's empty Provisioning card says what there is and who can act, not nothing.
    assert "No action for quiet yet. An operator can sync them to an application from this page." in empty
