"""Entra ID's user PATCH bodies as its SCIM documentation shows them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from console.accounts.models import Person
from tests.scim.conftest import ScimClient

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def test_entra_replaces_work_email_and_family_name(scim: ScimClient, make_user: Callable[..., Any]) -> None:
    user = make_user("Test_User_dfeef4c5@testuser.com", emails=[{"value": "old@testuser.com", "type": "work"}])
    response = scim.patch(
        f"Users/{user['id']}",
        {
            "schemas": [PATCH],
            "Operations": [
                {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "updatedEmail@microsoft.com"},
                {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
            ],
        },
    )
    assert response.status_code == 200
    person = Person.objects.get(scim_id=user["id"])
    assert person.email == "updatedEmail@microsoft.com"
    assert person.family_name == "updatedFamilyName"
    found = scim.get('Users?filter=emails[type eq "work" and value eq "updatedemail@microsoft.com"]')
    assert [r["id"] for r in found.json_body["Resources"]] == [user["id"]]


def test_entra_disables_with_a_string_and_re_enables(scim: ScimClient, make_user: Callable[..., Any]) -> None:
    user = make_user()
    off = scim.patch(
        f"Users/{user['id']}",
        {"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]},
    )
    assert off.json_body["active"] is False
    on = scim.patch(
        f"Users/{user['id']}",
        {"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "active", "value": "True"}]},
    )
    assert on.json_body["active"] is True


def test_entra_replace_without_path_and_enterprise_paths(scim: ScimClient, make_user: Callable[..., Any]) -> None:
    manager = make_user("boss@example.com")
    user = make_user()
    response = scim.patch(
        f"Users/{user['id']}",
        {
            "schemas": [PATCH],
            "Operations": [
                {"op": "Add", "path": "nickName", "value": "Babs"},
                {
                    "op": "Replace",
                    "value": {
                        "displayName": "Ada Lovelace",
                        "name.givenName": "Augusta",
                        "active": "True",
                        f"{ENTERPRISE}:department": "Analytical Engines",
                    },
                },
                {"op": "Add", "path": f"{ENTERPRISE}:employeeNumber", "value": "1815"},
                {"op": "Replace", "path": f"{ENTERPRISE}:manager", "value": manager["id"]},
            ],
        },
    )
    assert response.status_code == 200, response.content
    body = response.json_body
    assert body["nickName"] == "Babs"
    assert body["displayName"] == "Ada Lovelace"
    assert body["name"]["givenName"] == "Augusta"
    assert body[ENTERPRISE]["department"] == "Analytical Engines"
    assert body[ENTERPRISE]["employeeNumber"] == "1815"
    assert body[ENTERPRISE]["manager"]["value"] == manager["id"]
    removed = scim.patch(
        f"Users/{user['id']}",
        {"schemas": [PATCH], "Operations": [{"op": "Remove", "path": f"{ENTERPRISE}:manager"}]},
    )
    assert "manager" not in removed.json_body.get(ENTERPRISE, {})


def test_roles_attribute_sets_direct_roles(scim: ScimClient, make_user: Callable[..., Any]) -> None:
    user = make_user()
    response = scim.patch(
        f"Users/{user['id']}",
        {"schemas": [PATCH], "Operations": [{"op": "Add", "path": "roles", "value": [{"value": "operator"}]}]},
    )
    assert [r["value"] for r in response.json_body["roles"]] == ["operator"]
    assert list(Person.objects.get(scim_id=user["id"]).roles.values_list("name", flat=True)) == ["operator"]
