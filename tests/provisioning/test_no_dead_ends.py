"""A request that nobody could approve is refused at once, saying what to do; the approval
policies panel, and the pages that request, warn while only one person may approve."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from rest_framework.test import APIClient

from console.accounts.models import Person
from integrations.models import Integration
from provisioning.batches import batch_request
from provisioning.errors import ActionRefused
from provisioning.models import Action, Batch
from provisioning.services import action_request
from tests.provisioning.conftest import account

pytestmark = pytest.mark.django_db


def test_the_only_approver_cannot_request_what_needs_approval(
    deletable: Integration, approver: Person, api_client_for: Callable[[Person], APIClient]
) -> None:
    with pytest.raises(ActionRefused, match="No one could approve this delete identity") as refused:
        action_request(
            actor=approver, integration=deletable, action_type="DELETE_IDENTITY", target_user=account(deletable, "ada")
        )
    assert "Give another person the admin role" in str(refused.value)
    assert "approval policy for delete identity to Automatic" in str(refused.value)
    response = api_client_for(approver).post(
        "/api/v1/actions/",
        {"integration": deletable.pk, "action_type": "DELETE_IDENTITY", "target_user": account(deletable, "ada").pk},
        format="json",
    )
    assert response.status_code == 400
    assert "No one could approve" in str(response.json())
    assert not Action.objects.exists()


def test_an_operator_with_no_approver_at_all_is_told_so(deletable: Integration, requester: Person) -> None:
    with pytest.raises(ActionRefused, match="no one may approve"):
        action_request(
            actor=requester, integration=deletable, action_type="DELETE_IDENTITY", target_user=account(deletable, "ada")
        )


def test_a_mass_change_nobody_could_approve_is_refused_with_the_way_out(
    deletable: Integration, approver: Person
) -> None:
    deletable.mass_change_max_accounts = 1
    deletable.save()
    with pytest.raises(ActionRefused, match="request fewer accounts at once"):
        batch_request(
            actor=approver,
            integration=deletable,
            action_type="DEPROVISION_IDENTITY",
            target_users=[account(deletable, "ada"), account(deletable, "bob")],
        )
    assert not Batch.objects.exists()


def test_with_another_approver_the_request_waits_for_them(
    deletable: Integration, approver: Person, make_person: Callable[..., Person]
) -> None:
    make_person("second-admin", roles=["admin"])
    action = action_request(
        actor=approver, integration=deletable, action_type="DELETE_IDENTITY", target_user=account(deletable, "ada")
    )
    assert action.state == "pending_approval"


def test_the_policies_panel_warns_while_one_person_may_approve(
    deletable: Integration, approver: Person, make_person: Callable[..., Person]
) -> None:
    page = Client()
    page.force_login(approver)
    detail = page.get(f"/integrations/{deletable.pk}/provisioning/").content.decode()
    assert "Only approver may approve, and nobody approves their own request" in detail
    make_person("second-admin", roles=["admin"])
    provisioning_tab = page.get(f"/integrations/{deletable.pk}/provisioning/").content.decode()
    assert 'data-testid="approval-warning"' not in provisioning_tab


def test_the_pages_that_request_warn_before_the_request(
    deletable: Integration, approver: Person, make_person: Callable[..., Person]
) -> None:
    page = Client()
    page.force_login(approver)
    ada = account(deletable, "ada")
    warning = 'data-testid="request-approval-warning"'

    account_page = page.get(f"/integrations/{deletable.pk}/users/{ada.pk}/").content.decode()
    assert account_page.count(warning) == 1  # delete needs approval by default; deprovision does not
    assert "Delete identity would be refused. No one could approve this delete identity" in account_page
    assert "set Peer app&#x27;s approval policy for delete identity to Automatic" in account_page
    users_tab = page.get(f"/integrations/{deletable.pk}/users/").content.decode()
    assert "Delete identity would be refused." in users_tab

    make_person("second-admin", roles=["admin"])
    assert warning not in page.get(f"/integrations/{deletable.pk}/users/{ada.pk}/").content.decode()
    assert warning not in page.get(f"/integrations/{deletable.pk}/users/").content.decode()
