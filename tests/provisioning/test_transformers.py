"""Attribute transformers: core and extension attributes, templates, the preview, and the
payload a sync really sends to the server."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from rest_framework.test import APIClient

from console.accounts.models import Person
from console.audit.models import AuditEvent
from integrations.models import Integration, TargetUser
from provisioning.models import AttributeTransformer, ScimCall
from provisioning.services import action_request
from provisioning.transformers import TransformerError, transformer_add
from tests.provisioning.conftest import run_action, server_user
from tests.scim_peer import ENTERPRISE, Peer

pytestmark = pytest.mark.django_db

DEPARTMENT = "urn_ietf_params_scim_schemas_extension_enterprise_2_0_user_department"


@pytest.fixture
def mapped(app: Integration, approver: Person, extract: Callable[[], None], peer: Peer) -> Integration:
    peer.user("someone")  # so the extension index is built from /Schemas
    app.discover_extensions = True
    app.save()
    extract()
    rows = [
        ("user_name", "template", "{given_name|lower}.{family_name|lower}"),
        ("emails", "identity_attribute", "email"),
        ("given_name", "identity_attribute", "given_name"),
        ("display_name", "template", "{given_name} {family_name}"),
        ("user_type", "static_value", "Employee"),
        (DEPARTMENT, "identity_attribute", "department"),
    ]
    for name, source, value in rows:
        transformer_add(actor=approver, integration=app, attribute_name=name, source=source, value=value)
    return app


def test_a_sync_sends_what_the_transformers_say(
    peer: Peer, mapped: Integration, requester: Person, make_person: Callable[..., Person]
) -> None:
    jane = make_person("jdoe", given_name="Jane", family_name="Doe", email="jane@example.com", department="Research")
    done = run_action(action_request(actor=requester, integration=mapped, action_type="SYNC_IDENTITIES", person=jane))

    assert done.state == "succeeded", done.last_error
    created = server_user(peer, "jane.doe")
    assert created is not None
    assert created["displayName"] == "Jane Doe"
    assert created["userType"] == "Employee"
    assert created["emails"][0]["value"] == "jane@example.com"
    assert created[ENTERPRISE]["department"] == "Research"
    post = ScimCall.objects.get(action=done, method="POST")
    assert ENTERPRISE in post.request_body  # the extension's schema is declared
    # The console's account of it keeps the department beside the resource (the Users tab's column).
    assert TargetUser.objects.get(integration=mapped, user_name="jane.doe").department == "Research"

    jane.department = "Sales"
    jane.save()
    update = run_action(action_request(actor=requester, integration=mapped, action_type="SYNC_IDENTITIES", person=jane))
    patch = ScimCall.objects.get(action=update, method="PATCH")
    assert f'"path": "{ENTERPRISE}:department"' in patch.request_body
    assert "displayName" not in patch.request_body  # unchanged, not sent
    assert server_user(peer, "jane.doe")[ENTERPRISE]["department"] == "Sales"  # type: ignore[index]
    assert TargetUser.objects.get(integration=mapped, user_name="jane.doe").department == "Sales"


def test_bad_rows_are_refused_with_the_reason(mapped: Integration, approver: Person) -> None:
    with pytest.raises(TransformerError, match="neither a core attribute nor an extension attribute"):
        transformer_add(
            actor=approver, integration=mapped, attribute_name="shoe_size", source="static_value", value="9"
        )
    with pytest.raises(TransformerError, match="not an identity attribute"):
        transformer_add(
            actor=approver, integration=mapped, attribute_name="title", source="identity_attribute", value="password"
        )
    with pytest.raises(TransformerError, match=r"\{secret\} in the template"):
        transformer_add(actor=approver, integration=mapped, attribute_name="title", source="template", value="{secret}")
    with pytest.raises(TransformerError, match="Write placeholders"):
        transformer_add(
            actor=approver,
            integration=mapped,
            attribute_name="title",
            source="template",
            value="{given_name.__class__}",
        )


def test_one_row_changes_its_attribute_and_keeps_the_default_mapping(
    app: Integration, approver: Person, requester: Person, make_person: Callable[..., Person]
) -> None:
    transformer_add(actor=approver, integration=app, attribute_name="title", source="static_value", value="Staff")
    person = make_person("pat", given_name="Pat", family_name="Lee", email="pat@example.com")
    action = action_request(actor=requester, integration=app, action_type="SYNC_IDENTITIES", person=person)
    sent = action.parameters["user"]
    assert sent["userName"] == "pat"  # the default mapping stands
    assert sent["emails"][0]["value"] == "pat@example.com"
    assert sent["name"]["givenName"] == "Pat"
    assert sent["title"] == "Staff"  # and the row changed its attribute
    # The page shows the whole payload a sync now sends, for the admin looking at it.
    page = Client()
    page.force_login(approver)
    detail = page.get(f"/integrations/{app.pk}/provisioning/").content.decode()
    assert "What a sync sends now, for you (approver)" in detail
    assert '"title": "Staff"' in detail


def test_a_user_name_row_that_leaves_someone_without_one_is_refused_when_saved(
    app: Integration, approver: Person, make_person: Callable[..., Person]
) -> None:
    make_person("numbered", employee_number="E-1")
    make_person("unnumbered")
    with pytest.raises(TransformerError, match=r"empty for \d+ active .*unnumbered"):
        transformer_add(
            actor=approver,
            integration=app,
            attribute_name="user_name",
            source="identity_attribute",
            value="employee_number",
        )
    assert not AttributeTransformer.objects.filter(integration=app).exists()


def test_the_preview_shows_the_exact_payload(
    mapped: Integration,
    approver: Person,
    make_person: Callable[..., Person],
    api_client_for: Callable[[Person], APIClient],
) -> None:
    make_person("jdoe", given_name="Jane", family_name="Doe", email="jane@example.com", department="Research")
    page = Client()
    page.force_login(approver)
    detail = page.get(f"/integrations/{mapped.pk}/provisioning/").content.decode()
    assert "{given_name|lower}.{family_name|lower}" in detail
    preview = page.get(f"/actions/integrations/{mapped.pk}/transformers/preview/?person=jdoe").content.decode()
    assert '"userName": "jane.doe"' in preview  # indented JSON
    payload = api_client_for(approver).get(f"/api/v1/transformers/preview/?integration={mapped.pk}&person=jdoe").json()
    assert payload["userName"] == "jane.doe"
    assert payload[ENTERPRISE] == {"department": "Research"}
    assert payload["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE]
    missing = page.get(f"/actions/integrations/{mapped.pk}/transformers/preview/?person=nobody").content.decode()
    assert "No person named" in missing


def test_rows_are_reordered_from_the_page_and_the_api_and_the_later_row_wins(
    app: Integration,
    approver: Person,
    requester: Person,
    make_person: Callable[..., Person],
    api_client_for: Callable[[Person], APIClient],
) -> None:
    make_person("jane.doe", given_name="Jane")
    for name, value in (("user_name", "username"), ("user_type", "Employee"), ("user_type", "Contractor")):
        source = "identity_attribute" if name == "user_name" else "static_value"
        transformer_add(actor=approver, integration=app, attribute_name=name, source=source, value=value)
    api = api_client_for(approver)

    def order() -> list[str]:
        rows = api.get(f"/api/v1/transformers/?integration={app.pk}").json()["results"]
        assert [row["position"] for row in rows] == list(range(1, len(rows) + 1))
        return [row["value"] for row in rows]

    def user_type() -> str:
        preview = api.get(f"/api/v1/transformers/preview/?integration={app.pk}&person=jane.doe").json()
        return str(preview["userType"])

    assert order() == ["username", "Employee", "Contractor"]
    assert user_type() == "Contractor"  # the later row wins

    page = Client()
    page.force_login(approver)
    panel = page.get(f"/integrations/{app.pk}/provisioning/").content.decode()
    assert 'aria-label="Move the user_type transformer up"' in panel
    contractor = AttributeTransformer.objects.get(integration=app, value="Contractor")
    moved = page.post(f"/actions/integrations/{app.pk}/transformers/{contractor.pk}/move/", {"direction": "up"})
    assert moved["Location"].endswith("#transformers")
    assert order() == ["username", "Contractor", "Employee"]
    assert user_type() == "Employee"
    page.post(f"/actions/integrations/{app.pk}/transformers/{contractor.pk}/move/", {"direction": "down"})
    assert order() == ["username", "Employee", "Contractor"]
    sideways = page.post(
        f"/actions/integrations/{app.pk}/transformers/{contractor.pk}/move/", {"direction": "sideways"}, follow=True
    )
    assert "Choose up or down." in sideways.content.decode()
    assert order() == ["username", "Employee", "Contractor"]

    first = api.patch(f"/api/v1/transformers/{contractor.pk}/", {"position": 1}, format="json")
    assert first.status_code == 200, first.json()
    assert (first.json()["position"], first.json()["value"]) == (1, "Contractor")
    assert order() == ["Contractor", "username", "Employee"]
    assert api.patch(f"/api/v1/transformers/{contractor.pk}/", {"position": 99}, format="json").json()["position"] == 3
    assert order() == ["username", "Employee", "Contractor"]
    assert api.patch(f"/api/v1/transformers/{contractor.pk}/", {"position": 0}, format="json").status_code == 400
    assert (
        api_client_for(requester)
        .patch(f"/api/v1/transformers/{contractor.pk}/", {"position": 1}, format="json")
        .status_code
        == 403
    )
    created = api.post(
        "/api/v1/transformers/",
        {"integration": app.pk, "attribute_name": "title", "source": "static_value", "value": "Staff", "position": 1},
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert created.json()["position"] == 1
    assert order() == ["Staff", "username", "Employee", "Contractor"]
    moves = AuditEvent.objects.filter(verb="transformer.moved").order_by("id")
    assert [(m.details["before"]["position"], m.details["after"]["position"]) for m in moves] == [
        (3, 2),
        (2, 3),
        (3, 1),
        (1, 3),
        (4, 1),
    ]
