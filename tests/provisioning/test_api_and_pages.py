"""``/api/v1/actions/`` and the action pages: request, decide, read the timeline and call log."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable

import pytest
from django.test import Client
from rest_framework.test import APIClient

from console.accounts.models import Person
from integrations.models import Integration
from provisioning.models import Action
from tests.conftest import WorkerProcess
from tests.provisioning.conftest import account, run_action, server_user
from tests.scim_peer import Peer

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_api(requester: Person, api_client_for: Callable[[Person], APIClient]) -> APIClient:
    return api_client_for(requester)


@pytest.fixture
def approver_api(approver: Person, api_client_for: Callable[[Person], APIClient]) -> APIClient:
    return api_client_for(approver)


def test_request_approve_and_read_an_action_through_the_api(
    peer: Peer,
    app: Integration,
    extract: Callable[[], None],
    operator_api: APIClient,
    approver_api: APIClient,
    make_person: Callable[..., Person],
    api_client_for: Callable[[Person], APIClient],
) -> None:
    peer.user("ada")
    extract()
    app.supports_hard_delete = True
    app.save()
    viewer_api = api_client_for(make_person("viewer", roles=["viewer"]))
    body = {"integration": app.pk, "action_type": "DELETE_IDENTITY", "target_user": account(app, "ada").pk}
    assert viewer_api.post("/api/v1/actions/", body, format="json").status_code == 403

    created = operator_api.post("/api/v1/actions/", body, format="json")
    assert created.status_code == 201, created.json()
    action_id = created.json()["id"]
    assert created.json()["state"] == "pending_approval"
    assert operator_api.post(f"/api/v1/actions/{action_id}/approve/").status_code == 403  # operators do not approve
    listed = viewer_api.get("/api/v1/actions/?state=pending_approval").json()["results"]
    assert [a["id"] for a in listed] == [action_id]

    approved = approver_api.post(f"/api/v1/actions/{action_id}/approve/", {"comment": "ok"}, format="json")
    assert approved.status_code == 200, approved.json()
    assert approved.json()["state"] == "queued"
    again = approver_api.post(f"/api/v1/actions/{action_id}/approve/")
    assert again.status_code == 409
    assert "Cannot approve an action that is queued" in again.json()["detail"]

    run_action(Action.objects.get(pk=action_id))
    detail = viewer_api.get(f"/api/v1/actions/{action_id}/").json()
    assert detail["state"] == "succeeded"
    assert [e["to_state"] for e in detail["events"]][-1] == "succeeded"
    assert detail["calls"][0]["method"] == "DELETE"
    assert server_user(peer, "ada") is None
    retried = operator_api.post(f"/api/v1/actions/{action_id}/retry/")
    assert retried.status_code == 409


def test_bad_requests_get_field_errors(
    peer: Peer, app: Integration, extract: Callable[[], None], operator_api: APIClient, approver_api: APIClient
) -> None:
    peer.user("ada")
    extract()
    refused = operator_api.post(
        "/api/v1/actions/",
        {"integration": app.pk, "action_type": "DELETE_IDENTITY", "target_user": account(app, "ada").pk},
        format="json",
    )
    assert refused.status_code == 400
    assert "does not allow hard delete" in refused.json()["fields"]["action_type"][0]
    no_person = operator_api.post("/api/v1/actions/", {"integration": app.pk, "action_type": "SYNC_IDENTITIES"})
    assert no_person.status_code == 400
    assert "person" in no_person.json()["fields"]
    bad_type = operator_api.post("/api/v1/actions/", {"integration": app.pk, "action_type": "NOPE"})
    assert "action_type" in bad_type.json()["fields"]
    assert not Action.objects.exists()
    own = approver_api.post(
        "/api/v1/actions/",
        {"integration": app.pk, "action_type": "CREATE_ENTITLEMENT", "parameters": {"display_name": "Ops"}},
        format="json",
    )
    assert own.status_code == 201


def test_pages_request_from_an_account_and_approve_from_the_inbox(
    peer: Peer,
    app: Integration,
    extract: Callable[[], None],
    requester: Person,
    approver: Person,
) -> None:
    peer.user("ada")
    extract()
    app.supports_hard_delete = True
    app.save()
    ada = account(app, "ada")
    operator = Client()
    operator.force_login(requester)
    page = operator.get(f"/integrations/{app.pk}/users/{ada.pk}/").content.decode()
    assert "Deprovision" in page
    assert "Delete account" in page
    response = operator.post(
        "/actions/request/",
        {"integration": app.pk, "target_user": ada.pk, "action_type": "DELETE_IDENTITY", "next": "/x"},
    )
    action = Action.objects.get()
    assert response["Location"] == f"/actions/{action.pk}/"
    assert "Another approver must decide" in operator.get(f"/actions/{action.pk}/").content.decode()

    admin = Client()
    admin.force_login(approver)
    inbox = admin.get("/approvals/").content.decode()
    assert 'data-testid="approvals-count">1<' in inbox
    assert "ada" in inbox
    admin.post(f"/actions/{action.pk}/approve/", {"comment": "leaver"})
    action.refresh_from_db()
    assert action.state == "queued"
    assert "Nothing waits for approval" in admin.get("/approvals/").content.decode()
    listed = admin.get("/actions/?state=queued").content.decode()
    assert 'hx-trigger="every 2s"' in listed  # queued rows keep the table live


@pytest.mark.worker
def test_a_real_worker_carries_out_a_sync(
    peer: Peer, start_worker: Callable[..., WorkerProcess], make_person: Callable[..., Person]
) -> None:
    app = Integration.objects.create(
        name="Peer app", base_url=peer.url, bearer_token="peer-token", provisioning_enabled=True
    )
    operator = make_person("operator", roles=["operator"])
    jane = make_person("jane.doe", given_name="Jane", family_name="Doe")
    start_worker("actions", concurrency=1)
    client = Client()
    client.force_login(operator)
    client.post("/actions/request/", {"integration": app.pk, "person": jane.pk, "action_type": "SYNC_IDENTITIES"})
    action = Action.objects.get()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and action.state not in {"succeeded", "failed"}:
        time.sleep(0.3)
        action.refresh_from_db()
    assert action.state == "succeeded", action.last_error
    assert server_user(peer, "jane.doe") is not None


def test_approval_policies_are_set_per_integration_and_type(
    app: Integration,
    approver: Person,
    requester: Person,
    api_client_for: Callable[[Person], APIClient],
    make_person: Callable[..., Person],
) -> None:
    admin_api = api_client_for(approver)
    policies = {p["action_type"]: p for p in admin_api.get(f"/api/v1/integrations/{app.pk}/approval-policies/").json()}
    assert policies["DELETE_IDENTITY"]["requires_approval"] is True
    assert policies["SYNC_IDENTITIES"] == {
        "action_type": "SYNC_IDENTITIES",
        "label": "Sync identity",
        "requires_approval": False,
        "default": True,
    }
    changed = admin_api.patch(
        f"/api/v1/integrations/{app.pk}/approval-policies/",
        [{"action_type": "SYNC_IDENTITIES", "requires_approval": True}],
        format="json",
    )
    assert changed.status_code == 200
    assert (
        api_client_for(requester)
        .patch(f"/api/v1/integrations/{app.pk}/approval-policies/", [], format="json")
        .status_code
        == 403
    )
    action = api_client_for(requester).post(
        "/api/v1/actions/",
        {"integration": app.pk, "action_type": "SYNC_IDENTITIES", "person": make_person("x").pk},
        format="json",
    )
    assert action.json()["state"] == "pending_approval"
    page = Client()
    page.force_login(approver)
    page.post(f"/actions/integrations/{app.pk}/approval-policies/", {"SYNC_IDENTITIES": "automatic"})
    assert admin_api.get(f"/api/v1/integrations/{app.pk}/approval-policies/").json()[0]["requires_approval"] is False
    refused = page.post(
        f"/actions/integrations/{app.pk}/approval-policies/",
        {"SYNC_IDENTITIES": "approval", "DELETE_IDENTITY": "sometimes"},
        follow=True,
    )
    assert "whether it runs at once or waits for an approver" in refused.content.decode()
    after = {
        p["action_type"]: p["requires_approval"]
        for p in admin_api.get(f"/api/v1/integrations/{app.pk}/approval-policies/").json()
    }
    assert after["SYNC_IDENTITIES"] is False  # nothing of a refused form is saved
    assert after["DELETE_IDENTITY"] is True


def test_actions_export_as_csv_and_json_with_the_lists_filters(
    app: Integration,
    requester: Person,
    make_person: Callable[..., Person],
    api_client_for: Callable[[Person], APIClient],
) -> None:
    from provisioning.services import action_request

    for name in ("ann", "ben"):
        action_request(actor=requester, integration=app, action_type="SYNC_IDENTITIES", person=make_person(name))
    action_request(
        actor=requester, integration=app, action_type="CREATE_ENTITLEMENT", parameters={"display_name": "Ops"}
    )
    page = Client()
    page.force_login(requester)
    csv_text = page.get("/actions/export/?as=csv&action_type=SYNC_IDENTITIES").getvalue().decode()
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("id,created_at,action_type,state")
    assert len(lines) == 3
    assert {line.split(",")[5] for line in lines[1:]} == {"ann", "ben"}
    exported = api_client_for(requester).get("/api/v1/actions/export/?as=json&person=ben")
    assert exported["Content-Disposition"].endswith('.json"')
    rows = json.loads(exported.getvalue())
    assert [(r["subject"], r["state"]) for r in rows] == [("ben", "queued")]


def test_pending_actions_expire_and_the_dashboard_counts_what_matters(
    app: Integration, requester: Person, approver: Person, make_person: Callable[..., Person]
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from provisioning.models import ActionEvent
    from provisioning.services import action_request, actions_expire

    app.supports_hard_delete = True
    app.save()
    user = app.target_users.create(remote_id="u-1", user_name="old", content_hash="-")
    stale = action_request(actor=requester, integration=app, action_type="DELETE_IDENTITY", target_user=user)
    fresh = action_request(
        actor=requester,
        integration=app,
        action_type="DELETE_IDENTITY",
        target_user=app.target_users.create(remote_id="u-2", user_name="new", content_hash="-"),
    )
    Action.objects.filter(pk=stale.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert actions_expire() == 1
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert (stale.state, fresh.state) == ("cancelled", "pending_approval")
    assert ActionEvent.objects.filter(action=stale, note="expired without a decision").exists()
    Action.objects.filter(pk=fresh.pk).update(state="failed", finished_at=timezone.now())
    page = Client()
    page.force_login(approver)
    dashboard = page.get("/").content.decode()
    assert "<strong>0</strong> pending approval" in dashboard
    assert "<strong>1</strong> failed in 24 h" in dashboard
    assert "100 %" in dashboard  # the error rate of the integration's finished actions


def test_an_operator_creates_a_group_from_the_groups_tab(
    peer: Peer, app: Integration, requester: Person, make_person: Callable[..., Person]
) -> None:
    operator = Client()
    operator.force_login(requester)
    tab = operator.get(f"/integrations/{app.pk}/groups/")
    assert tab.status_code == 200
    page = tab.content.decode()
    assert 'id="create-group"' in page
    form = re.search(
        r'<form method="post" action="([^"]+)"[^>]*>(.*?)</form>', page[page.index('id="create-group"') :], re.S
    )
    assert form is not None
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.group(2)))
    assert fields["action_type"] == "CREATE_ENTITLEMENT"
    assert 'name="display_name"' in form.group(2)

    response = operator.post(form.group(1), {**fields, "display_name": "Platform team"})
    action = Action.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/actions/{action.pk}/"
    assert (action.action_type, action.state, action.subject) == ("CREATE_ENTITLEMENT", "queued", "Platform team")
    assert run_action(action).state == "succeeded"
    groups = peer.http.get("/Groups", params={"filter": 'displayName eq "Platform team"'}).json()
    assert groups["totalResults"] == 1
    assert "Platform team" in operator.get(f"/integrations/{app.pk}/groups/").content.decode()

    viewer = Client()
    viewer.force_login(make_person("viewer", roles=["viewer"]))
    assert 'id="create-group"' not in viewer.get(f"/integrations/{app.pk}/groups/").content.decode()
    app.provisioning_enabled = False
    app.save()
    assert 'id="create-group"' not in operator.get(f"/integrations/{app.pk}/groups/").content.decode()
