"""SCIM ids are unique across Users and Groups (RFC 7643 §3.1); the old integer ids still work."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from console.accounts.models import Person, Source, Team, TeamMembership
from tests.scim.conftest import ScimClient, patch_op

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


def make_group(scim: ScimClient, name: str = "Engineering", members: list[str] | None = None) -> dict[str, Any]:
    response = scim.post("Groups", {"displayName": name, "members": [{"value": m} for m in members or []]})
    assert response.status_code == 201, response.content
    return dict(response.json_body)


@pytest.fixture
def stored_before(db: None) -> tuple[Person, Team]:
    """A person and a team an identity provider pushed before ids were UUIDs, with the same integer id."""
    person = Person.objects.create(username="grace@example.com", source=Source.SCIM, password="!")
    team = Team.objects.create(pk=person.pk, name="Pioneers", source=Source.SCIM)
    return person, team


def ids_of(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return [r["id"] for r in response.json_body["Resources"]]


def test_a_user_and_a_group_created_over_scim_never_share_an_id(
    scim: ScimClient, make_user: Callable[..., Any]
) -> None:
    user = make_user()
    group = make_group(scim)
    assert uuid.UUID(user["id"]) != uuid.UUID(group["id"])
    assert user["id"] == str(Person.objects.get(username="ada@example.com").scim_id)
    assert group["id"] == str(Team.objects.get(name="Engineering").scim_id)
    assert scim.get(f"Groups/{user['id']}").status_code == 404
    assert scim.get(f"Users/{group['id']}").status_code == 404


def test_the_id_is_the_same_in_every_answer(scim: ScimClient, make_user: Callable[..., Any]) -> None:
    created = scim.post("Users", {"userName": "ada@example.com", "name": {"givenName": "Ada"}})
    user_id = created.json_body["id"]
    assert created["Location"] == created.json_body["meta"]["location"]
    assert created["Location"].endswith(f"/scim/v2/Users/{user_id}")
    got = scim.get(f"Users/{user_id}")
    assert got.json_body["id"] == user_id
    assert got["Location"] == created["Location"]
    assert user_id in ids_of(scim.get("Users"))
    assert ids_of(scim.get(f"Users?filter={quote('userName eq "ada@example.com"')}")) == [user_id]
    assert ids_of(scim.get(f"Users?filter={quote(f'id eq "{user_id}"')}")) == [user_id]
    group = make_group(scim, members=[user_id])
    assert group["members"][0]["value"] == user_id
    assert group["members"][0]["$ref"] == created["Location"]
    assert group["meta"]["location"].endswith(f"/scim/v2/Groups/{group['id']}")
    assert scim.get(f"Groups/{group['id']}").json_body["members"][0]["value"] == user_id
    assert ids_of(scim.get(f"Groups?filter={quote(f'members.value eq "{user_id}"')}")) == [group["id"]]
    boss = make_user("boss@example.com")
    scim.patch(f"Users/{user_id}", patch_op({"op": "replace", "path": f"{ENTERPRISE}:manager", "value": boss["id"]}))
    listed = next(r for r in scim.get("Users").json_body["Resources"] if r["id"] == user_id)
    for body in (scim.get(f"Users/{user_id}").json_body, listed):
        assert body[ENTERPRISE]["manager"] == {"value": boss["id"], "$ref": boss["meta"]["location"]}
    managed = scim.get(f"Users?filter={quote(f'manager eq "{boss["id"]}"')}")
    assert ids_of(managed) == [user_id]


def test_an_old_numeric_id_still_reads_and_writes_its_own_type_only(
    scim: ScimClient, stored_before: tuple[Person, Team]
) -> None:
    person, team = stored_before
    user = scim.get(f"Users/{person.pk}")
    assert user.status_code == 200, user.content
    assert (user.json_body["id"], user.json_body["userName"]) == (str(person.scim_id), "grace@example.com")
    assert user["Location"].endswith(f"/Users/{person.scim_id}")  # from now on, the client may use the new id
    group = scim.get(f"Groups/{team.pk}")
    assert (group.json_body["id"], group.json_body["displayName"]) == (str(team.scim_id), "Pioneers")

    patched = scim.patch(
        f"Users/{person.pk}", patch_op({"op": "replace", "path": "title", "value": "Admiral"}), If_Match=user["ETag"]
    )
    assert patched.status_code == 200, patched.content
    assert patched.json_body["title"] == "Admiral"
    replaced = scim.put(f"Users/{person.pk}", {"userName": "grace@example.com", "title": "Rear Admiral"})
    assert replaced.status_code == 200, replaced.content
    assert Person.objects.get(pk=person.pk).title == "Rear Admiral"

    renamed = scim.patch(f"Groups/{team.pk}", patch_op({"op": "replace", "path": "displayName", "value": "Navy"}))
    assert renamed.status_code == 204, renamed.content
    assert scim.put(f"Groups/{team.pk}", {"displayName": "Navy Pioneers"}).status_code == 200
    assert Team.objects.get(pk=team.pk).name == "Navy Pioneers"

    assert scim.delete(f"Groups/{team.pk}").status_code == 204
    assert not Team.objects.filter(pk=team.pk).exists()
    assert scim.get(f"Users/{person.pk}").status_code == 200  # the person with the same number is untouched
    assert scim.delete(f"Users/{person.pk}").status_code == 204
    assert Person.objects.get(pk=person.pk).removed_at is not None
    assert scim.get(f"Users/{person.pk}").status_code == 404


def test_a_numeric_id_never_crosses_types(scim: ScimClient, make_user: Callable[..., Any]) -> None:
    user = make_user()
    person = Person.objects.get(scim_id=user["id"])
    assert not Team.objects.filter(pk=person.pk).exists()
    assert scim.get(f"Groups/{person.pk}").status_code == 404
    assert scim.patch(f"Groups/{person.pk}", patch_op({"op": "remove", "path": "members"})).status_code == 404
    assert scim.delete(f"Groups/{person.pk}").status_code == 404
    for unknown in ("0", "99999999999999999999999", "not-an-id", str(uuid.uuid4())):
        assert scim.get(f"Users/{unknown}").status_code == 404
        assert scim.get(f"Groups/{unknown}").status_code == 404


def test_members_are_accepted_by_old_numeric_id_and_by_new_id(
    scim: ScimClient, make_user: Callable[..., Any], stored_before: tuple[Person, Team]
) -> None:
    old, _ = stored_before
    new = make_user()
    group = make_group(scim, "Mixed", [str(old.pk), new["id"]])
    assert sorted(m["value"] for m in group["members"]) == sorted([str(old.scim_id), new["id"]])
    team = Team.objects.get(scim_id=group["id"])

    def members() -> set[str]:
        return {str(i) for i in TeamMembership.objects.filter(team=team).values_list("person__scim_id", flat=True)}

    remove_old = patch_op({"op": "remove", "path": f'members[value eq "{old.pk}"]'})
    assert scim.patch(f"Groups/{group['id']}", remove_old).status_code == 204
    assert members() == {new["id"]}
    remove_new = patch_op({"op": "remove", "path": "members", "value": [{"value": new["id"]}]})
    assert scim.patch(f"Groups/{group['id']}", remove_new).status_code == 204
    assert members() == set()
    add_both = patch_op({"op": "add", "path": "members", "value": [{"value": str(old.scim_id)}, {"value": old.pk}]})
    assert scim.patch(f"Groups/{group['id']}", add_both).status_code == 204
    assert members() == {str(old.scim_id)}
    add_new = patch_op({"op": "add", "path": "members", "value": [{"value": new["id"], "display": "Ada"}]})
    assert scim.patch(f"Groups/{team.pk}", add_new).status_code == 204
    assert members() == {str(old.scim_id), new["id"]}
    assert TeamMembership.objects.get(team=team, person__scim_id=new["id"]).display == "Ada"
    remove_by_list = patch_op({"op": "remove", "path": "members", "value": [{"value": str(old.pk)}]})
    assert scim.patch(f"Groups/{group['id']}", remove_by_list).status_code == 204
    assert members() == {new["id"]}
    replace = patch_op({"op": "replace", "path": "members", "value": [{"value": str(old.pk)}]})
    assert scim.patch(f"Groups/{group['id']}", replace).status_code == 204
    assert members() == {str(old.scim_id)}
    put = scim.put(
        f"Groups/{group['id']}", {"displayName": "Mixed", "members": [{"value": new["id"]}, {"value": str(old.pk)}]}
    )
    assert put.status_code == 200, put.content
    assert sorted(m["value"] for m in put.json_body["members"]) == sorted([str(old.scim_id), new["id"]])
    # Okta repeats the group's id in a path-less replace: either form of it is its own.
    for own in (group["id"], str(team.pk)):
        rename = patch_op({"op": "replace", "value": {"id": own, "displayName": "Mixed"}})
        assert scim.patch(f"Groups/{group['id']}", rename).status_code == 204


def test_an_unknown_or_malformed_member_is_refused(scim: ScimClient, make_user: Callable[..., Any]) -> None:
    group = make_group(scim)
    stranger = str(uuid.uuid4())
    unknown = scim.patch(f"Groups/{group['id']}", patch_op({"op": "add", "path": "members", "value": [stranger]}))
    assert unknown.status_code == 400
    assert stranger in unknown.json_body["detail"]
    bad = scim.patch(f"Groups/{group['id']}", patch_op({"op": "add", "path": "members", "value": ["nobody"]}))
    assert (bad.status_code, bad.json_body["scimType"]) == (400, "invalidValue")
    # Removing someone who is not there removes nothing, by either form of id.
    for value in (stranger, "987654"):
        gone = patch_op({"op": "remove", "path": f'members[value eq "{value}"]'})
        assert scim.patch(f"Groups/{group['id']}", gone).status_code == 204


def test_filters_on_ids_take_either_form(
    scim: ScimClient, make_user: Callable[..., Any], stored_before: tuple[Person, Team]
) -> None:
    old_person, old_team = stored_before
    new = make_user()
    group = make_group(scim, "Both", [new["id"], str(old_person.pk)])

    def users(text: str) -> list[str]:
        return ids_of(scim.get(f"Users?filter={quote(text)}"))

    def groups(text: str) -> list[str]:
        return ids_of(scim.get(f"Groups?filter={quote(text)}"))

    assert users(f'id eq "{old_person.pk}"') == [str(old_person.scim_id)]
    assert users(f"id eq {old_person.pk}") == [str(old_person.scim_id)]
    assert users(f'id eq "{new["id"].upper()}"') == [new["id"]]
    assert users(f'id eq "{old_team.scim_id}"') == []  # a group's id names no user
    assert users('id eq "not-an-id"') == []
    assert str(old_person.scim_id) not in users(f'id ne "{old_person.scim_id}"')
    assert groups(f'id eq "{old_team.pk}"') == [str(old_team.scim_id)]
    assert groups(f'members.value eq "{old_person.pk}"') == [group["id"]]
    assert groups(f'members.value eq "{old_person.scim_id}"') == [group["id"]]
    assert groups(f'members[value eq "{new["id"]}"]') == [group["id"]]
    assert groups(f'members.value eq "{old_team.scim_id}"') == []
    refused = scim.get(f"Users?filter={quote('id gt "1"')}")
    assert (refused.status_code, refused.json_body["scimType"]) == (400, "invalidFilter")


def test_root_search_finds_each_resource_once_by_its_id(
    scim: ScimClient, make_user: Callable[..., Any], stored_before: tuple[Person, Team]
) -> None:
    old_person, old_team = stored_before
    new = make_user()
    group = make_group(scim, members=[new["id"]])

    def search(**body: Any) -> list[str]:
        return ids_of(scim.post(".search", {"schemas": [SEARCH], **body}))

    everything = search()
    assert len(everything) == len(set(everything))
    assert {new["id"], group["id"], str(old_person.scim_id), str(old_team.scim_id)} <= set(everything)
    assert search(filter=f'id eq "{group["id"]}"') == [group["id"]]
    assert search(filter=f'id eq "{old_person.scim_id}"') == [str(old_person.scim_id)]
    # person and team share the old number: across types it is ambiguous, so it finds neither
    assert old_person.pk == old_team.pk
    assert search(filter=f'id eq "{old_person.pk}"') == []
    assert search(filter=f'members.value eq "{new["id"]}"') == [group["id"]]


def test_a_manager_is_named_by_either_id(
    scim: ScimClient, make_user: Callable[..., Any], stored_before: tuple[Person, Team]
) -> None:
    boss, _ = stored_before
    user = make_user(**{ENTERPRISE: {"manager": {"value": str(boss.pk)}}})
    assert user[ENTERPRISE]["manager"]["value"] == str(boss.scim_id)
    other = make_user("bob@example.com", **{ENTERPRISE: {"manager": {"value": str(boss.scim_id)}}})
    assert other[ENTERPRISE]["manager"]["value"] == str(boss.scim_id)
    assert Person.objects.filter(manager=boss).count() == 2
    unknown = scim.post("Users", {"userName": "cyd@example.com", ENTERPRISE: {"manager": str(uuid.uuid4())}})
    assert (unknown.status_code, unknown.json_body["scimType"]) == (400, "invalidValue")


def test_reading_a_user_costs_the_same_by_either_id(scim: ScimClient, make_user: Callable[..., Any]) -> None:
    boss = make_user("boss@example.com")
    user = make_user(**{ENTERPRISE: {"manager": boss["id"]}})
    person = Person.objects.get(scim_id=user["id"])
    costs = []
    for path in (f"Users/{user['id']}", f"Users/{person.pk}"):
        scim.get(path)  # the key's last-used time is written once; measure what follows
        with CaptureQueriesContext(connection) as captured:
            response = scim.get(path)
        assert response.json_body[ENTERPRISE]["manager"]["value"] == boss["id"]
        costs.append([q["sql"] for q in captured.captured_queries])
    assert len(costs[0]) == len(costs[1]), costs
    # the statement that finds the person reads their manager's id too: no look-up of its own
    for statements in costs:
        assert sum("scim_manager_id" in sql for sql in statements) == 1, statements
        assert not any(sql.startswith('SELECT "accounts_person"."scim_id"') for sql in statements), statements
