"""Deleting an integration keeps its history: its actions, their calls, its runs and its
audit trail stay readable under its name; what waited for it is cancelled; its name is free."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.test import Client
from rest_framework.test import APIClient

from console.accounts.models import Person
from console.audit.models import AuditEvent
from integrations.models import ExtractionRun, Integration, TargetUser
from provisioning.models import Action, ScimCall
from provisioning.services import action_request
from tests.provisioning.conftest import account, run_action
from tests.scim_peer import PEER_TOKEN, Peer

pytestmark = pytest.mark.django_db


def test_a_deleted_integrations_history_stays_readable(
    peer: Peer,
    app: Integration,
    extract: Callable[[], None],
    requester: Person,
    approver: Person,
    make_person: Callable[..., Person],
    api_client_for: Callable[[Person], APIClient],
) -> None:
    peer.user("ada")
    extract()
    jane = make_person("jane")
    done = run_action(action_request(actor=requester, integration=app, action_type="SYNC_IDENTITIES", person=jane))
    assert done.state == "succeeded", done.last_error
    make_person("second-admin", roles=["admin"])
    app.supports_hard_delete = True
    app.save()
    waiting = action_request(
        actor=approver, integration=app, action_type="DELETE_IDENTITY", target_user=account(app, "ada")
    )
    assert waiting.state == "pending_approval"
    calls = ScimCall.objects.filter(action=done).count()

    page = Client()
    page.force_login(approver)
    response = page.post(f"/integrations/{app.pk}/delete/", follow=True)

    assert "was deleted" in response.content.decode()
    assert not Integration.objects.filter(pk=app.pk).exists()  # gone from the console
    archived = Integration.all_objects.get(pk=app.pk)
    assert archived.archived_at is not None
    assert (archived.enabled, archived.provisioning_enabled, archived.bearer_token) == (False, False, "")
    # Its history stays: the action, its calls, its runs, its audit trail, under its name.
    assert Action.objects.get(pk=done.pk).integration.name == "Peer app"
    assert ScimCall.objects.filter(action=done).count() == calls
    assert ExtractionRun.objects.filter(integration_id=app.pk).count() == 1
    assert AuditEvent.objects.filter(verb="integration.deleted", target_id=str(app.pk)).exists()
    assert TargetUser.objects.filter(integration_id=app.pk).exists()  # the accounts actions name
    # What waited for it was cancelled, and said why.
    waiting.refresh_from_db()
    assert waiting.state == "cancelled"
    assert waiting.last_error == "the integration was deleted"
    # Its pages: the list says it was deleted; its page, the action and its runs still read.
    listing = page.get("/integrations/").content.decode()
    assert "Deleted integrations" in listing
    archived_page = page.get(f"/integrations/{app.pk}/").content.decode()
    assert "This integration was deleted" in archived_page
    assert page.get(f"/actions/{done.pk}/").status_code == 200
    assert "Peer app" in page.get(f"/actions/{done.pk}/").content.decode()
    assert page.get(f"/integrations/{app.pk}/runs/").status_code == 200
    assert page.get(f"/actions/?integration={app.pk}").status_code == 200
    # The API: the integration is gone, its actions are not.
    api = api_client_for(approver)
    assert api.get(f"/api/v1/integrations/{app.pk}/").status_code == 404
    action = api.get(f"/api/v1/actions/{done.pk}/")
    assert action.status_code == 200
    assert (action.json()["integration"], action.json()["integration_name"]) == (app.pk, "Peer app")
    listed = api.get(f"/api/v1/actions/?integration={app.pk}").json()["results"]
    assert {row["integration_name"] for row in listed} == {"Peer app"}
    runs = api.get(f"/api/v1/integrations/{app.pk}/runs/")
    assert runs.status_code == 200
    assert [run["status"] for run in runs.json()["results"]] == ["succeeded"]
    trail = api.get(f"/api/v1/audit-events/?target_type=integrations.integration&target_id={app.pk}").json()
    assert {(event["verb"], event["target_label"]) for event in trail["results"]} >= {
        ("integration.deleted", "Peer app")
    }
    # Its name is free for a new integration.
    again = api.post(
        "/api/v1/integrations/", {"name": "Peer app", "base_url": peer.url, "bearer_token": PEER_TOKEN}, format="json"
    )
    assert again.status_code == 201, again.json()
    duplicate = api.post(
        "/api/v1/integrations/", {"name": "Peer app", "base_url": peer.url, "bearer_token": PEER_TOKEN}, format="json"
    )
    assert duplicate.status_code == 409  # a name taken is a refusal because of state
    assert "exists already" in str(duplicate.json())


def test_deleting_through_the_api_archives_too(
    app: Integration, approver: Person, api_client_for: Callable[[Person], APIClient]
) -> None:
    response = api_client_for(approver).delete(f"/api/v1/integrations/{app.pk}/")
    assert response.status_code == 204
    assert Integration.all_objects.get(pk=app.pk).archived_at is not None
    assert api_client_for(approver).delete(f"/api/v1/integrations/{app.pk}/").status_code == 404


def test_a_deleted_integrations_pages_say_so_and_link_only_to_what_still_reads(
    peer: Peer, app: Integration, extract: Callable[[], None], requester: Person, approver: Person
) -> None:
    peer.user("ada")
    extract()
    done = run_action(
        action_request(
            actor=requester, integration=app, action_type="DEPROVISION_IDENTITY", target_user=account(app, "ada")
        )
    )
    assert done.state == "succeeded", done.last_error
    run = ExtractionRun.objects.get(integration=app)
    page = Client()
    page.force_login(approver)
    page.post(f"/integrations/{app.pk}/delete/")

    pages = [
        f"/integrations/{app.pk}/",
        f"/integrations/{app.pk}/runs/",
        f"/integrations/{app.pk}/runs/{run.pk}/",
        f"/actions/{done.pk}/",
    ]
    followed = set()
    for url in pages:
        html = page.get(url).content.decode()
        assert "Deleted" in html, url  # each says the integration is gone
        assert 'data-testid="breadcrumbs"' in html or url.startswith("/actions/"), url
        # Every link to the integration's own pages leads somewhere that still reads: its
        # Users, Groups, Provisioning and Settings tabs are gone with it, and not offered.
        followed.update(re.findall(rf'href="(/integrations/{app.pk}/[^"?#]*)', html))
    assert followed == {
        f"/integrations/{app.pk}/",
        f"/integrations/{app.pk}/runs/",
        f"/integrations/{app.pk}/runs/{run.pk}/",
    }
    for url in sorted(followed):
        assert page.get(url).status_code == 200, url
    action_page = page.get(f"/actions/{done.pk}/").content.decode()
    assert 'data-testid="integration-deleted"' in action_page
    assert page.get(f"/integrations/{app.pk}/users/").status_code == 404  # not offered, and not there
