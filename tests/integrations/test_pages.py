"""The integration pages: add with field errors, detail with health, tabs, dashboard and settings panels."""

from __future__ import annotations

import pytest
from django.test import Client

from integrations.extraction import extraction_run_execute, extraction_start
from integrations.models import ExtractionRun, Integration
from tests.integrations.conftest import INTEGRATION_FORM, PEER_TOKEN, Peer

pytestmark = pytest.mark.django_db


def test_adding_an_integration_shows_field_errors_and_keeps_the_token_write_only(admin_client: Client) -> None:
    bad = admin_client.post(
        "/integrations/new/", {"name": "X", "kind": "scim", "base_url": "ftp://x", "auth_type": "bearer"}
    )
    page = bad.content.decode()
    assert "must start with http" in page
    assert "A bearer token is needed" in page
    ok = admin_client.post(
        "/integrations/new/",
        INTEGRATION_FORM,
    )
    assert ok.status_code == 302, ok.content.decode()[:2000]
    integration = Integration.objects.get(name="Jira")
    assert integration.bearer_token == "tok-9"
    edit = admin_client.get(f"/integrations/{integration.pk}/edit/").content.decode()
    assert "tok-9" not in edit
    assert "Bearer token: set" in edit
    # Saving without a token keeps the stored one.
    admin_client.post(
        f"/integrations/{integration.pk}/edit/",
        {
            "name": "Jira",
            "kind": "scim",
            "base_url": "https://jira.example.com/scim/v2",
            "auth_type": "bearer",
            "users_endpoint": "Users",
            "groups_endpoint": "Groups",
            "timeout_seconds": 30,
            "page_size": 100,
            "rate_limit_per_second": 10,
            "rate_limit_burst": 20,
            "max_concurrency": 4,
            "extraction_interval_minutes": 15,
        },
    )
    integration.refresh_from_db()
    assert integration.bearer_token == "tok-9"
    assert integration.extraction_interval_minutes == 15
    assert "Jira</a>: every 15 minutes" in admin_client.get("/settings/").content.decode()


def test_detail_tabs_dashboard_and_progress_after_an_extraction(peer: Peer, admin_client: Client) -> None:
    ada = peer.user("ada", displayName="Ada L")
    peer.group("Team", [ada])
    integration = Integration.objects.create(name="Peer", base_url=peer.url, bearer_token=PEER_TOKEN)
    assert "Never extracted" in admin_client.get("/").content.decode()
    extraction_run_execute(run_id=extraction_start(integration=integration, trigger="manual").pk)
    detail = admin_client.get(f"/integrations/{integration.pk}/").content.decode()
    assert "1 user and 1 group read" in detail
    assert 'data-testid="run-status">Succeeded' in detail
    users = admin_client.get(f"/integrations/{integration.pk}/users/?q=ada").content.decode()
    assert "Ada L" in users
    group_page = admin_client.get(f"/integrations/{integration.pk}/groups/").content.decode()
    assert "Team" in group_page
    team = integration.target_groups.get(display_name="Team")
    team_page = admin_client.get(f"/integrations/{integration.pk}/groups/{team.pk}/").content.decode()
    assert "in Peer, 1 member</small>" in team_page
    assert "Fresh" in admin_client.get("/").content.decode()
    connection = admin_client.post(f"/integrations/{integration.pk}/test-connection/").content.decode()
    assert "Connected" in connection


@pytest.mark.parametrize(
    ("fields", "bar", "phase"),
    [
        ({"status": "queued"}, 'value="0" max="1"', "Waiting for a worker"),
        ({"status": "running"}, '<progress aria-label="Extraction progress"></progress>', "Starting"),
        (
            {"status": "running", "users_seen": 40, "users_total": 100},
            'value="40" max="100"',
            "Reading users: 40 of 100",
        ),
        (
            {"status": "running", "users_seen": 40},
            '<progress aria-label="Extraction progress"></progress>',
            "Reading users",
        ),
        (
            {"status": "running", "users_seen": 130, "users_total": 100},
            'value="130" max="130"',
            "Reading users: 130 of 130",
        ),
        (
            {"status": "running", "users_seen": 100, "users_total": 100, "groups_seen": 3, "groups_total": 12},
            'value="3" max="12"',
            "Reading groups: 3 of 12",
        ),
    ],
    ids=["queued", "starting", "users", "users-total-unknown", "total-too-small", "groups"],
)
def test_the_progress_bar_moves_with_what_was_read(
    admin_client: Client, fields: dict[str, object], bar: str, phase: str
) -> None:
    integration = Integration.objects.create(name="App", base_url="https://app.example.com/scim/v2")
    ExtractionRun.objects.create(integration=integration, trigger="manual", **fields)
    region = admin_client.get(f"/integrations/{integration.pk}/progress/").content.decode()
    assert bar in region
    assert f'data-testid="run-phase">{phase}</p>' in region
    assert 'hx-trigger="every 1s"' in region  # still polled while it runs


def test_a_finished_run_shows_a_full_bar_and_is_no_longer_polled(peer: Peer, admin_client: Client) -> None:
    peer.user("ada")
    integration = Integration.objects.create(name="Peer", base_url=peer.url, bearer_token=PEER_TOKEN)
    extraction_run_execute(run_id=extraction_start(integration=integration, trigger="manual").pk)
    region = admin_client.get(f"/integrations/{integration.pk}/progress/").content.decode()
    assert 'value="1" max="1"' in region
    assert "hx-trigger" not in region
