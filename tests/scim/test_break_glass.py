"""No SCIM group change, team change or role mapping may leave the console without an active local admin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from console.accounts.models import Person, Role, Team, TeamMembership
from console.accounts.permissions import Perm
from console.accounts.services import BreakGlassError, team_members_remove, team_set_roles
from console.core.models import ConsoleSettings
from tests.scim.conftest import ScimClient, patch_op


@pytest.fixture
def admins_team(scim: ScimClient, admin: Person) -> Team:
    """The only local admin holds admin only through a team the identity provider pushed."""
    response = scim.post("Groups", {"displayName": "Admins", "members": [{"value": str(admin.pk)}]})
    assert response.status_code == 201, response.content
    team = Team.objects.get(scim_id=response.json_body["id"])
    team_set_roles(actor=admin, team=team, roles=[Role.objects.get(name="admin")])
    admin.roles.clear()
    return team


def still_admin(admin: Person, team: Team) -> bool:
    return TeamMembership.objects.filter(team=team, person=admin).exists() and Person.objects.get(
        pk=admin.pk
    ).has_console_permission(Perm.MANAGE_PEOPLE)


OPERATIONS: dict[str, Callable[[int], dict[str, Any]]] = {
    "value-filter": lambda pk: {"op": "remove", "path": f'members[value eq "{pk}"]'},
    "value-list": lambda pk: {"op": "Remove", "path": "members", "value": [{"value": str(pk)}]},
    "remove-all": lambda pk: {"op": "remove", "path": "members"},
    "replace-empty": lambda pk: {"op": "replace", "path": "members", "value": []},
    "replace-without-path": lambda pk: {"op": "replace", "value": {"members": []}},
}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_scim_group_patch_cannot_remove_the_last_local_admin(
    scim: ScimClient, admin: Person, admins_team: Team, operation: str
) -> None:
    response = scim.patch(f"Groups/{admins_team.pk}", patch_op(OPERATIONS[operation](admin.pk)))
    assert response.status_code == 409
    assert response.json_body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert "last active local admin" in response.json_body["detail"]
    assert still_admin(admin, admins_team)


def test_scim_group_put_and_delete_cannot_remove_the_last_local_admin(
    scim: ScimClient, admin: Person, admins_team: Team
) -> None:
    replaced = scim.put(f"Groups/{admins_team.pk}", {"displayName": "Admins", "members": []})
    assert replaced.status_code == 409
    assert "last active local admin" in replaced.json_body["detail"]
    deleted = scim.delete(f"Groups/{admins_team.pk}")
    assert deleted.status_code == 409
    assert "last active local admin" in deleted.json_body["detail"]
    assert Team.objects.filter(pk=admins_team.pk).exists()
    assert still_admin(admin, admins_team)


def test_with_another_local_admin_the_same_removal_goes_through(
    scim: ScimClient, admin: Person, admins_team: Team, make_person: Callable[..., Person]
) -> None:
    make_person("second-admin", roles=["admin"])
    response = scim.patch(
        f"Groups/{admins_team.pk}", patch_op({"op": "remove", "path": f'members[value eq "{admin.pk}"]'})
    )
    assert response.status_code == 204
    assert not TeamMembership.objects.filter(team=admins_team, person=admin).exists()


def test_an_inactive_or_scim_admin_does_not_count_as_break_glass(
    scim: ScimClient, admin: Person, admins_team: Team, make_person: Callable[..., Person]
) -> None:
    make_person("dormant-admin", roles=["admin"], active=False)
    make_person("pushed-admin", roles=["admin"], source="scim")
    with pytest.raises(BreakGlassError):
        team_members_remove(team=admins_team, person_ids=[admin.pk])


def test_team_member_removal_and_deletion_in_the_ui_and_api_keep_the_last_local_admin(
    admin: Person, admin_client: Client, api_client_for: Callable[[Person], Any]
) -> None:
    ConsoleSettings.objects.update_or_create(pk=1, defaults={"scim_provisioning_enabled": False})
    team = Team.objects.create(name="Local admins")
    team.roles.set([Role.objects.get(name="admin")])
    TeamMembership.objects.create(team=team, person=admin)
    admin.roles.clear()

    removed = admin_client.post(f"/teams/{team.pk}/members/", {"remove": admin.pk}, follow=True)
    assert "last active local admin" in removed.content.decode()
    deleted = admin_client.post(f"/teams/{team.pk}/delete/", follow=True)
    assert "last active local admin" in deleted.content.decode()
    api = api_client_for(admin)
    refused = api.post(f"/api/v1/teams/{team.pk}/members/remove/", {"members": ["root-admin"]}, format="json")
    assert refused.status_code == 409  # a refusal by state
    assert "last active local admin" in str(refused.json())
    assert api.delete(f"/api/v1/teams/{team.pk}/").status_code == 409
    unmapped = api.patch(f"/api/v1/teams/{team.pk}/", {"roles": []}, format="json")
    assert unmapped.status_code == 409
    assert "last active local admin" in str(unmapped.json())
    assert still_admin(admin, team)
