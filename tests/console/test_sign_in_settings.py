"""Settings > Sign-in and /api/v1/settings/: the client secret is write-only, and the settings are checked."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from console.accounts.models import Person
from console.audit.models import AuditEvent
from console.core.models import ConsoleSettings

pytestmark = pytest.mark.django_db

SECRET = "the-provider-client-secret-42"


def test_the_api_takes_the_client_secret_and_never_shows_it(
    admin: Person, api_client_for: Callable[[Person], APIClient]
) -> None:
    api = api_client_for(admin)
    before = api.get("/api/v1/settings/").json()
    assert before["oidc_client_secret_set"] is False
    assert "oidc_client_secret" not in before
    answer = api.patch(
        "/api/v1/settings/",
        {
            "oidc_enabled": True,
            "oidc_issuer": "https://idp.example.com/realms/corp",
            "oidc_client_id": "console",
            "oidc_client_secret": SECRET,
            "oidc_username_claim": "email",
            "oidc_button_label": "Sign in with Corp SSO",
            "password_sign_in_admins_only": True,
            "second_factor_required": True,
        },
        format="json",
    )
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["oidc_client_secret_set"] is True
    assert body["oidc_client_secret_changed_at"]
    assert SECRET not in answer.content.decode()
    assert SECRET not in api.get("/api/v1/settings/").content.decode()
    # Encrypted at rest, and kept out of the audit log.
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT oidc_client_secret FROM {ConsoleSettings._meta.db_table}")  # noqa: S608 - its own table
        stored = cursor.fetchone()[0]
    assert stored
    assert SECRET not in stored
    assert ConsoleSettings.load().oidc_client_secret == SECRET
    event = AuditEvent.objects.filter(verb="settings.updated").latest("id")
    assert SECRET not in str(event.details)
    assert event.details["after"]["oidc_client_secret"] == "[redacted]"


def test_the_settings_are_checked(admin: Person, api_client_for: Callable[[Person], APIClient]) -> None:
    api = api_client_for(admin)
    answer = api.patch("/api/v1/settings/", {"oidc_enabled": True}, format="json")
    assert answer.status_code == 400
    assert set(answer.json()["fields"]) == {"oidc_issuer", "oidc_client_id"}
    plain = api.patch("/api/v1/settings/", {"oidc_issuer": "http://idp.example.com"}, format="json")
    assert "https://" in plain.json()["fields"]["oidc_issuer"][0]
    ConsoleSettings.objects.update_or_create(pk=1, defaults={"scim_provisioning_enabled": True})
    jit = api.patch("/api/v1/settings/", {"oidc_create_people": True}, format="json")
    assert "SCIM" in jit.json()["fields"]["oidc_create_people"][0]


def test_the_settings_page_keeps_the_secret_when_left_empty(admin_client: Client) -> None:
    form = {
        "extraction_interval_minutes": 60,
        "oidc_enabled": "on",
        "oidc_issuer": "https://idp.example.com",
        "oidc_client_id": "console",
        "oidc_client_secret": SECRET,
        "oidc_scopes": "openid profile email",
        "oidc_username_claim": "preferred_username",
        "oidc_button_label": "Sign in with Corp SSO",
    }
    assert admin_client.post("/settings/", form).status_code == 302
    page = admin_client.get("/settings/").content.decode()
    assert SECRET not in page
    assert "Client secret: set, changed" in page
    assert admin_client.post("/settings/", {**form, "oidc_client_secret": ""}).status_code == 302
    assert ConsoleSettings.load().oidc_client_secret == SECRET
    assert admin_client.post("/settings/", {**form, "oidc_issuer": ""}).status_code == 200  # needed while on
