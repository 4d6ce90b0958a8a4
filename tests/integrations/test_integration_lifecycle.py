"""Disabling, deleting and scheduling an integration."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from console.accounts.models import Person
from console.audit.models import AuditEvent
from console.core.models import ConsoleSettings
from integrations.extraction import ExtractionRefused, extraction_run_execute, extraction_start
from integrations.models import ExtractionRun, Integration, TargetUser
from integrations.selectors import integrations_due, interval_minutes_of
from integrations.tasks import extractions_dispatch_due
from tests.integrations.conftest import PEER_TOKEN, Peer

pytestmark = pytest.mark.django_db

FORM = {
    "kind": "scim",
    "auth_type": "bearer",
    "users_endpoint": "Users",
    "groups_endpoint": "Groups",
    "timeout_seconds": 30,
    "page_size": 100,
    "rate_limit_per_second": 10,
    "rate_limit_burst": 20,
    "max_concurrency": 4,
}


@pytest.fixture
def admin_api(admin: Person, api_client_for: Callable[[Person], APIClient]) -> APIClient:
    return api_client_for(admin)


def last_extracted(integration: Integration, minutes_ago: int) -> None:
    then = timezone.now() - timedelta(minutes=minutes_ago)
    ExtractionRun.objects.create(
        integration=integration, trigger="schedule", status="succeeded", queued_at=then, finished_at=then
    )


# --- disabling -----------------------------------------------------------------------------


def test_a_disabled_integration_is_not_extracted_on_schedule_and_extract_now_is_refused(
    peer: Peer, admin_client: Client, admin_api: APIClient
) -> None:
    integration = Integration.objects.create(name="Peer", base_url=peer.url, bearer_token=PEER_TOKEN)
    saved = admin_client.post(
        f"/integrations/{integration.pk}/edit/", {**FORM, "name": "Peer", "base_url": peer.url}
    )  # "enabled" left unticked
    assert saved.status_code == 302
    integration.refresh_from_db()
    assert integration.enabled is False
    assert AuditEvent.objects.filter(verb="integration.updated", target_id=str(integration.pk)).exists()

    assert extractions_dispatch_due() == 0
    assert not ExtractionRun.objects.exists()

    page = admin_client.post(f"/integrations/{integration.pk}/extract/", follow=True).content.decode()
    assert "Peer is disabled: enable it to extract." in page
    partial = admin_client.post(f"/integrations/{integration.pk}/extract/", headers={"HX-Request": "true"})
    assert 'id="progress"' in partial.content.decode()
    assert "Peer is disabled: enable it to extract." in partial.content.decode()
    answer = admin_api.post(f"/api/v1/integrations/{integration.pk}/extract/")
    assert answer.status_code == 409
    assert answer.json() == {"detail": "Peer is disabled: enable it to extract.", "code": "disabled"}
    assert not ExtractionRun.objects.exists()
    assert not AuditEvent.objects.filter(verb="integration.extraction_requested").exists()
    detail = admin_client.get(f"/integrations/{integration.pk}/").content.decode()
    assert 'data-testid="disabled-note"' in detail

    admin_api.patch(f"/api/v1/integrations/{integration.pk}/", {"enabled": True}, format="json")
    assert admin_api.post(f"/api/v1/integrations/{integration.pk}/extract/").status_code == 202


def test_a_run_queued_before_the_integration_was_disabled_does_not_read_it(
    peer: Peer, make_integration: Callable[..., Integration]
) -> None:
    peer.user("ada")
    integration = make_integration(peer.url)
    run = extraction_start(integration=integration, trigger="schedule")
    Integration.objects.filter(pk=integration.pk).update(enabled=False)
    done = extraction_run_execute(run_id=run.pk)
    assert done is not None
    assert (done.status, done.requests) == ("failed", 0)
    assert "disabled" in done.error
    assert not TargetUser.objects.exists()
    with pytest.raises(ExtractionRefused):
        extraction_start(integration=Integration.objects.get(pk=integration.pk), trigger="manual")


# --- deleting ------------------------------------------------------------------------------


def test_deleting_an_integration_keeps_its_history(
    peer: Peer, admin_client: Client, admin_api: APIClient, admin: Person
) -> None:
    peer.user("ada")
    integration = Integration.objects.create(name="Peer", base_url=peer.url, bearer_token=PEER_TOKEN)
    admin_client.post(f"/integrations/{integration.pk}/extract/")
    extraction_run_execute(run_id=ExtractionRun.objects.get().pk)
    pk = integration.pk

    response = admin_client.post(f"/integrations/{pk}/delete/", follow=True)

    page = response.content.decode()
    assert "Peer was deleted. Its actions, their calls, its runs and its audit trail stay readable" in page
    assert not Integration.objects.filter(pk=pk).exists()  # gone from the console, archived
    assert Integration.all_objects.get(pk=pk).archived_at is not None
    assert ExtractionRun.objects.filter(integration_id=pk).count() == 1  # its history stays
    assert TargetUser.objects.filter(integration_id=pk).exists()
    trail = AuditEvent.objects.filter(target_type="integrations.integration", target_id=str(pk)).order_by("id")
    assert list(trail.values_list("verb", flat=True)) == ["integration.extraction_requested", "integration.deleted"]
    deleted = trail.get(verb="integration.deleted")
    assert (deleted.actor, deleted.target_label) == (admin, "Peer")
    assert deleted.details["before"]["base_url"] == peer.url

    other = admin_api.post(
        "/api/v1/integrations/", {"name": "Other", "base_url": peer.url, "bearer_token": PEER_TOKEN}, format="json"
    ).json()
    assert admin_api.delete(f"/api/v1/integrations/{other['id']}/").status_code == 204
    verbs = AuditEvent.objects.filter(target_id=str(other["id"]), target_type="integrations.integration")
    assert set(verbs.values_list("verb", flat=True)) == {"integration.created", "integration.deleted"}


# --- the schedule --------------------------------------------------------------------------


def test_the_global_interval_applies_unless_an_integration_overrides_it(
    make_integration: Callable[..., Integration],
) -> None:
    ConsoleSettings.objects.update_or_create(pk=1, defaults={"extraction_interval_minutes": 60})
    default = make_integration("https://a.example.com", name="Default")
    fast = make_integration("https://b.example.com", name="Fast", extraction_interval_minutes=15)
    slow = make_integration("https://c.example.com", name="Slow", extraction_interval_minutes=240)
    never = make_integration("https://d.example.com", name="Never extracted", extraction_interval_minutes=240)
    assert [interval_minutes_of(i) for i in (default, fast, slow)] == [60, 15, 240]

    for integration in (default, fast, slow):
        last_extracted(integration, minutes_ago=20)
    assert {i.name for i in integrations_due()} == {"Fast", "Never extracted"}

    ExtractionRun.objects.filter(integration__in=[default, fast, slow]).update(
        queued_at=timezone.now() - timedelta(minutes=61)
    )
    assert {i.name for i in integrations_due()} == {"Default", "Fast", "Never extracted"}

    ConsoleSettings.objects.filter(pk=1).update(extraction_interval_minutes=90)  # the global one changes
    assert {i.name for i in integrations_due()} == {"Fast", "Never extracted"}
    assert never.pk in {i.pk for i in integrations_due()}


def test_the_next_extraction_is_due_one_interval_after_the_last_was_queued(
    make_integration: Callable[..., Integration],
) -> None:
    integration = make_integration("https://a.example.com", extraction_interval_minutes=30)
    last_extracted(integration, minutes_ago=29)
    assert integrations_due() == []
    ExtractionRun.objects.update(queued_at=timezone.now() - timedelta(minutes=30))
    assert integrations_due() == [integration]
    assert extractions_dispatch_due() == 1
    assert ExtractionRun.objects.filter(status="queued", trigger="schedule").count() == 1
    assert extractions_dispatch_due() == 0


@pytest.mark.parametrize("minutes", [0, -5])
def test_an_override_is_at_least_one_minute(
    minutes: int, admin_client: Client, admin_api: APIClient, make_integration: Callable[..., Integration]
) -> None:
    integration = make_integration("https://a.example.com", name="App")
    page = admin_client.post(
        f"/integrations/{integration.pk}/edit/",
        {**FORM, "name": "App", "base_url": "https://a.example.com", "extraction_interval_minutes": minutes},
    )
    assert page.status_code == 200
    assert "at least 1 minute" in page.content.decode()
    answer = admin_api.patch(
        f"/api/v1/integrations/{integration.pk}/", {"extraction_interval_minutes": minutes}, format="json"
    )
    assert answer.status_code == 400
    assert "at least 1 minute" in answer.json()["fields"]["extraction_interval_minutes"][0]
    integration.refresh_from_db()
    assert integration.extraction_interval_minutes is None
    for accepted in (1, None):
        ok = admin_api.patch(
            f"/api/v1/integrations/{integration.pk}/", {"extraction_interval_minutes": accepted}, format="json"
        )
        assert ok.status_code == 200, ok.json()
        assert ok.json()["extraction_interval_minutes"] == accepted


def test_settings_lists_the_overrides(admin_client: Client, make_integration: Callable[..., Integration]) -> None:
    make_integration("https://a.example.com", name="Fast", extraction_interval_minutes=5)
    make_integration("https://b.example.com", name="Global")
    page: Any = admin_client.get("/settings/").content.decode()
    assert "Fast</a>: every 5 minutes" in page
    assert "Global</a>" not in page
