"""The Approvals inbox: decide each row in place (htmx, or plain forms without JavaScript),
through the same services as the detail page and the API; a held batch is one row."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.test import Client

from console.accounts.models import Person
from console.audit.models import AuditEvent
from integrations.models import Integration, TargetUser
from provisioning.batches import batch_request
from provisioning.models import Action, ApprovalPolicy
from provisioning.services import action_request
from tests.provisioning.conftest import account, run_action, server_user
from tests.scim_peer import Peer

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def pending_delete(app: Integration, requester: Person, user: TargetUser) -> Action:
    action = action_request(actor=requester, integration=app, action_type="DELETE_IDENTITY", target_user=user)
    assert action.state == "pending_approval"
    return action


@pytest.fixture
def inbox(approver: Person) -> Client:
    client = Client()
    client.force_login(approver)
    return client


def test_the_page_title_is_only_the_title(inbox: Client) -> None:
    html = inbox.get("/approvals/").content.decode()
    title = re.search(r"<title>(.*?)</title>", html, re.S)
    assert title is not None
    assert "Approvals" in title.group(1)
    assert "Access requests" not in title.group(1)
    assert html.count('id="access-heading"') == 1


def test_an_approver_approves_a_row_in_place_and_it_runs(
    peer: Peer, deletable: Integration, requester: Person, approver: Person, inbox: Client
) -> None:
    action = pending_delete(deletable, requester, account(deletable, "ada"))
    page = inbox.get("/approvals/").content.decode()
    assert f'id="approval-action-{action.pk}"' in page
    assert f'hx-post="/actions/{action.pk}/approve/"' in page
    assert f'action="/actions/{action.pk}/approve/"' in page  # works without JavaScript too
    assert f'formaction="/actions/{action.pk}/reject/"' in page

    row = inbox.post(f"/actions/{action.pk}/approve/", {"from": "inbox", "comment": "leaver"}, headers=HTMX)
    assert row.status_code == 200
    html = row.content.decode()
    assert html.strip().startswith(f'<tr id="approval-action-{action.pk}"')  # only the row comes back
    assert "Queued" in html
    assert "<form" not in html
    action.refresh_from_db()
    assert (action.state, action.decided_by, action.decision_comment) == ("queued", approver, "leaver")
    assert AuditEvent.objects.filter(verb="action.approved", target_id=str(action.pk), actor=approver).exists()
    assert f'hx-get="/approvals/?row={action.pk}"' in html  # the row follows the action until it finishes
    assert run_action(action).state == "succeeded"
    assert server_user(peer, "ada") is None
    followed = inbox.get(f"/approvals/?row={action.pk}", headers=HTMX).content.decode()
    assert "Succeeded" in followed
    assert "hx-get" not in followed


def test_rejecting_a_row_needs_a_comment(deletable: Integration, requester: Person, inbox: Client) -> None:
    action = pending_delete(deletable, requester, account(deletable, "ada"))
    refused = inbox.post(
        f"/actions/{action.pk}/reject/", {"from": "inbox", "comment": " "}, headers=HTMX
    ).content.decode()
    assert "Say why the action is rejected." in refused
    assert 'role="alert"' in refused
    assert "<form" in refused  # the row can still be decided
    action.refresh_from_db()
    assert action.state == "pending_approval"

    inbox.post(f"/actions/{action.pk}/reject/", {"from": "inbox", "comment": "still needed"}, headers=HTMX)
    action.refresh_from_db()
    assert (action.state, action.decision_comment) == ("rejected", "still needed")


def test_without_javascript_a_row_decision_comes_back_to_the_inbox(
    deletable: Integration, requester: Person, inbox: Client
) -> None:
    first = pending_delete(deletable, requester, account(deletable, "ada"))
    second = pending_delete(deletable, requester, account(deletable, "bob"))
    response = inbox.post(f"/actions/{first.pk}/approve/", {"from": "inbox", "comment": ""})
    assert (response.status_code, response["Location"]) == (302, "/approvals/")
    response = inbox.post(f"/actions/{second.pk}/reject/", {"from": "inbox", "comment": ""}, follow=True)
    assert "Say why the action is rejected." in response.content.decode()
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.state, second.state) == ("queued", "pending_approval")


def test_a_requester_sees_their_own_request_but_cannot_decide_it(
    deletable: Integration, approver: Person, inbox: Client, make_person: Callable[..., Person]
) -> None:
    make_person("other-admin", roles=["admin"])  # someone else could decide it
    action = pending_delete(deletable, approver, account(deletable, "ada"))
    page = inbox.get("/approvals/").content.decode()
    assert "your request" in page
    assert f'hx-post="/actions/{action.pk}/approve/"' not in page
    row = inbox.post(f"/actions/{action.pk}/approve/", {"from": "inbox"}, headers=HTMX).content.decode()
    assert "You cannot approve your own request" in row
    action.refresh_from_db()
    assert action.state == "pending_approval"


def test_a_held_batch_is_one_row_decided_whole(
    peer: Peer, app: Integration, extract: Callable[[], None], requester: Person, inbox: Client
) -> None:
    for i in range(5):
        peer.user(f"user{i}")
    extract()
    app.mass_change_max_accounts = 2
    app.save()
    ApprovalPolicy.objects.create(integration=app, action_type="SYNC_IDENTITIES", requires_approval=True)
    single = action_request(actor=requester, integration=app, action_type="SYNC_IDENTITIES", person=requester)
    held = batch_request(
        actor=requester,
        integration=app,
        action_type="DEPROVISION_IDENTITY",
        target_users=[account(app, f"user{i}") for i in range(3)],
    )
    assert held.held_reason

    page = inbox.get("/approvals/").content.decode()
    assert page.count('data-testid="approval-row"') == 2  # the single action, and the batch
    assert f'id="approval-batch-{held.pk}"' in page
    assert "3 actions held whole" in page
    assert 'data-testid="approvals-count">2<' in page
    for action in held.actions.all():
        assert f'id="approval-action-{action.pk}"' not in page

    refused = inbox.post(f"/actions/batches/{held.pk}/reject/", {"from": "inbox", "comment": ""}, headers=HTMX)
    assert "Say why the batch is rejected." in refused.content.decode()
    row = inbox.post(f"/actions/batches/{held.pk}/approve/", {"from": "inbox", "comment": "reorg"}, headers=HTMX)
    assert "Approved 3 actions." in row.content.decode()
    assert set(held.actions.values_list("state", flat=True)) == {"queued"}
    after = inbox.get("/approvals/").content.decode()
    assert after.count('data-testid="approval-row"') == 1
    assert f'id="approval-action-{single.pk}"' in after
    assert 'data-testid="approvals-count">1<' in after
