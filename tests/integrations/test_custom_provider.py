"""Custom applications (OAA): the custom-provider API, payload pushes, and where the pushed
payload and the real SCIM application disagree."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from console.accounts.models import Person
from console.audit.models import AuditEvent
from integrations.extraction import extraction_run_execute
from integrations.models import ExtractionRun, Integration, TargetGroup, TargetMembership, TargetUser
from tests.scim_peer import PEER_TOKEN, Peer

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_api(admin: Person, api_client_for: Callable[[Person], APIClient]) -> APIClient:
    return api_client_for(admin)


def provider(url: str, **configuration: Any) -> dict[str, Any]:
    return {
        "name": "CustomerPortal",
        "custom_template": "application",
        "provisioning": True,
        "external_lifecycle_management_type": "SCIM",
        "configuration_json": json.dumps({"scim_url": url, "scim_token": PEER_TOKEN, **configuration}),
    }


def application(users: list[dict[str, Any]], groups: list[str]) -> dict[str, Any]:
    return {
        "applications": [
            {
                "name": "Customer Portal",
                "application_type": "CustomerPortal",
                "local_users": users,
                "local_groups": [{"name": name} for name in groups],
            }
        ]
    }


def test_the_custom_provider_api_creates_an_oaa_integration(peer: Peer, admin_api: APIClient) -> None:
    response = admin_api.post(
        "/api/v1/providers/custom",
        provider(peer.url, users_endpoint="Users", scim_extension_schemas=True),
        format="json",
    )
    assert response.status_code == 201, response.json()
    integration = Integration.objects.get(pk=response.json()["id"])
    assert (integration.kind, integration.name, integration.base_url) == ("oaa", "CustomerPortal", peer.url)
    assert (integration.auth_type, integration.bearer_token) == ("bearer", PEER_TOKEN)
    assert integration.provisioning_enabled is True
    assert integration.discover_extensions is True
    assert PEER_TOKEN not in str(list(AuditEvent.objects.values_list("details", flat=True)))
    shown = admin_api.get(f"/api/v1/integrations/{integration.pk}/").json()
    assert shown["bearer_token_set"] is True
    assert "bearer_token" not in shown

    basic = admin_api.post(
        "/api/v1/providers/custom/",
        {
            **provider(peer.url),
            "name": "Legacy",
            "configuration_json": {"scim_url": peer.url, "username": "svc", "password": "pw"},
        },
        format="json",
    )
    assert basic.status_code == 201, basic.json()
    legacy = Integration.objects.get(name="Legacy")
    assert (legacy.auth_type, legacy.basic_username, legacy.basic_password) == ("basic", "svc", "pw")


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"configuration_json": "{not json"}, "configuration_json", "not valid JSON"),
        ({"configuration_json": json.dumps({"scim_url": "ftp://x"})}, "configuration_json", "http:// or https://"),
        ({"configuration_json": json.dumps({"scim_url": "https://x.example.com"})}, "configuration_json", "scim_token"),
        (
            {"configuration_json": json.dumps({"scim_url": "https://x", "scim_token": "t", "ca_certificate": "x"})},
            "configuration_json",
            "PEM",
        ),
        ({"external_lifecycle_management_type": "LDAP"}, "external_lifecycle_management_type", "not a valid choice"),
        ({"custom_template": "other"}, "custom_template", "not a valid choice"),
    ],
    ids=["not-json", "not-http", "no-credential", "bad-pem", "not-scim", "not-application"],
)
def test_bad_provider_input_gets_a_clear_field_error_and_creates_nothing(
    admin_api: APIClient, change: dict[str, Any], field: str, message: str
) -> None:
    response = admin_api.post(
        "/api/v1/providers/custom", {**provider("https://x.example.com"), **change}, format="json"
    )
    assert response.status_code == 400
    assert message in str(response.json()["fields"][field])
    assert not Integration.objects.exists()


def test_only_admins_create_providers_or_push(
    make_person: Callable[..., Person], api_client_for: Callable[[Person], APIClient]
) -> None:
    operator = api_client_for(make_person("o", roles=["operator"]))
    assert (
        operator.post("/api/v1/providers/custom", provider("https://x.example.com"), format="json").status_code == 403
    )
    integration = Integration.objects.create(kind="oaa", name="X", base_url="https://x.example.com", bearer_token="t")
    pushed = operator.post(f"/api/v1/providers/custom/{integration.pk}/push", application([], []), format="json")
    assert pushed.status_code == 403


def test_a_pushed_payload_is_the_picture_and_the_scim_side_shows_where_they_disagree(
    peer: Peer, admin_api: APIClient, admin_client: Client
) -> None:
    ada = peer.user("ada")
    peer.user("carl")  # in the application, missing from the payload
    peer.group("Engineers", [ada])
    peer.group("Finance", [])
    pk = admin_api.post("/api/v1/providers/custom", provider(peer.url), format="json").json()["id"]

    payload = application(
        [
            {"name": "ada", "email": "ada@example.com", "is_active": True, "groups": ["Engineers"]},
            {"name": "bob", "identities": ["bob@example.com"], "is_active": False, "groups": ["Engineers", "Ops"]},
        ],
        ["Engineers", "Ops"],
    )
    pushed = admin_api.post(f"/api/v1/providers/custom/{pk}/push", payload, format="json")
    assert pushed.status_code == 200, pushed.json()
    body = pushed.json()
    assert (body["trigger"], body["status"], body["created"]) == ("push", "succeeded", 4)
    assert (body["user_entity_type"], body["group_entity_type"]) == (
        "OAA.CustomerPortal.User",
        "OAA.CustomerPortal.Group",
    )
    users = {u.user_name: u for u in TargetUser.objects.filter(integration_id=pk)}
    assert set(users) == {"ada", "bob"}
    assert users["bob"].email == "bob@example.com"
    assert users["bob"].active is False
    engineers = TargetGroup.objects.get(integration_id=pk, display_name="Engineers")
    assert engineers.member_count == 2
    assert set(TargetMembership.objects.filter(group=engineers).values_list("user__user_name", flat=True)) == {
        "ada",
        "bob",
    }

    run = ExtractionRun.objects.create(integration_id=pk, trigger="manual")
    assert extraction_run_execute(run_id=run.pk) is not None
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert TargetUser.objects.filter(integration_id=pk).count() == 2  # reading SCIM does not replace the payload

    comparison = admin_api.get(f"/api/v1/providers/custom/{pk}/comparison").json()
    assert comparison["agrees"] is False
    assert comparison["users_only_in_payload"] == ["bob"]
    assert comparison["users_only_in_scim"] == ["carl"]
    assert comparison["groups_only_in_payload"] == ["Ops"]
    assert comparison["groups_only_in_scim"] == ["Finance"]
    page = admin_client.get(f"/integrations/{pk}/").content.decode()
    assert "Users only in SCIM (1)" in page
    assert "<li>carl</li>" in page
    assert "OAA.CustomerPortal.User" in page

    second = admin_api.post(
        f"/api/v1/providers/custom/{pk}/push",
        application([{"name": "ada", "groups": ["Engineers"]}], ["Engineers"]),
        format="json",
    ).json()
    assert (second["created"], second["removed"]) == (0, 2)  # bob and Ops are gone
    assert TargetUser.objects.get(integration_id=pk, user_name="bob").removed_at is not None


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"applications": []}, "applications"),
        ({"application_type": "", "local_users": []}, "application_type"),
        ({"application_type": "App", "local_users": [{"email": "x@example.com"}]}, "local_users[0].name"),
        ({"application_type": "App", "local_users": [{"name": "a", "groups": ["Nope"]}]}, "local_users[0].groups"),
        (
            {"application_type": "App", "local_users": [{"name": "a"}], "memberships": [{"user": "a", "group": "G"}]},
            "memberships[0].group",
        ),
        ({"json_data": "{oops"}, "json_data"),
    ],
    ids=["no-application", "no-type", "user-without-name", "unknown-group", "unknown-membership", "bad-json-data"],
)
def test_a_bad_payload_names_what_is_wrong_and_changes_nothing(
    admin_api: APIClient, payload: dict[str, Any], field: str
) -> None:
    integration = Integration.objects.create(kind="oaa", name="X", base_url="https://x.example.com", bearer_token="t")
    response = admin_api.post(f"/api/v1/providers/custom/{integration.pk}/push", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert not TargetUser.objects.exists()
    assert not ExtractionRun.objects.exists()


def test_push_is_only_for_custom_applications(admin_api: APIClient) -> None:
    scim = Integration.objects.create(kind="scim", name="S", base_url="https://x.example.com", bearer_token="t")
    response = admin_api.post(f"/api/v1/providers/custom/{scim.pk}/push", application([], []), format="json")
    assert response.status_code == 404
