"""Teams in the UI and API, the person page's roles and events, and SCIM-managed records read-only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.test import Client

from console.accounts.models import Person, Role, Team, TeamMembership
from console.audit.models import AuditEvent
from console.core.models import ConsoleSettings
from tests.scim.conftest import ScimClient, patch_op


def pushed_team(scim: ScimClient, name: str, members: list[str]) -> Team:
    response = scim.post("Groups", {"displayName": name, "members": [{"value": m} for m in members]})
    return Team.objects.get(scim_id=response.json_body["id"])


def test_team_pages_list_members_page_by_page_and_admins_map_roles(
    scim: ScimClient, admin_client: Client, make_person: Callable[..., Person], django_assert_max_num_queries: Any
) -> None:
    people = [make_person(f"m{i:02}", roles=(), password=None) for i in range(30)]
    team = pushed_team(scim, "Support", [str(p.pk) for p in people])
    listing = admin_client.get("/teams/")
    assert "Support" in listing.content.decode()
    with django_assert_max_num_queries(15):
        first = admin_client.get(f"/teams/{team.pk}/")
    body = first.content.decode()
    assert "m00" in body
    assert "m29" not in body  # 25 per page
    next_link = first.context["next_query"]
    second = admin_client.get(
        f"/teams/{team.pk}/{next_link}", headers={"HX-Request": "true", "HX-Target": "table-region"}
    )
    assert "m29" in second.content.decode()
    assert "<h1>" not in second.content.decode()  # only the #table partial

    viewer = Role.objects.get(name="viewer")
    operator = Role.objects.get(name="operator")
    saved = admin_client.post(f"/teams/{team.pk}/roles/", {"roles": [viewer.pk, operator.pk]})
    assert saved.status_code == 302
    assert set(team.roles.values_list("name", flat=True)) == {"viewer", "operator"}
    event = AuditEvent.objects.get(verb="team.roles_changed")
    assert event.details["after"] == {"roles": ["operator", "viewer"]}

    page = admin_client.get(f"/people/{people[0].pk}/").content.decode()
    assert "through team Support" in page
    assert "Joined a team" in page


def test_people_page_links_to_teams(admin_client: Client) -> None:
    assert 'href="/teams/"' in admin_client.get("/people/").content.decode()


def test_viewers_cannot_change_team_roles(scim: ScimClient, make_person: Callable[..., Person]) -> None:
    team = pushed_team(scim, "Ops", [])
    viewer = make_person("vic", roles=["viewer"])
    client = Client()
    client.force_login(viewer)
    assert client.get(f"/teams/{team.pk}/").status_code == 200
    assert client.post(f"/teams/{team.pk}/roles/", {"roles": []}).status_code == 403


def test_teams_api_lists_members_and_sets_roles(
    scim: ScimClient, admin: Person, api_client_for: Callable[[Person], Any]
) -> None:
    member = Person.objects.create(username="api-member", source="scim")
    team = pushed_team(scim, "Finance", [str(member.pk)])
    api = api_client_for(admin)
    listed = api.get("/api/v1/teams/").json()
    assert [t["name"] for t in listed["results"]] == ["Finance"]
    members = api.get(f"/api/v1/teams/{team.pk}/members/").json()
    assert [m["username"] for m in members["results"]] == ["api-member"]
    changed = api.patch(f"/api/v1/teams/{team.pk}/", {"roles": ["viewer"]}, format="json")
    assert changed.status_code == 200
    assert changed.json()["roles"] == ["viewer"]
    assert AuditEvent.objects.filter(verb="team.roles_changed", actor=admin).exists()


def test_team_mapping_cannot_take_admin_from_the_last_local_admin(
    scim: ScimClient, admin: Person, admin_client: Client
) -> None:
    team = Team.objects.create(name="Admins")
    team.roles.set([Role.objects.get(name="admin")])
    TeamMembership.objects.create(team=team, person=admin)
    admin.roles.clear()
    response = admin_client.post(f"/teams/{team.pk}/roles/", {"roles": []}, follow=True)
    assert "last active local admin" in response.content.decode()
    assert team.roles.filter(name="admin").exists()


def test_ui_cannot_deactivate_the_last_local_admin(scim: ScimClient, admin: Person, admin_client: Client) -> None:
    response = admin_client.post(f"/people/{admin.pk}/active/", {"active": "false"}, follow=True)
    assert "last active local admin" in response.content.decode()
    admin.refresh_from_db()
    assert admin.is_active


def test_scim_managed_people_are_read_only_while_provisioning_is_on(
    scim: ScimClient,
    make_user: Callable[..., Any],
    admin_client: Client,
    admin: Person,
    make_person: Callable[..., Person],
    api_client_for: Callable[[Person], Any],
) -> None:
    user = make_user()
    pk = Person.objects.get(scim_id=user["id"]).pk  # the console's pages go by the console's key
    page = admin_client.get(f"/people/{pk}/").content.decode()
    assert "Managed by the identity provider over SCIM" in page
    assert f'href="/people/{pk}/edit/"' not in page
    edit = admin_client.get(f"/people/{pk}/edit/", follow=True)
    assert "managed by the identity provider" in edit.content.decode()
    deactivate = admin_client.post(f"/people/{pk}/active/", {"active": "false"}, follow=True)
    assert "managed by the identity provider" in deactivate.content.decode()
    roles = admin_client.post(f"/people/{pk}/roles/", {"roles": [Role.objects.get(name="admin").pk]}, follow=True)
    assert "managed by the identity provider" in roles.content.decode()
    api = api_client_for(admin)
    refused = api.patch(f"/api/v1/people/{pk}/", {"title": "Boss"}, format="json")
    assert refused.status_code == 409  # a refusal by state
    assert "managed by the identity provider" in str(refused.json())
    person = Person.objects.get(pk=pk)
    assert person.is_active
    assert person.title == ""
    assert not person.roles.exists()

    local = make_person("local-lee", roles=["viewer"])
    assert admin_client.post(f"/people/{local.pk}/active/", {"active": "false"}).status_code == 302
    local.refresh_from_db()
    assert not local.is_active

    ConsoleSettings.objects.filter(pk=1).update(scim_provisioning_enabled=False)
    assert admin_client.post(f"/people/{pk}/active/", {"active": "false"}).status_code == 302
    assert not Person.objects.get(pk=pk).is_active


def test_identity_events_are_written_in_the_same_transaction(scim: ScimClient, make_user: Callable[..., Any]) -> None:
    """A refused change leaves no event behind: the event and the change commit together."""
    user = make_user()
    before = Person.objects.get(scim_id=user["id"]).identity_events.count()
    bad = scim.patch(
        f"Users/{user['id']}",
        patch_op(
            {"op": "replace", "path": "title", "value": "CTO"},
            {"op": "add", "path": "roles", "value": [{"value": "no-such-role"}]},
        ),
    )
    assert bad.status_code == 400
    person = Person.objects.get(scim_id=user["id"])
    assert person.title == ""
    assert person.identity_events.count() == before
