"""Integration services: each change and its audit record in one transaction, credentials that
are replaced and never shown again, and each refusal with its status on the API and its message
on the form."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import DatabaseError
from django.test import Client
from rest_framework.test import APIClient

from console.accounts.models import Person
from console.audit.models import AuditEvent
from console.core.errors import Conflict, InvalidInput, NotFound, Refused
from integrations.models import NAME_TAKEN, Integration
from integrations.services import (
    integration_create,
    integration_credentials_replace,
    integration_delete,
    integration_update,
)
from tests.integrations.conftest import INTEGRATION_FORM

pytestmark = pytest.mark.django_db

NEW_TOKEN = "tok-new-Zr8Qw3Lp"


@pytest.fixture
def admin_api(admin: Person, api_client_for: Callable[[Person], APIClient]) -> APIClient:
    return api_client_for(admin)


@pytest.fixture
def jira(admin: Person) -> Integration:
    return integration_create(
        actor=admin, fields={"name": "Jira", "base_url": "https://jira.example.com/scim/v2", "bearer_token": "tok-1"}
    )


@pytest.fixture
def audit_store_down(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise DatabaseError("the audit log cannot be written")

    monkeypatch.setattr(AuditEvent, "save", refuse)


def test_a_change_whose_audit_record_fails_is_not_made(
    admin: Person, jira: Integration, audit_store_down: None
) -> None:
    with pytest.raises(DatabaseError):
        integration_create(
            actor=admin, fields={"name": "Slack", "base_url": "https://slack.example.com/scim", "bearer_token": "t"}
        )
    assert not Integration.all_objects.filter(name="Slack").exists()

    with pytest.raises(DatabaseError):
        integration_update(actor=admin, integration=jira, fields={"page_size": 50})
    assert Integration.objects.get(pk=jira.pk).page_size == 100

    with pytest.raises(DatabaseError):
        integration_credentials_replace(actor=admin, integration=jira, credentials={"bearer_token": NEW_TOKEN})
    assert Integration.objects.get(pk=jira.pk).bearer_token == "tok-1"

    with pytest.raises(DatabaseError):
        integration_delete(actor=admin, integration=jira)
    assert Integration.objects.filter(pk=jira.pk).exists()


def test_each_change_is_audited_once_with_what_changed(admin: Person, jira: Integration) -> None:
    integration_update(actor=admin, integration=jira, fields={"page_size": 50, "bearer_token": ""})

    events = AuditEvent.objects.filter(target_id=str(jira.pk)).order_by("id")
    assert list(events.values_list("verb", flat=True)) == ["integration.created", "integration.updated"]
    created, updated = events
    assert created.details["after"]["bearer_token"] == "[redacted]"
    assert (updated.details["before"], updated.details["after"]) == ({"page_size": 100}, {"page_size": 50})
    assert Integration.objects.get(pk=jira.pk).bearer_token == "tok-1"  # a blank secret keeps the stored one


def test_the_creation_is_audited_in_json_a_list_as_a_list(admin: Person) -> None:
    slack = integration_create(
        actor=admin,
        fields={
            "name": "Slack",
            "base_url": "https://slack.example.com/scim/v2",
            "bearer_token": "t",
            "correlation_rules": ["userName", "externalId"],
        },
    )

    after = AuditEvent.objects.get(verb="integration.created", target_id=str(slack.pk)).details["after"]
    assert after["correlation_rules"] == ["userName", "externalId"]  # not the text "['userName', ...]"


def test_replaced_credentials_are_never_shown_again_nor_audited(
    admin: Person, jira: Integration, admin_api: APIClient, admin_client: Client
) -> None:
    before = Integration.objects.get(pk=jira.pk).credentials_changed_at

    integration_credentials_replace(actor=admin, integration=jira, credentials={"bearer_token": NEW_TOKEN})

    stored = Integration.objects.get(pk=jira.pk)
    assert stored.bearer_token == NEW_TOKEN
    assert before is not None
    assert stored.credentials_changed_at is not None
    assert stored.credentials_changed_at > before
    event = AuditEvent.objects.get(verb="integration.credentials_replaced")
    assert event.details == {"replaced": ["bearer_token"]}
    assert NEW_TOKEN not in str(list(AuditEvent.objects.values_list("details", flat=True)))
    shown = admin_api.get(f"/api/v1/integrations/{jira.pk}/")
    assert shown.json()["bearer_token_set"] is True
    assert NEW_TOKEN not in shown.content.decode()
    assert NEW_TOKEN not in admin_client.get(f"/integrations/{jira.pk}/edit/").content.decode()
    # Through an edit, too: the new token replaces the old, in the same words of the audit log.
    admin_api.patch(f"/api/v1/integrations/{jira.pk}/", {"bearer_token": "tok-third"}, format="json")
    assert Integration.objects.get(pk=jira.pk).bearer_token == "tok-third"
    assert AuditEvent.objects.filter(verb="integration.credentials_replaced").count() == 2
    assert "tok-third" not in str(list(AuditEvent.objects.values_list("details", flat=True)))


def test_the_services_raise_the_console_s_errors(admin: Person, jira: Integration) -> None:
    with pytest.raises(InvalidInput) as bad:
        integration_create(actor=admin, fields={"name": "A", "base_url": "ftp://a.example.com", "bearer_token": "t"})
    assert bad.value.field == "base_url"
    with pytest.raises(InvalidInput) as unknown:
        integration_credentials_replace(actor=admin, integration=jira, credentials={"basic_username": "u"})
    assert unknown.value.field == "basic_username"
    with pytest.raises(Conflict) as taken:
        integration_create(
            actor=admin, fields={"name": "Jira", "base_url": "https://b.example.com", "bearer_token": "t"}
        )
    assert (taken.value.field, taken.value.status) == ("name", 409)
    gone = Integration(pk=jira.pk + 1000, name="Gone")
    with pytest.raises(NotFound):
        integration_update(actor=admin, integration=gone, fields={"page_size": 5})
    integration_delete(actor=admin, integration=jira)
    with pytest.raises(Refused, match="was deleted"):
        integration_update(actor=admin, integration=jira, fields={"page_size": 5})
    with pytest.raises(Refused):
        integration_credentials_replace(actor=admin, integration=jira, credentials={"bearer_token": NEW_TOKEN})


def test_each_refusal_answers_its_status_on_every_integrations_endpoint(
    admin: Person, jira: Integration, admin_api: APIClient
) -> None:
    bad = admin_api.post("/api/v1/integrations/", {**INTEGRATION_FORM, "name": "X", "ca_certificate": "x"})
    assert bad.status_code == 400
    assert "PEM" in bad.json()["fields"]["ca_certificate"][0]

    taken = admin_api.post("/api/v1/integrations/", {**INTEGRATION_FORM, "name": "Jira"}, format="json")
    assert taken.status_code == 409
    assert (taken.json()["code"], taken.json()["detail"]) == ("conflict", NAME_TAKEN)
    other = integration_create(
        actor=admin, fields={"name": "Slack", "base_url": "https://slack.example.com/scim", "bearer_token": "t"}
    )
    renamed = admin_api.patch(f"/api/v1/integrations/{other.pk}/", {"name": "Jira"}, format="json")
    assert renamed.status_code == 409
    custom = admin_api.post(
        "/api/v1/providers/custom",
        {
            "name": "Jira",
            "custom_template": "application",
            "provisioning": True,
            "external_lifecycle_management_type": "SCIM",
            "configuration_json": {"scim_url": "https://jira.example.com/scim", "scim_token": "t"},
        },
        format="json",
    )
    assert custom.status_code == 409
    assert custom.json()["detail"] == NAME_TAKEN

    integration_delete(actor=admin, integration=jira)
    edited = admin_api.patch(f"/api/v1/integrations/{jira.pk}/", {"page_size": 5}, format="json")
    assert edited.status_code == 409
    assert edited.json()["code"] == "refused"
    assert admin_api.get(f"/api/v1/integrations/{jira.pk}/").status_code == 404
    assert admin_api.patch("/api/v1/integrations/999999/", {"page_size": 5}, format="json").status_code == 404


def test_the_form_shows_each_refusal_beside_its_field(admin: Person, jira: Integration, admin_client: Client) -> None:
    taken = admin_client.post("/integrations/new/?scratch=1", {**INTEGRATION_FORM, "name": "Jira"})
    assert taken.status_code == 200
    assert taken.context["form"].errors["name"] == ["An integration with this name exists already."]
    assert Integration.objects.filter(name="Jira").count() == 1

    bad = admin_client.post(f"/integrations/{jira.pk}/edit/", {**INTEGRATION_FORM, "ca_certificate": "nope"})
    assert bad.status_code == 200
    assert "This is not a PEM certificate that parses" in bad.context["form"].errors["ca_certificate"][0]

    other = integration_create(
        actor=admin, fields={"name": "Slack", "base_url": "https://slack.example.com/scim", "bearer_token": "t"}
    )
    renamed = admin_client.post(f"/integrations/{other.pk}/edit/", {**INTEGRATION_FORM, "name": "Jira"})
    assert renamed.context["form"].errors["name"] == ["An integration with this name exists already."]
    assert Integration.objects.get(pk=other.pk).name == "Slack"
