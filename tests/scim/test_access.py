"""Who reaches /scim/v2: bearer keys of provisioners or admins, only while provisioning is on; rate limits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.test import Client

from console.accounts.models import Person
from console.accounts.services import api_key_create
from console.core.models import ConsoleSettings
from tests.scim.conftest import ScimClient

ERROR = ["urn:ietf:params:scim:api:messages:2.0:Error"]


def test_no_key_is_401_as_a_scim_error(scim: ScimClient) -> None:
    response = Client().get("/scim/v2/Users")
    assert response.status_code == 401
    assert response.json()["schemas"] == ERROR
    assert response["Content-Type"].startswith("application/scim+json")


def test_a_bad_key_is_401_and_the_error_does_not_echo_it(scim: ScimClient) -> None:
    response = Client(HTTP_AUTHORIZATION="Bearer lc_nope_secretsecret").get("/scim/v2/Users")
    assert response.status_code == 401
    assert "secretsecret" not in response.content.decode()


def test_a_viewer_key_is_403(scim: ScimClient, make_person: Callable[..., Person]) -> None:
    viewer = make_person("vera", roles=["viewer"])
    token = api_key_create(actor=viewer, owner=viewer, name="k").token
    response = Client(HTTP_AUTHORIZATION=f"Bearer {token}").get("/scim/v2/Users")
    assert response.status_code == 403
    assert response.json()["schemas"] == ERROR


def test_an_admin_key_is_accepted(scim: ScimClient, admin: Person) -> None:
    token = api_key_create(actor=admin, owner=admin, name="k").token
    assert Client(HTTP_AUTHORIZATION=f"Bearer {token}").get("/scim/v2/Users").status_code == 200


def test_an_inactive_provisioner_is_401(scim: ScimClient, provisioner: Person) -> None:
    Person.objects.filter(pk=provisioner.pk).update(is_active=False)
    assert scim.get("Users").status_code == 401


def test_provisioning_switched_off_is_403_with_a_clear_detail(scim: ScimClient) -> None:
    ConsoleSettings.objects.filter(pk=1).update(scim_provisioning_enabled=False)
    response = scim.get("Users")
    assert response.status_code == 403
    assert response.json_body["schemas"] == ERROR
    assert "SCIM provisioning is turned off" in response.json_body["detail"]
    assert scim.post("Users", {"userName": "x@example.com"}).status_code == 403
    assert not Person.objects.filter(username="x@example.com").exists()


def _as_posted(form: Any) -> dict[str, Any]:
    """What the settings page posts as it stands: each field's value, a ticked box as "on"."""
    posted: dict[str, Any] = {}
    for field in form:
        value = field.value()
        if value is True:
            posted[field.name] = "on"
        elif value not in (None, False):
            posted[field.name] = value
    return posted


def test_settings_page_switches_provisioning(admin_client: Client, scim: ScimClient) -> None:
    page = admin_client.get("/settings/")
    assert page.context["form"]["scim_provisioning_enabled"].label == "Enable SCIM provisioning"
    assert page.context["form"]["scim_provisioning_enabled"].value() is True
    assert scim.get("Users").status_code == 200

    current = _as_posted(page.context["form"])
    current.pop("scim_provisioning_enabled")  # the box unticked
    off = admin_client.post("/settings/", current)
    assert off.status_code == 302
    assert not ConsoleSettings.load().scim_provisioning_enabled
    refused = scim.get("Users")
    assert refused.status_code == 403
    assert refused.json_body["schemas"] == ERROR
    assert "SCIM provisioning is turned off" in refused.json_body["detail"]
    assert "Settings > Sign-in" in refused.json_body["detail"]

    on = admin_client.post("/settings/", {**current, "scim_provisioning_enabled": "on"})
    assert on.status_code == 302
    assert ConsoleSettings.load().scim_provisioning_enabled
    assert scim.get("Users").status_code == 200


def test_rate_limit_per_key_answers_429_with_retry_after(scim: ScimClient, settings: Any, admin: Person) -> None:
    settings.SCIM_RATE_LIMIT_PER_MINUTE = 3
    statuses = [scim.get("ServiceProviderConfig").status_code for _ in range(3)]
    limited = scim.get("Users")
    assert statuses == [200, 200, 200]
    assert limited.status_code == 429
    assert limited.json_body["schemas"] == ERROR
    assert 1 <= int(limited["Retry-After"]) <= 60
    # Another key has a budget of its own.
    other = ScimClient(api_key_create(actor=admin, owner=admin, name="entra").token)
    assert other.get("Users").status_code == 200


def test_scim_errors_on_unknown_endpoints_and_methods(scim: ScimClient) -> None:
    assert scim.get("Nothing").status_code == 404
    response = scim.post("ServiceProviderConfig", {})
    assert response.status_code == 405
    assert response.json_body["schemas"] == ERROR
    bad = scim.post("Users", "not an object")
    assert bad.status_code == 400
    assert bad.json_body["scimType"] == "invalidSyntax"


def test_schemas_include_enterprise_and_roles(scim: ScimClient) -> None:
    schemas = {s["id"]: s for s in scim.get("Schemas").json_body["Resources"]}
    enterprise = schemas["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]
    names = {a["name"] for a in enterprise["attributes"]}
    assert {"employeeNumber", "costCenter", "organization", "division", "department", "manager"} <= names
    roles = next(a for a in schemas["urn:ietf:params:scim:schemas:core:2.0:User"]["attributes"] if a["name"] == "roles")
    value = next(s for s in roles["subAttributes"] if s["name"] == "value")
    assert value["canonicalValues"] == ["admin", "viewer", "operator", "scim_provisioner"] or set(
        value["canonicalValues"]
    ) == {"admin", "viewer", "operator", "scim_provisioner"}
    types = {t["id"] for t in scim.get("ResourceTypes").json_body["Resources"]}
    assert types == {"User", "Group"}
