"""SCIM changes only the people it provisioned: local accounts are never taken over, and no passwords travel."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from console.accounts.models import Person
from console.audit.models import AuditEvent
from tests.conftest import PASSWORD
from tests.scim.conftest import ScimClient, patch_op

USER = "urn:ietf:params:scim:schemas:core:2.0:User"


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "replace", "path": "password", "value": "taken-over-password-1"},
        {"op": "replace", "path": "userName", "value": "someone-else"},
        {"op": "add", "path": "roles", "value": [{"value": "viewer"}]},
        {"op": "replace", "path": "active", "value": False},
        {"op": "replace", "value": {"title": "Owned"}},
    ],
)
def test_scim_cannot_patch_a_local_account(scim: ScimClient, admin: Person, operation: dict[str, Any]) -> None:
    before = Person.objects.get(pk=admin.pk)
    response = scim.patch(f"Users/{admin.pk}", patch_op(operation))
    assert response.status_code == 403
    assert response.json_body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert "local console account" in response.json_body["detail"]
    after = Person.objects.get(pk=admin.pk)
    assert (after.username, after.password, after.is_active, after.title) == (
        before.username,
        before.password,
        before.is_active,
        before.title,
    )
    assert sorted(after.roles.values_list("name", flat=True)) == ["admin"]
    assert Client().login(username="root-admin", password=PASSWORD)
    assert not AuditEvent.objects.filter(verb__startswith="scim.user", target_id=str(admin.pk)).exists()


def test_scim_cannot_replace_or_delete_a_local_account(scim: ScimClient, admin: Person) -> None:
    replaced = scim.put(f"Users/{admin.pk}", {"schemas": [USER], "userName": "root-admin", "active": False})
    assert replaced.status_code == 403
    assert "local console account" in replaced.json_body["detail"]
    deleted = scim.delete(f"Users/{admin.pk}")
    assert deleted.status_code == 403
    admin.refresh_from_db()
    assert admin.is_active
    assert admin.removed_at is None


def test_post_with_a_local_user_name_is_409_and_does_not_take_the_account_over(scim: ScimClient, admin: Person) -> None:
    response = scim.post(
        "Users", {"schemas": [USER], "userName": "ROOT-ADMIN", "active": True, "roles": [{"value": "viewer"}]}
    )
    assert response.status_code == 409
    assert response.json_body["scimType"] == "uniqueness"
    assert "local console account" in response.json_body["detail"]
    assert Person.objects.filter(username__iexact="root-admin").count() == 1
    admin.refresh_from_db()
    assert admin.source == "local"
    assert sorted(admin.roles.values_list("name", flat=True)) == ["admin"]


def test_scim_does_not_rename_a_scim_person_onto_a_local_user_name(
    scim: ScimClient, admin: Person, make_user: Callable[..., Any]
) -> None:
    user = make_user()
    response = scim.patch(f"Users/{user['id']}", patch_op({"op": "replace", "path": "userName", "value": "root-admin"}))
    assert response.status_code == 409
    assert "local console account" in response.json_body["detail"]


def test_passwords_are_never_accepted_over_scim(scim: ScimClient, make_user: Callable[..., Any]) -> None:
    created = scim.post("Users", {"schemas": [USER], "userName": "pw@example.com", "password": "Secret-123456"})
    assert created.status_code == 400
    assert "Passwords are not accepted over SCIM" in created.json_body["detail"]
    assert not Person.objects.filter(username="pw@example.com").exists()

    user = make_user()
    patched = scim.patch(
        f"Users/{user['id']}", patch_op({"op": "replace", "path": "password", "value": "Secret-123456"})
    )
    assert patched.status_code == 400
    replaced = scim.put(f"Users/{user['id']}", {"userName": user["userName"], "password": "Secret-123456"})
    assert replaced.status_code == 400
    assert not Person.objects.get(scim_id=user["id"]).has_usable_password()

    user_schema = scim.get(f"Schemas/{USER}").json_body
    assert "password" not in {a["name"] for a in user_schema["attributes"]}
    assert scim.get("ServiceProviderConfig").json_body["changePassword"] == {"supported": False}
