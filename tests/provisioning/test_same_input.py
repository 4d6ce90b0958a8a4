"""The page and the API take the same input: members named by user name (or by remote id),
and the same refusal answers the same way (409 by state, 400 on the field at fault)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from console.accounts.models import Person
from integrations.models import Integration, TargetUser
from provisioning.models import AccessRequest, Action
from tests.provisioning.conftest import account, group
from tests.scim_peer import Peer

pytestmark = pytest.mark.django_db


@pytest.fixture
def ops(peer: Peer, app: Integration, extract: Callable[[], None]) -> Integration:
    peer.user("ada")
    peer.user("bob")
    peer.group("Ops", [])
    extract()
    return app


def test_the_api_takes_members_by_user_name_or_remote_id_as_the_page_does(
    ops: Integration, requester: Person, api_client_for: Callable[[Person], APIClient]
) -> None:
    ada, bob = account(ops, "ada"), account(ops, "bob")
    body = {
        "integration": ops.pk,
        "action_type": "MANAGE_RELATIONSHIPS",
        "target_group": group(ops, "Ops").pk,
        "parameters": {"add": ["ada", bob.remote_id]},
    }
    created = api_client_for(requester).post("/api/v1/actions/", body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["parameters"]["add"] == [ada.remote_id, bob.remote_id]

    page = Client()
    page.force_login(requester)
    page.post(
        "/actions/request/",
        {
            "integration": ops.pk,
            "action_type": "MANAGE_RELATIONSHIPS",
            "target_group": group(ops, "Ops").pk,
            "add": f"ada, {bob.remote_id}",
        },
    )
    assert Action.objects.order_by("id").last().parameters["add"] == [ada.remote_id, bob.remote_id]  # type: ignore[union-attr]


def test_an_account_named_by_user_name_is_never_guessed(
    ops: Integration, requester: Person, approver: Person, api_client_for: Callable[[Person], APIClient]
) -> None:
    """A name that a removed account held too means the account still there; one that two
    accounts hold (an application that keeps userName unique in case only) is refused."""
    ada, bob = account(ops, "ada"), account(ops, "bob")
    TargetUser.objects.create(
        integration=ops, remote_id="gone-bob", user_name="bob", content_hash="-", removed_at=timezone.now()
    )
    TargetUser.objects.create(integration=ops, remote_id="other-ada", user_name="ADA", content_hash="-")
    api = api_client_for(requester)
    page = Client()
    page.force_login(requester)
    ops_group = group(ops, "Ops")

    body = {
        "integration": ops.pk,
        "action_type": "MANAGE_RELATIONSHIPS",
        "target_group": ops_group.pk,
        "parameters": {"add": ["bob"]},
    }
    created = api.post("/api/v1/actions/", body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["parameters"]["add"] == [bob.remote_id]  # not the removed account's
    TargetUser.objects.create(integration=ops, remote_id="bob-2", user_name="bob", content_hash="-")
    twice = api.post("/api/v1/actions/", {**body, "parameters": {"add": ["bob"]}}, format="json")
    assert twice.status_code == 400
    assert f"2 accounts in {ops.name} are named 'bob'" in twice.json()["fields"]["parameters"][0]
    assert Action.objects.count() == 1

    # An access request: the account spelled exactly so; whatever its case, only where one answers to it.
    form = {"target_group": ops_group.pk, "operation": "add", "justification": "on call"}
    exact = page.post("/actions/access-requests/new/", {**form, "user_name": "ada"})
    assert exact.status_code == 302
    assert AccessRequest.objects.get().target_user == ada
    either = page.post("/actions/access-requests/new/", {**form, "user_name": "Ada"})
    assert either.status_code == 400
    assert "2 accounts in Peer app answer to &#x27;Ada&#x27; (ada, ADA)" in either.content.decode()
    assert AccessRequest.objects.count() == 1


def test_a_refusal_by_state_is_409_and_bad_input_400_on_its_field(
    ops: Integration, requester: Person, approver: Person, api_client_for: Callable[[Person], APIClient]
) -> None:
    api = api_client_for(requester)
    unknown = api.post(
        "/api/v1/actions/",
        {
            "integration": ops.pk,
            "action_type": "MANAGE_RELATIONSHIPS",
            "target_group": group(ops, "Ops").pk,
            "parameters": {"add": ["nobody"]},
        },
        format="json",
    )
    assert unknown.status_code == 400
    assert unknown.json()["code"] == "invalid"
    assert "Unknown accounts" in unknown.json()["fields"]["parameters"][0]

    body = {"integration": ops.pk, "action_type": "DEPROVISION_IDENTITY", "target_user": account(ops, "ada").pk}
    queued = api.post("/api/v1/actions/", body, format="json").json()
    cancelled = api.post(f"/api/v1/actions/{queued['id']}/cancel/")
    assert cancelled.status_code == 200
    again = api_client_for(approver).post(f"/api/v1/actions/{queued['id']}/cancel/")
    assert again.status_code == 409
    assert again.json() == {"detail": "Cannot cancel an action that is cancelled.", "code": "refused"}


def test_the_pages_forms_say_what_is_missing_on_the_page_they_came_from(
    ops: Integration, requester: Person, approver: Person
) -> None:
    page = Client()
    page.force_login(requester)
    back = {"next": f"/integrations/{ops.pk}/"}
    no_integration = page.post("/actions/request/", {"action_type": "SYNC_IDENTITIES", **back}, follow=True)
    assert "Choose an integration." in no_integration.content.decode()
    bad_filters = page.post(
        "/actions/bulk/",
        {
            "integration": ops.pk,
            "action_type": "DEPROVISION_IDENTITY",
            "all_matching": "1",
            "matching": "ordering=x&active=maybe",
            **back,
        },
        follow=True,
    )
    assert "The filters are not valid" in bad_filters.content.decode()
    nobody = page.post(
        "/actions/access-requests/new/",
        {"target_group": group(ops, "Ops").pk, "user_name": "nobody", "operation": "add", "justification": "x", **back},
        follow=True,
    )
    assert "No account named &#x27;nobody&#x27; in Peer app." in nobody.content.decode()
    assert not Action.objects.exists()

    pending = page.post(
        "/actions/access-requests/new/",
        {"target_group": group(ops, "Ops").pk, "user_name": "ADA", "operation": "add", "justification": "on call"},
    )
    assert pending.status_code == 302
    decider = Client()
    decider.force_login(approver)
    refused = decider.post(pending["Location"] + "reject/", {"comment": "  "}, follow=True)
    assert "Say why the request is rejected." in refused.content.decode()
