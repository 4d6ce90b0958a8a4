"""The integration pages: add with field errors, detail with health, tabs, dashboard and settings panels."""

from __future__ import annotations

import pytest
from django.test import Client

from integrations.models import Integration
from integrations.services import extraction_run_execute, extraction_start
from tests.integrations.conftest import PEER_TOKEN, Peer

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
        {
            "name": "Jira",
            "kind": "scim",
            "base_url": "https://jira.example.com/scim/v2",
            "auth_type": "bearer",
            "bearer_token": "tok-9",
            "users_endpoint": "Users",
            "groups_endpoint": "Groups",
            "timeout_seconds": 30,
            "page_size": 100,
            "rate_limit_per_second": 10,
            "rate_limit_burst": 20,
            "max_concurrency": 4,
            "membership_chunk_size": 100,
            "mass_change_max_accounts": 25,
            "mass_change_max_percent": 10,
        },
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
    assert "1 users and 1 groups read" in detail
    assert 'data-testid="run-status">Succeeded' in detail
    users = admin_client.get(f"/integrations/{integration.pk}/users/?q=ada").content.decode()
    assert "Ada L" in users
    group_page = admin_client.get(f"/integrations/{integration.pk}/groups/").content.decode()
    assert "Team" in group_page
    assert "Fresh" in admin_client.get("/").content.decode()
    connection = admin_client.post(f"/integrations/{integration.pk}/test-connection/").content.decode()
    assert "Connected" in connection
