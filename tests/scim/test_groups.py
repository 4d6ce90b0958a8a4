"""SCIM Groups: teams pushed by Okta and Entra ID, member changes at any size, roles through teams."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from console.accounts.models import ApiKey, IdentityEvent, Person, Role, Team, TeamMembership
from console.accounts.selectors import person_permissions, roles_effective_for
from console.accounts.services import team_set_roles
from tests.scim.conftest import ScimClient, patch_op


def make_group(scim: ScimClient, name: str = "Engineering", members: list[str] | None = None) -> dict[str, Any]:
    response = scim.post(
        "Groups",
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": name,
            "members": [{"value": m} for m in members or []],
        },
    )
    assert response.status_code == 201, response.content
    return dict(response.json_body)


def test_pushed_group_becomes_a_scim_team(scim: ScimClient, make_user: Callable[..., Any]) -> None:
    user = make_user()
    group = make_group(scim, members=[user["id"]])
    team = Team.objects.get(scim_id=group["id"])
    assert team.source == "scim"
    assert team.name == "Engineering"
    assert group["members"][0]["value"] == user["id"]
    assert IdentityEvent.objects.filter(person__scim_id=user["id"], kind="joined_team", team=team).exists()


def test_okta_push_groups_bodies(scim: ScimClient, make_user: Callable[..., Any]) -> None:
    """Bodies as in Okta's SCIM 2.0 guide: add members, remove with a value filter, rename."""
    first, second = make_user("a@example.com"), make_user("b@example.com")
    group = make_group(scim, "Test SCIMv2")
    added = scim.patch(
        f"Groups/{group['id']}",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {
                    "op": "add",
                    "path": "members",
                    "value": [
                        {"value": first["id"], "display": "a@example.com"},
                        {"value": second["id"], "display": "b@example.com"},
                    ],
                }
            ],
        },
    )
    assert added.status_code == 204
    removed = scim.patch(
        f"Groups/{group['id']}",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "remove", "path": f'members[value eq "{first["id"]}"]'}],
        },
    )
    assert removed.status_code == 204
    renamed = scim.patch(
        f"Groups/{group['id']}",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "value": {"id": group["id"], "displayName": "Test SCIMv2 renamed"}}],
        },
    )
    assert renamed.status_code == 204
    team = Team.objects.get(scim_id=group["id"])
    assert team.name == "Test SCIMv2 renamed"
    assert [str(i) for i in team.memberships.values_list("person__scim_id", flat=True)] == [second["id"]]
    assert IdentityEvent.objects.filter(person__scim_id=first["id"], kind="left_team").exists()


def test_entra_group_bodies(scim: ScimClient, make_user: Callable[..., Any]) -> None:
    """Entra ID capitalises ops and removes members with a value list."""
    first, second = make_user("a@example.com"), make_user("b@example.com")
    group = make_group(scim, "Sales")
    added = scim.patch(
        f"Groups/{group['id']}",
        patch_op({"op": "Add", "path": "members", "value": [{"value": first["id"]}, {"value": second["id"]}]}),
    )
    assert added.status_code == 204, added.content
    assert added.content == b""
    removed = scim.patch(
        f"Groups/{group['id']}", patch_op({"op": "Remove", "path": "members", "value": [{"value": first["id"]}]})
    )
    assert removed.status_code == 204, removed.content
    renamed = scim.patch(
        f"Groups/{group['id']}", patch_op({"op": "Replace", "path": "displayName", "value": "Sales EMEA"})
    )
    assert renamed.status_code == 204, renamed.content
    assert len({added["ETag"], removed["ETag"], renamed["ETag"]}) == 3
    response = scim.get(f"Groups/{group['id']}")
    assert response.status_code == 200
    assert response["ETag"] == renamed["ETag"]
    assert response.json_body["displayName"] == "Sales EMEA"
    assert [m["value"] for m in response.json_body["members"]] == [second["id"]]


def test_excluded_members_and_attributes_on_patch(scim: ScimClient, make_user: Callable[..., Any]) -> None:
    user = make_user()
    group = make_group(scim, members=[user["id"]])
    listed = scim.get("Groups?excludedAttributes=members").json_body
    assert listed["Resources"]
    assert all("members" not in r for r in listed["Resources"])
    detail = scim.get(f"Groups/{group['id']}?excludedAttributes=members").json_body
    assert "members" not in detail
    assert detail["displayName"] == "Engineering"
    with_body = scim.patch(
        f"Groups/{group['id']}?excludedAttributes=members",
        patch_op({"op": "replace", "path": "displayName", "value": "Eng"}),
    )
    assert with_body.status_code == 200
    assert "members" not in with_body.json_body


def _people(count: int, prefix: str) -> list[int]:
    """``count`` SCIM people named ``<prefix><i>@example.com``, their keys in creation order.

    The first is made through the ORM; the others are copies of its row that the database
    makes in one statement, each with a user name and SCIM id of its own. (Preparing
    50,000 instances' fields in Python took about 20 s of this file's time.)
    """
    first = Person.objects.create(username=f"{prefix}0@example.com", source="scim", password="!")
    fields = [field for field in Person._meta.concrete_fields if not field.primary_key]
    column = {field.name: connection.ops.quote_name(field.column) for field in fields if field.column is not None}
    new_scim_id = "gen_random_uuid()" if connection.vendor == "postgresql" else "lower(hex(randomblob(16)))"
    made = {
        "username": "CAST(%s AS VARCHAR(255)) || CAST(n.i AS VARCHAR(12)) || '@example.com'",
        "scim_id": new_scim_id,
    }
    assert {field.name for field in fields if field.unique} == set(made), "a unique field of Person needs a value here"
    columns = ", ".join(column[field.name] for field in fields)
    values = ", ".join(made.get(field.name, f"p.{column[field.name]}") for field in fields)
    table, key = Person._meta.db_table, Person._meta.pk.column
    copies = f"""
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %s)
        INSERT INTO {table} ({columns}) SELECT {values} FROM n, {table} p WHERE p.{key} = %s ORDER BY n.i
    """  # noqa: S608 - table and column names are the model's, values are parameters
    with connection.cursor() as cursor:
        cursor.execute(copies, [count - 1, prefix, first.pk])
    return list(Person.objects.filter(username__startswith=prefix).order_by("pk").values_list("pk", flat=True))


def _queries_for(scim: ScimClient, group_id: str, body: dict[str, Any]) -> int:
    # The key's last-used time is written at most once a minute; freshen it so that write
    # (which has nothing to do with group size) never lands in only one of the measurements.
    ApiKey.objects.update(last_used_at=timezone.now())
    with CaptureQueriesContext(connection) as captured:
        response = scim.patch(f"Groups/{group_id}", body)
    assert response.status_code == 204, response.content
    return len(captured.captured_queries)


def test_adding_or_removing_one_member_costs_the_same_for_10_or_50000_members(
    scim: ScimClient, django_assert_max_num_queries: Any
) -> None:
    small = make_group(scim, "Small")
    large = make_group(scim, "Large")
    small_key, large_key = (Team.objects.get(scim_id=group["id"]).pk for group in (small, large))
    small_ids = _people(11, "s")
    large_ids = sorted(_people(50_001, "l"))
    TeamMembership.objects.bulk_create([TeamMembership(team_id=small_key, person_id=pk) for pk in small_ids[:10]])
    with connection.cursor() as cursor:  # 50,000 memberships in one statement, over one scan of people
        if connection.vendor == "postgresql":
            # Without statistics on the 50,000 people just written, the planner checks each
            # membership's foreign key slowly (about 30 s, against under 1 s with them).
            cursor.execute("ANALYZE accounts_person")
        cursor.execute(
            "INSERT INTO accounts_teammembership (team_id, person_id, display, added_at)"
            " SELECT %s, id, '', created_at FROM accounts_person WHERE username LIKE 'l%%' AND id <> %s",
            [large_key, large_ids[50_000]],
        )
    costs = {}
    for name, group_id, newcomer in (("small", small["id"], small_ids[10]), ("large", large["id"], large_ids[50_000])):
        # The member by SCIM id, as clients send it now, and by the old key some stored.
        for member in (str(Person.objects.get(pk=newcomer).scim_id), str(newcomer)):
            add = patch_op({"op": "add", "path": "members", "value": [{"value": member}]})
            remove = patch_op({"op": "remove", "path": f'members[value eq "{member}"]'})
            with django_assert_max_num_queries(25):
                added = _queries_for(scim, group_id, add)
            with django_assert_max_num_queries(25):
                removed = _queries_for(scim, group_id, remove)
            costs[name, member.isdigit()] = (added, removed)
    assert costs["small", False] == costs["large", False]
    assert costs["small", True] == costs["large", True]
    assert TeamMembership.objects.filter(team_id=large_key).count() == 50_000


def test_effective_roles_last_until_the_last_granting_team_is_gone(
    scim: ScimClient, make_user: Callable[..., Any], admin: Person
) -> None:
    user = make_user()
    viewer = Role.objects.get(name="viewer")
    first, second = make_group(scim, "One", [user["id"]]), make_group(scim, "Two", [user["id"]])
    for group in (first, second):
        team_set_roles(actor=admin, team=Team.objects.get(scim_id=group["id"]), roles=[viewer])
    person = Person.objects.get(scim_id=user["id"])
    assert list(roles_effective_for(person=person).values_list("name", flat=True)) == ["viewer"]
    scim.patch(f"Groups/{first['id']}", patch_op({"op": "remove", "path": f'members[value eq "{user["id"]}"]'}))
    assert list(roles_effective_for(person=person).values_list("name", flat=True)) == ["viewer"]
    assert scim.delete(f"Groups/{second['id']}").status_code == 204
    assert not roles_effective_for(person=person).exists()
    assert not person_permissions(person=Person.objects.get(pk=person.pk))
