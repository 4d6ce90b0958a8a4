"""People: the list, detail, changes by admins, roles and the break-glass rule."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from rest_framework.test import APIClient

from console.accounts.models import Person, Role, Team
from console.accounts.selectors import person_permissions
from console.accounts.services import BreakGlassError, person_set_active, person_set_roles
from console.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_the_people_list_searches_and_htmx_gets_only_the_table(
    admin_client: Client, make_person: Callable[..., Person]
) -> None:
    make_person("alice.smith", email="alice@example.com", department="Finance")
    make_person("bob.jones", email="bob@example.com")
    page = admin_client.get("/people/?q=alice").content.decode()
    assert "alice.smith" in page
    assert "bob.jones" not in page
    assert "<html" in page
    fragment = admin_client.get(
        "/people/?q=example.com&active=true", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="table-region"
    ).content.decode()
    assert "<html" not in fragment
    assert "alice.smith" in fragment
    assert "bob.jones" in fragment


def test_the_people_list_filters_by_role_including_roles_from_teams(
    admin_client: Client, make_person: Callable[..., Person]
) -> None:
    make_person("direct-op", roles=["operator"])
    via_team = make_person("team-op", roles=[])
    make_person("just-viewer", roles=["viewer"])
    team = Team.objects.create(name="Ops")
    team.members.add(via_team)
    team.roles.add(Role.objects.get(name="operator"))
    page = admin_client.get("/people/?role=operator").content.decode()
    assert "direct-op" in page
    assert "team-op" in page
    assert "just-viewer" not in page


def test_the_people_list_costs_the_same_queries_for_many_people(
    admin_client: Client, make_person: Callable[..., Person], django_assert_max_num_queries: Callable
) -> None:
    for n in range(40):
        make_person(f"person{n:02}")
    with django_assert_max_num_queries(9):  # the page, and its total
        response = admin_client.get("/people/")
    assert response.content.decode().count("/people/") >= 25


def test_an_admin_creates_a_person_with_roles_and_it_is_audited(admin_client: Client) -> None:
    response = admin_client.post(
        "/people/new/",
        {
            "username": "new.hire",
            "given_name": "New",
            "family_name": "Hire",
            "email": "new@example.com",
            "password": "a-fine-long-passphrase-9",
            "roles": [Role.objects.get(name="viewer").pk],
        },
    )
    assert response.status_code == 302
    person = Person.objects.get(username="new.hire")
    assert person.check_password("a-fine-long-passphrase-9")
    assert [r.name for r in person.roles.all()] == ["viewer"]
    event = AuditEvent.objects.get(verb="person.created")
    assert event.details["after"]["roles"] == ["viewer"]
    assert "passphrase" not in str(event.details)


def test_a_duplicate_user_name_differing_only_in_case_is_refused_with_a_field_error(
    admin_client: Client, make_person: Callable[..., Person]
) -> None:
    make_person("Alice")
    response = admin_client.post("/people/new/", {"username": "alice"})
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert Person.objects.filter(username__iexact="alice").count() == 1


def test_editing_records_before_and_after_of_changed_fields_only(
    admin_client: Client, make_person: Callable[..., Person]
) -> None:
    alice = make_person("alice", department="Sales", title="Rep")
    response = admin_client.post(
        f"/people/{alice.pk}/edit/", {"username": "alice", "department": "Finance", "title": "Rep"}
    )
    assert response.status_code == 302
    event = AuditEvent.objects.get(verb="person.updated")
    assert event.details == {"before": {"department": "Sales"}, "after": {"department": "Finance"}}


def test_role_changes_are_audited_and_take_effect(admin_client: Client, make_person: Callable[..., Person]) -> None:
    alice = make_person("alice", roles=["viewer"])
    operator = Role.objects.get(name="operator")
    assert admin_client.post(f"/people/{alice.pk}/roles/", {"roles": [operator.pk]}).status_code == 302
    fresh = Person.objects.get(pk=alice.pk)
    assert "integrations.extract" in person_permissions(person=fresh)
    event = AuditEvent.objects.get(verb="person.roles_changed")
    assert event.details == {"before": {"roles": ["viewer"]}, "after": {"roles": ["operator"]}}


def test_the_person_page_explains_each_effective_role(admin_client: Client, make_person: Callable[..., Person]) -> None:
    alice = make_person("alice", roles=["viewer"])
    for name in ("Finance", "Auditors"):
        team = Team.objects.create(name=name)
        team.members.add(alice)
        team.roles.add(Role.objects.get(name="viewer"))
    page = admin_client.get(f"/people/{alice.pk}/").content.decode()
    assert "assigned directly, through team Auditors, through team Finance" in page


def test_a_role_lasts_until_the_last_team_granting_it_is_gone(make_person: Callable[..., Person]) -> None:
    alice = make_person("alice", roles=[])
    admin_role = Role.objects.get(name="admin")
    first, second = Team.objects.create(name="A"), Team.objects.create(name="B")
    for team in (first, second):
        team.members.add(alice)
        team.roles.add(admin_role)
    first.members.remove(alice)
    assert Person.objects.get(pk=alice.pk).has_console_permission("actions.approve")
    second.members.remove(alice)
    assert not Person.objects.get(pk=alice.pk).has_console_permission("actions.approve")


def test_the_last_active_local_admin_can_be_neither_deactivated_nor_demoted(admin: Person) -> None:
    with pytest.raises(BreakGlassError):
        person_set_active(actor=admin, person=admin, active=False)
    with pytest.raises(BreakGlassError):
        person_set_roles(actor=admin, person=admin, roles=[Role.objects.get(name="viewer")])
    assert Person.objects.get(pk=admin.pk).is_active


def test_with_a_second_admin_the_first_can_be_deactivated(admin: Person, make_person: Callable[..., Person]) -> None:
    make_person("second-admin", roles=["admin"])
    person_set_active(actor=admin, person=admin, active=False)
    assert not Person.objects.get(pk=admin.pk).is_active


def test_the_ui_says_why_the_last_admin_cannot_be_deactivated(admin: Person, admin_client: Client) -> None:
    response = admin_client.post(f"/people/{admin.pk}/active/", {"active": "false"}, follow=True)
    assert "last active local admin" in response.content.decode()


def test_the_people_api_creates_updates_and_deactivates(admin: Person, api_client_for: Callable) -> None:
    client: APIClient = api_client_for(admin)
    created = client.post(
        "/api/v1/people/", {"username": "api.person", "email": "api@example.com", "roles": ["viewer"]}, format="json"
    )
    assert created.status_code == 201, created.json()
    pk = created.json()["id"]
    assert created.json()["effective_roles"] == [{"role": "viewer", "direct": True, "teams": []}]
    patched = client.patch(f"/api/v1/people/{pk}/", {"department": "IT", "active": False}, format="json")
    assert patched.status_code == 200, patched.json()
    assert patched.json()["active"] is False
    assert patched.json()["department"] == "IT"
    verbs = set(AuditEvent.objects.filter(target_id=str(pk)).values_list("verb", flat=True))
    assert {"person.created", "person.updated", "person.deactivated"} <= verbs
    assert client.delete(f"/api/v1/people/{pk}/").status_code == 405


def test_the_people_api_reports_field_errors(admin: Person, api_client_for: Callable) -> None:
    client: APIClient = api_client_for(admin)
    response = client.post("/api/v1/people/", {"username": "", "email": "not-an-email"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert set(body["fields"]) == {"username", "email"}
    weak = client.post("/api/v1/people/", {"username": "x", "password": "123"}, format="json")
    assert weak.status_code == 400
    assert "password" in weak.json()["fields"]


def test_the_break_glass_rule_holds_through_the_api(admin: Person, api_client_for: Callable) -> None:
    response = api_client_for(admin).patch(f"/api/v1/people/{admin.pk}/", {"roles": ["viewer"]}, format="json")
    assert response.status_code == 409  # a refusal by state
    assert "last active local admin" in response.json()["detail"]
