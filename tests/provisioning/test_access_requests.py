"""Access requests: ask, decide (not your own), and the approved change reaches the server."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from rest_framework.test import APIClient

from console.accounts.models import Person
from integrations.models import Integration
from provisioning.models import AccessRequest
from tests.provisioning.conftest import account, group, run_action
from tests.scim_peer import Peer

pytestmark = pytest.mark.django_db


def test_an_approved_request_adds_the_account_to_the_group_on_the_server(
    peer: Peer,
    app: Integration,
    extract: Callable[[], None],
    requester: Person,
    approver: Person,
    api_client_for: Callable[[Person], APIClient],
) -> None:
    ada = peer.user("ada")
    peer.group("Finance", [])
    extract()
    operator_api, approver_api = api_client_for(requester), api_client_for(approver)
    body = {
        "target_user": account(app, "ada").pk,
        "target_group": group(app, "Finance").pk,
        "operation": "add",
        "justification": "Quarter close",
    }
    created = operator_api.post("/api/v1/access-requests/", body, format="json")
    assert created.status_code == 201, created.json()
    request_id = created.json()["id"]
    assert created.json()["state"] == "pending"
    duplicate = operator_api.post("/api/v1/access-requests/", body, format="json")
    assert "pending already" in duplicate.json()["fields"]["target_group"][0]
    assert operator_api.post(f"/api/v1/access-requests/{request_id}/approve/").status_code == 403

    approved = approver_api.post(f"/api/v1/access-requests/{request_id}/approve/", {"comment": "ok"}, format="json")
    assert approved.status_code == 200, approved.json()
    assert approved.json()["state"] == "approved"
    assert approved.json()["action_state"] == "queued"
    access = AccessRequest.objects.get(pk=request_id)
    assert access.action is not None
    assert access.action.requested_by == requester
    run_action(access.action)

    members = peer.http.get(f"/Groups/{group(app, 'Finance').remote_id}").json().get("members") or []
    assert [m["value"] for m in members] == [ada["id"]]
    mine = operator_api.get("/api/v1/access-requests/?mine=true").json()["results"]
    assert [(r["id"], r["state"], r["action_state"]) for r in mine] == [(request_id, "approved", "succeeded")]


def test_nobody_decides_their_own_request_and_a_rejection_needs_a_reason(
    peer: Peer,
    app: Integration,
    extract: Callable[[], None],
    approver: Person,
    make_person: Callable[..., Person],
) -> None:
    ada = peer.user("ada")
    peer.group("Finance", [ada])
    extract()
    other_admin = make_person("other-admin", roles=["admin"])  # someone else can decide it
    own = Client()
    own.force_login(approver)
    response = own.post(
        "/actions/access-requests/new/",
        {
            "target_group": group(app, "Finance").pk,
            "user_name": "ADA",
            "operation": "remove",
            "justification": "Moved team",
        },
    )
    access = AccessRequest.objects.get()
    assert response["Location"] == f"/actions/access-requests/{access.pk}/"
    own.post(f"/actions/access-requests/{access.pk}/approve/")
    access.refresh_from_db()
    assert access.state == "pending"
    assert "Another approver must decide" in own.get(f"/actions/access-requests/{access.pk}/").content.decode()
    assert "Moved team" in own.get("/approvals/").content.decode()

    other = Client()
    other.force_login(other_admin)
    other.post(f"/actions/access-requests/{access.pk}/reject/", {"comment": " "})
    access.refresh_from_db()
    assert access.state == "pending"
    other.post(f"/actions/access-requests/{access.pk}/reject/", {"comment": "Still needed"})
    access.refresh_from_db()
    assert (access.state, access.decision_comment, access.action) == ("rejected", "Still needed", None)


def test_requests_that_make_no_sense_are_refused(
    peer: Peer, app: Integration, extract: Callable[[], None], requester: Person
) -> None:
    ada = peer.user("ada")
    peer.group("Finance", [ada])
    extract()
    page = Client()
    page.force_login(requester)
    page.post(
        "/actions/access-requests/new/",
        {"target_group": group(app, "Finance").pk, "user_name": "ada", "operation": "add", "justification": "x"},
    )
    page.post(
        "/actions/access-requests/new/",
        {"target_group": group(app, "Finance").pk, "user_name": "nobody", "operation": "add", "justification": "x"},
    )
    unjustified = page.post(
        "/actions/access-requests/new/",
        {"target_group": group(app, "Finance").pk, "user_name": "ada", "operation": "remove", "justification": ""},
    )
    assert not AccessRequest.objects.exists()
    # Shown again on the request's own form, the reason beside its field.
    assert unjustified.status_code == 400
    assert '<div id="id_justification_error"><p class="error" role="alert">Say why the access is needed.' in (
        unjustified.content.decode()
    )
