"""``/api/v1/integrations/``: write-only credentials, clear field errors, extract, health."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from console.accounts.models import Person
from console.audit.models import AuditEvent
from integrations.extraction import extraction_run_execute
from integrations.models import ExtractionRun, Integration
from tests.integrations.conftest import PEER_TOKEN, Peer

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_api(admin: Person, api_client_for: Callable[[Person], APIClient]) -> APIClient:
    return api_client_for(admin)


def test_credentials_are_write_only_and_never_audited(admin_api: APIClient) -> None:
    created = admin_api.post(
        "/api/v1/integrations/",
        {"name": "Jira", "base_url": "https://jira.example.com/scim/v2", "bearer_token": "tok-secret-1"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert "bearer_token" not in body
    assert body["bearer_token_set"] is True
    assert body["credentials_changed_at"] is not None
    listed = admin_api.get("/api/v1/integrations/").content.decode()
    assert "tok-secret-1" not in listed
    events = str(list(AuditEvent.objects.values_list("details", flat=True)))
    assert "tok-secret-1" not in events
    assert "bearer_token': '[redacted]'" in events


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "A", "base_url": "ftp://x.example.com", "bearer_token": "t"}, "base_url"),
        (
            {"name": "B", "base_url": "https://x.example.com", "bearer_token": "t", "ca_certificate": "nope"},
            "ca_certificate",
        ),
        ({"name": "C", "base_url": "https://x.example.com"}, "bearer_token"),
        (
            {"name": "D", "base_url": "https://x.example.com", "auth_type": "basic", "basic_username": "u"},
            "basic_password",
        ),
    ],
    ids=["not-http", "bad-pem", "no-token", "no-password"],
)
def test_bad_input_gets_a_clear_field_error(admin_api: APIClient, payload: dict[str, Any], field: str) -> None:
    response = admin_api.post("/api/v1/integrations/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert not Integration.objects.exists()


def test_viewers_read_operators_extract_admins_configure(
    make_person: Callable[..., Person], api_client_for: Callable[[Person], APIClient]
) -> None:
    integration = Integration.objects.create(name="Slack", base_url="https://slack.example.com/scim/v2")
    viewer = api_client_for(make_person("v", roles=["viewer"]))
    operator = api_client_for(make_person("o", roles=["operator"]))
    assert viewer.get(f"/api/v1/integrations/{integration.pk}/").status_code == 200
    assert viewer.post(f"/api/v1/integrations/{integration.pk}/extract/").status_code == 403
    assert operator.post(f"/api/v1/integrations/{integration.pk}/extract/").status_code == 202
    assert operator.patch(f"/api/v1/integrations/{integration.pk}/", {"name": "x"}, format="json").status_code == 403


def test_extract_then_browse_users_groups_runs_and_health(peer: Peer, admin_api: APIClient) -> None:
    ada = peer.user("ada")
    peer.user("bob")
    peer.group("Team", [ada])
    created = admin_api.post(
        "/api/v1/integrations/", {"name": "Peer", "base_url": peer.url, "bearer_token": PEER_TOKEN}, format="json"
    ).json()
    pk = created["id"]
    assert admin_api.get(f"/api/v1/integrations/{pk}/health/").json()["freshness"] == "never"
    queued = admin_api.post(f"/api/v1/integrations/{pk}/extract/")
    assert queued.status_code == 202
    extraction_run_execute(run_id=queued.json()["id"])
    runs = admin_api.get(f"/api/v1/integrations/{pk}/runs/").json()["results"]
    assert runs[0]["status"] == "succeeded"
    assert runs[0]["trigger"] == "api"
    users = admin_api.get(f"/api/v1/integrations/{pk}/users/?q=ad").json()["results"]
    assert [u["user_name"] for u in users] == ["ada"]
    assert users[0]["resource"]["userName"] == "ada"
    groups = admin_api.get(f"/api/v1/integrations/{pk}/groups/").json()["results"]
    assert [(g["display_name"], g["member_count"]) for g in groups] == [("Team", 1)]
    health = admin_api.get(f"/api/v1/integrations/{pk}/health/").json()
    assert health["freshness"] == "fresh"
    assert (health["users"], health["groups"], health["needs_attention"]) == (2, 1, False)


def test_test_connection_reports_capabilities_or_the_cause(peer: Peer, admin_api: APIClient) -> None:
    good = Integration.objects.create(name="Good", base_url=peer.url, bearer_token=PEER_TOKEN)
    result = admin_api.post(f"/api/v1/integrations/{good.pk}/test-connection/").json()
    assert result["ok"] is True
    assert result["capabilities"]["patch"] is True
    assert "User" in result["capabilities"]["resource_types"]
    bad = Integration.objects.create(name="Bad", base_url="http://127.0.0.1:9/scim/v2", bearer_token=PEER_TOKEN)
    failed = admin_api.post(f"/api/v1/integrations/{bad.pk}/test-connection/").json()
    assert failed["ok"] is False
    assert "Connection refused by 127.0.0.1:9" in failed["error"]
    assert "Errno" not in failed["error"]


def test_beat_dispatches_only_what_is_due(peer: Peer) -> None:
    from integrations.tasks import extractions_dispatch_due

    due = Integration.objects.create(name="Due", base_url=peer.url, bearer_token=PEER_TOKEN)
    Integration.objects.create(name="Off", base_url=peer.url, bearer_token=PEER_TOKEN, enabled=False)
    assert extractions_dispatch_due() == 1
    assert ExtractionRun.objects.get().integration == due
    assert extractions_dispatch_due() == 0  # queued just now: not due again
