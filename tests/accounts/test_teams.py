"""Local teams: admins make them, add and remove members and delete them, in the UI and the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from console.accounts.models import IdentityEvent, Person, Role, Team, TeamMembership
from console.accounts.selectors import roles_effective_for
from console.audit.models import AuditEvent
from console.core.models import ConsoleSettings


@pytest.fixture
def scim_on(db: None) -> None:
    ConsoleSettings.objects.update_or_create(pk=1, defaults={"scim_provisioning_enabled": True})


def test_admin_makes_fills_empties_and_deletes_a_local_team_in_the_ui(
    admin_client: Client, make_person: Callable[..., Person]
) -> None:
    member = make_person("mia", roles=())
    assert 'href="/teams/new/"' in admin_client.get("/teams/").content.decode()
    assert admin_client.get("/teams/new/").status_code == 200
    viewer = Role.objects.get(name="viewer")
    created = admin_client.post("/teams/new/", {"name": "Auditors", "description": "Read only", "roles": [viewer.pk]})
    team = Team.objects.get(name="Auditors")
    assert created["Location"] == f"/teams/{team.pk}/"
    assert team.source == "local"
    assert list(team.roles.values_list("name", flat=True)) == ["viewer"]
    assert AuditEvent.objects.filter(verb="team.created", target_id=str(team.pk)).exists()
    duplicate = admin_client.post("/teams/new/", {"name": "auditors"})
    assert duplicate.status_code == 200
    assert "exists already" in duplicate.content.decode()

    page = admin_client.get(f"/teams/{team.pk}/").content.decode()
    assert 'id="team-member-add"' in page
    assert 'id="team-delete"' in page
    admin_client.post(f"/teams/{team.pk}/members/", {"username": "MIA"})
    assert TeamMembership.objects.filter(team=team, person=member).exists()
    assert list(roles_effective_for(person=member).values_list("name", flat=True)) == ["viewer"]
    assert IdentityEvent.objects.filter(person=member, kind="joined_team", team=team).exists()
    unknown = admin_client.post(f"/teams/{team.pk}/members/", {"username": "nobody"}, follow=True)
    assert "Nobody has the user name" in unknown.content.decode()

    admin_client.post(f"/teams/{team.pk}/members/", {"remove": member.pk})
    assert not TeamMembership.objects.filter(team=team, person=member).exists()
    assert IdentityEvent.objects.filter(person=member, kind="left_team", team=team).exists()
    again = admin_client.post(f"/teams/{team.pk}/members/", {"remove": member.pk}, follow=True).content.decode()
    assert "mia is not in Auditors" in again  # nothing to remove is not reported as a removal
    changes = [e.details for e in AuditEvent.objects.filter(verb="team.members_changed").order_by("id")]
    assert changes == [{"added": ["mia"], "removed": []}, {"added": [], "removed": ["mia"]}]

    admin_client.post(f"/teams/{team.pk}/members/", {"username": "mia"})
    deleted = admin_client.post(f"/teams/{team.pk}/delete/")
    assert deleted["Location"] == "/teams/"
    assert not Team.objects.filter(pk=team.pk).exists()
    assert not roles_effective_for(person=member).exists()
    assert AuditEvent.objects.get(verb="team.deleted").details["before"]["members"] == 1


def test_viewers_cannot_make_or_change_teams(make_person: Callable[..., Person]) -> None:
    team = Team.objects.create(name="Ops")
    viewer = make_person("vic", roles=["viewer"])
    client = Client()
    client.force_login(viewer)
    page = client.get(f"/teams/{team.pk}/").content.decode()
    assert 'id="team-member-add"' not in page
    assert 'href="/teams/new/"' not in client.get("/teams/").content.decode()
    assert client.get("/teams/new/").status_code == 403
    assert client.post("/teams/new/", {"name": "Mine"}).status_code == 403
    assert client.post(f"/teams/{team.pk}/members/", {"username": "vic"}).status_code == 403
    assert client.post(f"/teams/{team.pk}/delete/").status_code == 403
    assert Team.objects.filter(pk=team.pk).exists()
    assert not team.memberships.exists()


def test_scim_teams_are_read_only_in_the_ui_while_provisioning_is_on(
    scim_on: None, admin_client: Client, make_person: Callable[..., Person]
) -> None:
    team = Team.objects.create(name="Pushed", source="scim")
    member = make_person("pat", roles=())
    TeamMembership.objects.create(team=team, person=member)
    page = admin_client.get(f"/teams/{team.pk}/").content.decode()
    assert 'id="scim-managed-note"' in page
    assert 'id="team-member-add"' not in page
    assert 'id="team-delete"' not in page
    assert 'name="remove"' not in page
    added = admin_client.post(f"/teams/{team.pk}/members/", {"username": "root-admin"}, follow=True)
    assert "managed by the identity provider" in added.content.decode()
    admin_client.post(f"/teams/{team.pk}/members/", {"remove": member.pk})
    deleted = admin_client.post(f"/teams/{team.pk}/delete/", follow=True)
    assert "managed by the identity provider" in deleted.content.decode()
    assert list(team.memberships.values_list("person__username", flat=True)) == ["pat"]

    ConsoleSettings.objects.filter(pk=1).update(scim_provisioning_enabled=False)
    admin_client.post(f"/teams/{team.pk}/members/", {"remove": member.pk})
    assert not team.memberships.exists()


def test_teams_api_makes_fills_empties_and_deletes_local_teams(
    admin: Person, api_client_for: Callable[[Person], Any], make_person: Callable[..., Person]
) -> None:
    make_person("mia", roles=())
    api = api_client_for(admin)
    created = api.post("/api/v1/teams/", {"name": "Auditors", "roles": ["viewer"]}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["name"], body["source"], body["roles"], body["member_count"]) == ("Auditors", "local", ["viewer"], 0)
    assert api.post("/api/v1/teams/", {"name": "AUDITORS"}, format="json").status_code == 400
    pk = body["id"]
    added = api.post(f"/api/v1/teams/{pk}/members/add/", {"members": ["MIA"]}, format="json")
    assert added.status_code == 200  # user names compare case-insensitively, as everywhere
    assert added.json()["member_count"] == 1
    assert [m["username"] for m in api.get(f"/api/v1/teams/{pk}/members/").json()["results"]] == ["mia"]
    unknown = api.post(f"/api/v1/teams/{pk}/members/add/", {"members": ["nobody"]}, format="json")
    assert unknown.status_code == 400
    removed = api.post(f"/api/v1/teams/{pk}/members/remove/", {"members": ["mia"]}, format="json")
    assert removed.json()["member_count"] == 0
    assert api.delete(f"/api/v1/teams/{pk}/").status_code == 204
    assert not Team.objects.filter(pk=pk).exists()


def test_teams_api_refuses_viewers_and_scim_team_member_changes(
    scim_on: None, admin: Person, api_client_for: Callable[[Person], Any], make_person: Callable[..., Person]
) -> None:
    team = Team.objects.create(name="Pushed", source="scim")
    viewer = make_person("vic", roles=["viewer"])
    as_viewer = api_client_for(viewer)
    assert as_viewer.post("/api/v1/teams/", {"name": "Mine"}, format="json").status_code == 403
    assert (
        as_viewer.post(f"/api/v1/teams/{team.pk}/members/add/", {"members": ["vic"]}, format="json").status_code == 403
    )
    assert as_viewer.delete(f"/api/v1/teams/{team.pk}/").status_code == 403
    api = api_client_for(admin)
    refused = api.post(f"/api/v1/teams/{team.pk}/members/add/", {"members": ["vic"]}, format="json")
    assert refused.status_code == 409  # a refusal by state
    assert "managed by the identity provider" in str(refused.json())
    assert api.delete(f"/api/v1/teams/{team.pk}/").status_code == 409
    # The mapping to roles stays the console's own, even for pushed teams.
    assert api.patch(f"/api/v1/teams/{team.pk}/", {"roles": ["viewer"]}, format="json").status_code == 200
    assert Team.objects.filter(pk=team.pk).exists()
    assert not team.memberships.exists()


def test_two_teams_made_at_once_with_one_name_give_a_clear_error(
    admin: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db.models import QuerySet

    from console.accounts.services import AccessError, team_create

    team_create(actor=admin, name="Auditors")
    # The other request checked before this one's team existed: only the unique index sees the clash.
    monkeypatch.setattr(QuerySet, "exists", lambda self: False)
    with pytest.raises(AccessError, match="exists already"):
        team_create(actor=admin, name="AUDITORS")
    assert Team.objects.filter(name__iexact="auditors").count() == 1
