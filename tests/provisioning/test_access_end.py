"""Time-bound access: an access request's end date, the removal at the end (beat and a real
worker, against the real SCIM server), ending early, extending, and bad end dates."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from console.accounts.models import Person
from console.audit.models import AuditEvent
from integrations.extraction import extraction_run_execute
from integrations.models import ExtractionRun, Integration
from provisioning import access_requests
from provisioning.access_requests import access_request_approve, access_request_create, access_requests_end_due
from provisioning.models import AccessRequest, Action, ActionEvent
from provisioning.services import approval_policy_set
from provisioning.tasks import access_requests_end_due_task
from tests.conftest import WorkerProcess
from tests.provisioning.conftest import account, group, run_action
from tests.provisioning.test_workers import wait_for
from tests.scim_peer import PEER_TOKEN, Peer

pytestmark = pytest.mark.django_db


def _extract(app: Integration) -> None:
    run = extraction_run_execute(run_id=ExtractionRun.objects.create(integration=app, trigger="manual").pk)
    assert run is not None
    assert run.status == "succeeded", run.error


def _members(peer: Peer, app: Integration, name: str) -> list[str]:
    return [m["value"] for m in peer.http.get(f"/Groups/{group(app, name).remote_id}").json().get("members") or []]


def _in_utc(moment: datetime | None) -> str:
    assert moment is not None
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _audits(access: AccessRequest, verb: str) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(target_type="provisioning.accessrequest", target_id=str(access.pk), verb=verb)
    )


def _granted(app: Integration, requester: Person, approver: Person, *, days: float = 1) -> AccessRequest:
    """ada asks for Finance until ``days`` ahead; the approver approves; the addition is queued."""
    access = access_request_create(
        actor=requester,
        target_user=account(app, "ada"),
        target_group=group(app, "Finance"),
        operation="add",
        justification="Quarter close",
        ends_at=timezone.now() + timedelta(days=days),
    )
    return access_request_approve(actor=approver, access=access)


def _due(access: AccessRequest) -> None:
    """Move the clock past the end: the end date is set in the past, in the database."""
    AccessRequest.objects.filter(pk=access.pk).update(ends_at=timezone.now() - timedelta(minutes=1))


@pytest.fixture
def finance(peer: Peer, app: Integration, extract: Callable[[], None]) -> dict[str, Any]:
    """ada's account and an empty Finance group, extracted."""
    ada = peer.user("ada")
    peer.group("Finance", [])
    extract()
    return ada


@pytest.mark.worker
def test_access_ends_at_its_end_date_through_beat_and_a_real_worker(
    peer: Peer,
    start_worker: Callable[..., WorkerProcess],
    make_person: Callable[..., Person],
    api_client_for: Callable[[Person], APIClient],
) -> None:
    app = Integration.objects.create(
        name="Peer app", base_url=peer.url, bearer_token=PEER_TOKEN, provisioning_enabled=True
    )
    ada = peer.user("ada")
    peer.group("Finance", [])
    _extract(app)
    requester = make_person("requester", roles=["operator"])
    approver = make_person("approver", roles=["admin"])
    # Member changes need approval here: the end the approver agreed to does not wait for a second one.
    approval_policy_set(actor=approver, integration=app, action_type="MANAGE_RELATIONSHIPS", requires_approval=True)
    start_worker("access-end", concurrency=1)

    access = _granted(app, requester, approver)
    assert access.action is not None
    wait_for(lambda: Action.objects.get(pk=access.action.pk).state in {"succeeded", "failed"})  # type: ignore[union-attr]
    assert _members(peer, app, "Finance") == [ada["id"]]
    assert access_requests_end_due() == 0  # not yet due

    _due(access)
    access_requests_end_due_task.delay()  # what beat sends every minute, run by the worker
    wait_for(lambda: AccessRequest.objects.get(pk=access.pk).end_action_id is not None)
    access.refresh_from_db()
    removal = access.end_action
    assert removal is not None
    wait_for(lambda: Action.objects.get(pk=removal.pk).state in {"succeeded", "failed"})
    removal.refresh_from_db()
    assert removal.state == "succeeded", removal.last_error
    assert removal.parameters["remove"] == [ada["id"]]
    assert removal.requested_by is None  # the console, at the end date
    notes = list(ActionEvent.objects.filter(action=removal).values_list("to_state", "actor__username", "note"))
    assert ("approved", "approver", f"approved with access request {access.pk}, whose end date approver agreed to") in (
        notes
    )

    assert _members(peer, app, "Finance") == []
    assert access.state == "ended"
    body = api_client_for(requester).get(f"/api/v1/access-requests/{access.pk}/").json()
    assert (
        body["end"] == f"Access ended on {_in_utc(removal.finished_at)} UTC: membership removed by action {removal.pk}."
    )
    assert (body["state"], body["end_action"], body["end_action_state"]) == ("ended", removal.pk, "succeeded")
    [expired] = _audits(access, "access_request.expired")
    assert expired.actor is None
    assert expired.details["action"] == removal.pk
    page = Client()
    page.force_login(requester)
    html = page.get(f"/actions/access-requests/{access.pk}/").content.decode()
    assert f"membership removed by action {removal.pk}" in html
    assert "Access ended" in html


def test_two_runs_at_once_end_the_access_once(
    transactional_db: None, peer: Peer, make_person: Callable[..., Person], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = Integration.objects.create(
        name="Peer app", base_url=peer.url, bearer_token=PEER_TOKEN, provisioning_enabled=True
    )
    peer.user("ada")
    peer.group("Finance", [])
    _extract(app)
    access = _granted(app, make_person("requester", roles=["operator"]), make_person("approver", roles=["admin"]))
    run_action(access.action)  # type: ignore[arg-type]
    _due(access)
    # Both runs find the request due before either claims it.
    both_looked = threading.Barrier(2, timeout=30)
    looked_up = access_requests.access_requests_due

    def due_then_wait(**kwargs: Any) -> list[int]:
        found = looked_up(**kwargs)
        both_looked.wait()
        return found

    monkeypatch.setattr(access_requests, "access_requests_due", due_then_wait)
    ended: list[int] = []

    def run() -> None:
        try:
            ended.append(access_requests_end_due())
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(ended) == [0, 1]
    removals = Action.objects.filter(action_type="MANAGE_RELATIONSHIPS", parameters__remove__isnull=False).exclude(
        parameters__remove=[]
    )
    assert removals.count() == 1
    assert len(_audits(access, "access_request.expired")) == 1


def test_a_crash_before_the_commit_leaves_the_access_due_and_the_next_run_ends_it_once(
    peer: Peer,
    finance: dict[str, Any],
    app: Integration,
    requester: Person,
    approver: Person,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    access = _granted(app, requester, approver)
    run_action(access.action)  # type: ignore[arg-type]
    _due(access)

    def crash(**kwargs: Any) -> Action:
        raise RuntimeError("the process died")

    with monkeypatch.context() as dying:
        dying.setattr(access_requests, "action_request", crash)
        with pytest.raises(RuntimeError):
            access_requests_end_due()
    access.refresh_from_db()
    assert (access.state, access.end_action, access.ended_at) == ("approved", None, None)  # nothing half done
    assert not _audits(access, "access_request.expired")

    assert access_requests_end_due() == 1
    assert access_requests_end_due() == 0
    access.refresh_from_db()
    assert access.state == "ended"
    assert access.end_action is not None
    run_action(access.end_action)
    assert Action.objects.filter(action_type="MANAGE_RELATIONSHIPS").count() == 2  # the addition, one removal
    assert _members(peer, app, "Finance") == []


def test_access_already_gone_ends_cleanly_and_says_so(
    peer: Peer,
    finance: dict[str, Any],
    app: Integration,
    extract: Callable[[], None],
    requester: Person,
    approver: Person,
) -> None:
    access = _granted(app, requester, approver)
    run_action(access.action)  # type: ignore[arg-type]
    peer.http.patch(
        f"/Groups/{group(app, 'Finance').remote_id}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "remove", "path": f'members[value eq "{finance["id"]}"]'}],
        },
    )  # removed by hand in the application
    extract()
    _due(access)
    assert access_requests_end_due() == 1
    access.refresh_from_db()
    assert (access.state, access.end_action) == ("ended", None)
    assert access_requests.access_end_in_words(access) == (
        f"Access ended on {_in_utc(access.ended_at)} UTC: ada was no longer in Finance (removed outside this request)."
    )
    [expired] = _audits(access, "access_request.expired")
    assert expired.details["action"] is None

    # The account itself is gone.
    bob = peer.user("bob")
    extract()
    other = access_request_create(
        actor=requester,
        target_user=account(app, "bob"),
        target_group=group(app, "Finance"),
        operation="add",
        justification="Audit",
        ends_at=timezone.now() + timedelta(hours=1),
    )
    other = access_request_approve(actor=approver, access=other)
    run_action(other.action)  # type: ignore[arg-type]
    peer.http.delete(f"/Users/{bob['id']}")
    extract()
    _due(other)
    assert access_requests_end_due() == 1
    other.refresh_from_db()
    assert other.end_note == "the account bob is gone from Peer app: no membership to remove."


def test_an_admin_ends_access_early_or_extends_it_and_both_are_audited(
    peer: Peer,
    finance: dict[str, Any],
    app: Integration,
    requester: Person,
    approver: Person,
    api_client_for: Callable[[Person], APIClient],
) -> None:
    access = _granted(app, requester, approver)
    run_action(access.action)  # type: ignore[arg-type]
    admin_api, operator_api = api_client_for(approver), api_client_for(requester)
    assert access.ends_at is not None
    later = (access.ends_at + timedelta(days=7)).isoformat()
    assert operator_api.post(f"/api/v1/access-requests/{access.pk}/extend/", {"ends_at": later}).status_code == 403
    sooner = admin_api.post(
        f"/api/v1/access-requests/{access.pk}/extend/", {"ends_at": timezone.now().isoformat()}, format="json"
    )
    assert sooner.status_code == 400
    assert "later than the current one" in sooner.json()["fields"]["ends_at"][0]
    extended = admin_api.post(f"/api/v1/access-requests/{access.pk}/extend/", {"ends_at": later}, format="json")
    assert extended.status_code == 200, extended.json()
    assert extended.json()["ends_at"].startswith(later[:16])
    [audit] = _audits(access, "access_request.extended")
    assert audit.details["after"]["ends_at"][:16] == later[:16]

    ended = admin_api.post(f"/api/v1/access-requests/{access.pk}/end/", {"reason": "left the project"}, format="json")
    assert ended.status_code == 200, ended.json()
    assert ended.json()["state"] == "ended"
    assert ended.json()["ended_by"] == "approver"
    assert ended.json()["end"].startswith("Access is ending (ended early by approver): the removal")
    again = admin_api.post(f"/api/v1/access-requests/{access.pk}/end/", {}, format="json")
    assert again.status_code == 409
    access.refresh_from_db()
    assert access.end_action is not None
    run_action(access.end_action)
    assert _members(peer, app, "Finance") == []
    [audit] = _audits(access, "access_request.ended")
    assert (audit.actor, audit.details["reason"]) == (approver, "left the project")
    assert access_requests_end_due() == 0  # ended already: beat leaves it alone


def test_bad_end_dates_answer_400_on_the_field(
    finance: dict[str, Any],
    app: Integration,
    requester: Person,
    approver: Person,
    api_client_for: Callable[[Person], APIClient],
) -> None:
    api = api_client_for(requester)
    body = {
        "target_user": account(app, "ada").pk,
        "target_group": group(app, "Finance").pk,
        "operation": "add",
        "justification": "Quarter close",
    }
    now = timezone.now()
    cases: list[tuple[Any, str, str]] = [
        ((now - timedelta(hours=1)).isoformat(), "add", "The end must be in the future."),
        ((now + timedelta(days=400)).isoformat(), "add", "The end must be within 365 days"),
        ((now + timedelta(days=2)).isoformat(), "remove", "Only access added can end"),
        ("next tuesday", "add", "Datetime has wrong format"),
    ]
    for ends_at, operation, said in cases:
        response = api.post("/api/v1/access-requests/", {**body, "operation": operation, "ends_at": ends_at})
        assert response.status_code == 400, (ends_at, response.json())
        assert said in response.json()["fields"]["ends_at"][0], response.json()
    assert not AccessRequest.objects.exists()
    good = api.post("/api/v1/access-requests/", {**body, "ends_at": (now + timedelta(days=30)).isoformat()})
    assert good.status_code == 201, good.json()
    assert good.json()["end"].startswith("Access would end on ")


def test_an_end_that_passed_before_the_decision_is_not_approved(
    finance: dict[str, Any],
    app: Integration,
    requester: Person,
    approver: Person,
    api_client_for: Callable[[Person], APIClient],
) -> None:
    access = access_request_create(
        actor=requester,
        target_user=account(app, "ada"),
        target_group=group(app, "Finance"),
        operation="add",
        justification="Quarter close",
        ends_at=timezone.now() + timedelta(hours=1),
    )
    _due(access)
    response = api_client_for(approver).post(f"/api/v1/access-requests/{access.pk}/approve/", {}, format="json")
    assert response.status_code == 409
    assert "has passed" in response.json()["detail"]
    access.refresh_from_db()
    assert (access.state, access.action) == ("pending", None)


def test_the_form_shows_a_bad_end_beside_its_field_and_the_page_shows_the_end_in_the_viewers_zone(
    finance: dict[str, Any], app: Integration, requester: Person, approver: Person
) -> None:
    requester.time_zone = "Europe/Paris"
    requester.save()
    page = Client()
    page.force_login(requester)
    form = {
        "target_group": group(app, "Finance").pk,
        "user_name": "ada",
        "operation": "add",
        "justification": "Quarter close",
    }
    panel = page.get(f"/integrations/{app.pk}/groups/{group(app, 'Finance').pk}/").content.decode()
    assert 'name="ends_at" type="datetime-local"' in panel
    assert "In your time zone, Europe/Paris." in panel

    refused = page.post("/actions/access-requests/new/", {**form, "ends_at": "2020-01-01T10:00"})
    assert refused.status_code == 400
    html = refused.content.decode()
    assert '<div id="id_ends_at_error"><p class="error" role="alert">The end must be in the future.</p></div>' in html
    assert 'value="Quarter close"' in html or "Quarter close</textarea>" in html  # what was typed stays
    assert not AccessRequest.objects.exists()

    created = page.post("/actions/access-requests/new/", {**form, "ends_at": "2099-01-01T10:00"})
    assert created.status_code == 400  # more than a year ahead
    assert "The end must be within 365 days" in created.content.decode()

    ends = (timezone.localtime(timezone.now(), timezone=_paris()) + timedelta(days=3)).replace(
        hour=14, minute=0, second=0, microsecond=0
    )
    done = page.post("/actions/access-requests/new/", {**form, "ends_at": ends.strftime("%Y-%m-%dT%H:%M")})
    access = AccessRequest.objects.get()
    assert done["Location"] == f"/actions/access-requests/{access.pk}/"
    assert access.ends_at == ends  # read in the viewer's zone
    detail = page.get(done["Location"]).content.decode()
    zone = ends.tzname()
    assert f"{ends:%Y-%m-%d} 14:00 {zone}</time>" in detail
    assert f"Access would end on {ends:%Y-%m-%d} 14:00 {zone}." in detail


def _paris() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("Europe/Paris")


def test_on_the_page_an_admin_extends_with_the_error_beside_the_field_and_ends_after_confirming(
    peer: Peer,
    finance: dict[str, Any],
    app: Integration,
    requester: Person,
    approver: Person,
    make_person: Callable[..., Person],
) -> None:
    access = _granted(app, requester, approver)
    run_action(access.action)  # type: ignore[arg-type]
    admin = Client()
    admin.force_login(make_person("second-admin", roles=["admin"]))
    page = f"/actions/access-requests/{access.pk}/"
    assert "End access now" in admin.get(page).content.decode()

    refused = admin.post(f"{page}extend/", {"ends_at": "2020-01-01T10:00"})
    assert refused.status_code == 400
    assert '<div id="id_ends_at_error"><p class="error" role="alert">The new end must be later' in (
        refused.content.decode()
    )
    assert admin.post(f"{page}extend/", {"ends_at": "2099-01-01T10:00"}).status_code == 400  # past the maximum
    assert admin.post(f"{page}extend/", {"ends_at": "next week"}).status_code == 400
    assert access.ends_at is not None
    later = timezone.localtime(access.ends_at) + timedelta(days=2)
    assert admin.post(f"{page}extend/", {"ends_at": later.strftime("%Y-%m-%dT%H:%M")})["Location"] == page
    access.refresh_from_db()
    assert access.ends_at == later.replace(second=0, microsecond=0)

    asked = admin.post(f"{page}end/", {"confirm": "ask", "confirm_text": "Ends the access now", "confirm_count": "1"})
    assert asked.status_code == 200
    assert "Ends the access now" in asked.content.decode()  # the confirmation page, nothing done yet
    assert AccessRequest.objects.get(pk=access.pk).state == "approved"
    assert admin.post(f"{page}end/", {"confirm": "done", "reason": "project over"})["Location"] == page
    html = admin.get(page).content.decode()
    assert "Access is ending (ended early by second-admin): the removal of the membership" in html
    access.refresh_from_db()
    assert access.end_action is not None
    run_action(access.end_action)
    assert "membership removed by action" in admin.get(page).content.decode()
    assert _members(peer, app, "Finance") == []


def test_a_full_batch_sends_the_beat_task_again_for_the_rest(
    peer: Peer,
    app: Integration,
    extract: Callable[[], None],
    requester: Person,
    approver: Person,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings.ACCESS_REQUEST_END_BATCH = 1
    peer.user("ada")
    peer.user("bob")
    peer.group("Finance", [])
    extract()
    for name in ("ada", "bob"):
        access = access_request_create(
            actor=requester,
            target_user=account(app, name),
            target_group=group(app, "Finance"),
            operation="add",
            justification="Audit",
            ends_at=timezone.now() + timedelta(hours=1),
        )
        run_action(access_request_approve(actor=approver, access=access).action)  # type: ignore[arg-type]
        _due(access)
    sent: list[str] = []
    monkeypatch.setattr(access_requests_end_due_task, "delay", lambda: sent.append("again"))
    assert access_requests_end_due_task() == 1  # as a worker runs it
    assert sent == ["again"]
    assert access_requests_end_due_task() == 1
    assert sent == ["again", "again"]
    assert access_requests_end_due_task() == 0
    assert sent == ["again", "again"]  # nothing left: no more
    assert AccessRequest.objects.filter(state="ended").count() == 2
