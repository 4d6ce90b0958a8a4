"""The console's tables: sort by each column both ways over keyset pages, page sizes,
totals that never count a big table unbounded, columns remembered, exports, suggestions."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from console.accounts.models import Person, Team, TeamMembership
from console.audit.models import AuditEvent
from console.core import tables
from integrations.extraction import department_and_title
from integrations.models import (
    ExtensionAttribute,
    ExtractionRun,
    Integration,
    TargetGroup,
    TargetMembership,
    TargetUser,
)
from provisioning.models import Action, ActionState, ActionType

pytestmark = pytest.mark.django_db

ROW = re.compile(r'<tr data-id="(\d+)">')
NEXT = re.compile(r'<a rel="next" href="([^"]+)"')
PREV = re.compile(r'<a rel="prev" href="([^"]+)"')
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def page_ids(html: str) -> list[int]:
    return [int(i) for i in ROW.findall(html)]


def link(pattern: re.Pattern[str], html: str, path: str) -> str | None:
    found = pattern.search(html)
    return path + found.group(1).replace("&amp;", "&") if found else None


def walk(client: Client, path: str, query: str) -> list[int]:
    """Every row id, following Next to the end and then Previous back to the start."""
    url: str | None = f"{path}?{query}"
    forward: list[list[int]] = []
    html = ""
    while url:
        html = client.get(url).content.decode()
        forward.append(page_ids(html))
        url = link(NEXT, html, path)
    backward: list[list[int]] = [forward[-1]]
    url = link(PREV, html, path)
    while url:
        html = client.get(url).content.decode()
        backward.insert(0, page_ids(html))
        url = link(PREV, html, path)
    assert backward == forward, "paging back shows the same pages"
    return [i for page in forward for i in page]


def expected(rows: list[Any], key: Callable[[Any], Any], descending: bool) -> list[int]:
    return [r.pk for r in sorted(rows, key=lambda r: (key(r), r.pk), reverse=descending)]


def assert_sorts(client: Client, path: str, rows: list[Any], keys: dict[str, Callable[[Any], Any]]) -> None:
    for name, key in keys.items():
        for descending in (False, True):
            ordering = f"-{name}" if descending else name
            seen = walk(client, path, f"ordering={ordering}&page_size=25")
            assert len(seen) == len(set(seen)), f"{path} by {ordering}: a row twice"
            assert seen == expected(rows, key, descending), f"{path} by {ordering}"


# Lower-case letters and digits only: every collation orders them the same way.
def word(n: int) -> str:
    return "abcdefghij"[n % 10] + f"{n % 7}"


@pytest.fixture
def integration() -> Integration:
    return Integration.objects.create(name="App", base_url="https://app.example.com/scim/v2", bearer_token="t")


@pytest.fixture
def users(integration: Integration) -> list[TargetUser]:
    return TargetUser.objects.bulk_create(
        TargetUser(
            integration=integration,
            remote_id=f"r{n}",
            user_name=f"user{n:03}",
            display_name=word(n),
            email=f"{word(n * 3)}@example.com",
            content_hash="h",
            resource={ENTERPRISE: {"department": f"dep{n % 3}"}, "title": "engineer"},
            department=f"dep{n % 3}",  # as extraction keeps them beside the resource
            title="engineer",
        )
        for n in range(60)
    )


def test_users_sort_by_each_column_both_ways_over_keyset_pages(
    admin_client: Client, integration: Integration, users: list[TargetUser]
) -> None:
    assert_sorts(
        admin_client,
        f"/integrations/{integration.pk}/users/",
        users,
        {"user_name": lambda u: u.user_name, "display_name": lambda u: u.display_name, "email": lambda u: u.email},
    )


def test_groups_and_members_sort_by_each_column(
    admin_client: Client, integration: Integration, users: list[TargetUser]
) -> None:
    groups = TargetGroup.objects.bulk_create(
        TargetGroup(
            integration=integration, remote_id=f"g{n}", display_name=word(n), member_count=n % 4, content_hash="h"
        )
        for n in range(40)
    )
    assert_sorts(
        admin_client,
        f"/integrations/{integration.pk}/groups/",
        groups,
        {"display_name": lambda g: g.display_name, "member_count": lambda g: g.member_count},
    )
    TargetMembership.objects.bulk_create(
        TargetMembership(integration=integration, group=groups[0], member_remote_id=u.remote_id, user=u)
        for u in users[:45]
    )
    assert_sorts(
        admin_client,
        f"/integrations/{integration.pk}/groups/{groups[0].pk}/",
        users[:45],
        {"user_name": lambda u: u.user_name, "display_name": lambda u: u.display_name, "email": lambda u: u.email},
    )


def test_people_and_teams_sort_by_each_column(admin_client: Client, admin: Person) -> None:
    Person.objects.bulk_create(
        Person(username=f"p{n:03}", email=f"{word(n)}@example.com", department=f"dep{n % 4}") for n in range(50)
    )
    people = list(Person.objects.all())
    assert_sorts(
        admin_client,
        "/people/",
        people,
        {"username": lambda p: p.username, "email": lambda p: p.email, "department": lambda p: p.department},
    )

    teams = Team.objects.bulk_create(Team(name=f"team{n:03}") for n in range(30))
    TeamMembership.objects.bulk_create(
        TeamMembership(team=team, person=person) for n, team in enumerate(teams) for person in people[: n % 3]
    )
    sizes = {team.pk: n % 3 for n, team in enumerate(teams)}
    assert_sorts(
        admin_client, "/teams/", teams, {"name": lambda t: t.name.lower(), "member_count": lambda t: sizes[t.pk]}
    )


def make_actions(integration: Integration, count: int) -> list[Action]:
    start = timezone.now() - timedelta(days=1)
    states = [ActionState.SUCCEEDED, ActionState.FAILED, ActionState.PENDING_APPROVAL]
    return Action.objects.bulk_create(
        Action(
            integration=integration,
            action_type=[ActionType.SYNC_IDENTITIES, ActionType.DEPROVISION_IDENTITY][n % 2],
            state=states[n % 3],
            subject=f"{word(n)}@example.com",
            created_at=start + timedelta(minutes=n // 2),  # two at each time: the id breaks ties
        )
        for n in range(55)
    )


def test_actions_sort_by_each_column(admin_client: Client, integration: Integration) -> None:
    actions = make_actions(integration, 55)
    assert_sorts(
        admin_client,
        "/actions/",
        actions,
        {
            "created_at": lambda a: a.created_at,
            "action_type": lambda a: a.action_type,
            "subject": lambda a: a.subject,
            "state": lambda a: a.state,
        },
    )


def make_audit(count: int) -> list[AuditEvent]:
    now = timezone.now()
    return AuditEvent.objects.bulk_create(
        AuditEvent(
            occurred_at=now - timedelta(seconds=n // 2),
            actor_label=word(n),
            verb=f"thing.{word(n * 5)}",
            target_type="thing",
            target_id=str(n),
        )
        for n in range(count)
    )


def test_audit_sorts_by_each_column(admin_client: Client) -> None:
    make_audit(55)
    events = list(AuditEvent.objects.all())  # with the admin's own events, if any
    assert_sorts(
        admin_client,
        "/audit/",
        events,
        {"occurred_at": lambda e: e.occurred_at, "actor": lambda e: e.actor_label, "verb": lambda e: e.verb},
    )


def test_runs_sort_by_each_column_and_are_counted_exactly(admin_client: Client, integration: Integration) -> None:
    now = timezone.now()
    runs = ExtractionRun.objects.bulk_create(
        ExtractionRun(
            integration=integration,
            trigger=ExtractionRun.Trigger.SCHEDULE,
            status=[ExtractionRun.Status.SUCCEEDED, ExtractionRun.Status.FAILED][n % 2],
            queued_at=now - timedelta(hours=n),
            users_seen=n % 5,
            groups_seen=n % 4,
        )
        for n in range(40)
    )
    path = f"/integrations/{integration.pk}/runs/"
    assert_sorts(
        admin_client,
        path,
        runs,
        {
            "queued_at": lambda r: r.queued_at,
            "status": lambda r: r.status,
            "users_seen": lambda r: r.users_seen,
            "groups_seen": lambda r: r.groups_seen,
        },
    )
    html = admin_client.get(path + "?status=failed").content.decode()
    assert 'data-total="20"' in html
    assert "<strong>20</strong> runs" in html


def test_a_header_links_to_the_other_direction_and_shows_an_arrow(
    admin_client: Client, integration: Integration, users: list[TargetUser]
) -> None:
    html = admin_client.get(f"/integrations/{integration.pk}/users/?active=true&page_size=50").content.decode()
    assert 'aria-sort="ascending" data-column="user_name"' in html
    assert "?active=true&amp;page_size=50&amp;ordering=-user_name" in html
    html = admin_client.get(f"/integrations/{integration.pk}/users/?ordering=-email").content.decode()
    assert 'aria-sort="descending" data-column="email"' in html
    assert "↓" in html
    # The filter form keeps the sort and the page size.
    assert 'name="ordering" value="-email" form="table-filters"' in html
    assert 'name="page_size" value="25" form="table-filters"' in html


def test_page_size_is_chosen_from_the_list_and_kept_across_pages(
    admin_client: Client, integration: Integration, users: list[TargetUser]
) -> None:
    path = f"/integrations/{integration.pk}/users/"
    html = admin_client.get(path + "?page_size=50").content.decode()
    assert len(page_ids(html)) == 50
    assert '<option value="50" selected>' in html
    assert all(f'<option value="{size}"' in html for size in (25, 50, 100, 200))
    following = link(NEXT, html, path)
    assert following
    assert "page_size=50" in following
    assert len(page_ids(admin_client.get(following).content.decode())) == 10
    assert len(page_ids(admin_client.get(path + "?page_size=500").content.decode())) == 60  # at most 200


def counts_in(queries: list[dict[str, Any]], table: str) -> list[str]:
    """The COUNTs of ``table`` a page ran, but the navigation's badge of actions awaiting approval."""
    return [
        q["sql"]
        for q in queries
        if "COUNT(" in q["sql"].upper() and f'"{table}"' in q["sql"] and "pending_approval" not in q["sql"]
    ]


@pytest.mark.parametrize("cap_name", ["COUNT_CAP_SQLITE", "COUNT_CAP_POSTGRES"])
def test_big_tables_are_never_counted_without_a_bound(
    admin_client: Client,
    integration: Integration,
    users: list[TargetUser],
    monkeypatch: pytest.MonkeyPatch,
    cap_name: str,
) -> None:
    monkeypatch.setattr(tables, cap_name, 10)
    make_actions(integration, 30)
    make_audit(30)
    group = TargetGroup.objects.create(integration=integration, remote_id="g", display_name="g", content_hash="h")
    TargetMembership.objects.bulk_create(
        TargetMembership(integration=integration, group=group, member_remote_id=u.remote_id, user=u) for u in users
    )
    for path, table in [
        (f"/integrations/{integration.pk}/users/", TargetUser._meta.db_table),
        (f"/integrations/{integration.pk}/groups/{group.pk}/", TargetUser._meta.db_table),
        ("/actions/", Action._meta.db_table),
        ("/audit/", AuditEvent._meta.db_table),
    ]:
        with CaptureQueriesContext(connection) as queries:
            html = admin_client.get(path).content.decode()
        counts = counts_in(queries.captured_queries, table)
        assert counts, f"{path} shows a total"
        for sql in counts:
            assert "LIMIT" in sql.upper(), f"{path} counted without a bound: {sql}"
        if connection.vendor == "postgresql":
            if cap_name == "COUNT_CAP_POSTGRES":
                assert "<strong>about " in html, path
                assert any("EXPLAIN" in q["sql"] for q in queries.captured_queries)
        elif cap_name == "COUNT_CAP_SQLITE":
            assert "<strong>more than 10</strong>" in html, path
    # Under the cap the number is exact.
    html = admin_client.get(f"/integrations/{integration.pk}/users/?q=user00").content.decode()
    assert "<strong>10</strong> users" in html


def test_small_tables_show_an_exact_total(admin_client: Client, make_person: Callable[..., Person]) -> None:
    for n in range(12):
        make_person(f"someone{n:02}")
    html = admin_client.get("/people/?q=someone").content.decode()
    assert "<strong>12</strong> people" in html


def test_chosen_columns_are_remembered_and_offer_extension_attributes(
    admin_client: Client, integration: Integration, users: list[TargetUser]
) -> None:
    ExtensionAttribute.objects.create(
        integration=integration,
        normalized_name="urn_ietf_params_scim_schemas_extension_enterprise_2_0_user_department",
        scim_path=f"{ENTERPRISE}:department",
        schema_urn=ENTERPRISE,
    )
    path = f"/integrations/{integration.pk}/users/"
    html = admin_client.get(path).content.decode()
    for key in ("department", "title", "owner", "last_seen", "ext.urn_ietf_params_scim_schemas_extension"):
        assert f'name="columns" value="{key}' in html
    assert 'data-column="department"' not in html
    query = "columns_set=1&columns=user_name&columns=department&columns=owner&columns=title"
    query += "&columns=ext.urn_ietf_params_scim_schemas_extension_enterprise_2_0_user_department"
    admin_client.get(f"{path}?{query}")
    html = admin_client.get(path).content.decode()  # later, without asking again
    headers = re.findall(r'data-column="([^"]+)"', html)
    assert headers == [
        "user_name",
        "department",
        "title",
        "owner",
        "ext.urn_ietf_params_scim_schemas_extension_enterprise_2_0_user_department",
    ]
    assert "<td>dep0</td>" in html
    assert "<td>engineer</td>" in html
    assert "<td>no owner</td>" in html
    # Other tables keep their own choice.
    assert 'data-column="action_type"' in admin_client.get("/actions/").content.decode()


def test_the_owner_column_reads_owners_in_the_page_query_not_one_query_a_row(
    admin_client: Client, integration: Integration, users: list[TargetUser], make_person: Callable[..., Person]
) -> None:
    owners = [make_person(f"owner{n}") for n in range(3)]
    for n, user in enumerate(users):
        user.owner = owners[n % 3]
    TargetUser.objects.bulk_update(users, ["owner"])
    path = f"/integrations/{integration.pk}/users/"
    admin_client.get(f"{path}?columns_set=1&columns=user_name&columns=owner")
    person_table = Person._meta.db_table

    for size in (25, 50):
        with CaptureQueriesContext(connection) as queries:
            html = admin_client.get(f"{path}?page_size={size}").content.decode()
        assert html.count("<td>owner1</td>") == len(range(1, size, 3)), size
        reads = [q["sql"] for q in queries.captured_queries if f'FROM "{person_table}"' in q["sql"]]
        assert len(reads) <= 3, f"{len(reads)} reads of people for {size} rows"  # the viewer, not each owner
    with CaptureQueriesContext(connection) as queries:
        rows = list(csv.DictReader(io.StringIO(content(admin_client.get(f"{path}?as=csv")).decode())))
    assert [row["owner"] for row in rows[:3]] == ["owner0", "owner1", "owner2"]
    assert len(queries.captured_queries) < 10, "the export reads the owners with the accounts"


def content(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def exported(client: Client, url: str) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    as_csv = client.get(url + "&as=csv")
    assert as_csv["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(content(as_csv).decode())))
    as_json = client.get(url + "&as=json")
    assert as_json["Content-Type"] == "application/json"
    return rows, json.loads(content(as_json))


def test_every_list_exports_what_its_filters_select_in_its_order(
    admin_client: Client, integration: Integration, users: list[TargetUser], make_person: Callable[..., Person]
) -> None:
    users[0].active = False
    users[0].save()
    rows, items = exported(admin_client, f"/integrations/{integration.pk}/users/?active=true&ordering=-email")
    wanted = sorted((u for u in users if u.active), key=lambda u: (u.email, u.pk), reverse=True)
    assert [r["user_name"] for r in rows] == [u.user_name for u in wanted]
    assert [i["user_name"] for i in items] == [u.user_name for u in wanted]
    assert {"department", "title", "owner", "email", "status"} <= set(rows[0])

    actions = make_actions(integration, 20)
    rows, items = exported(admin_client, "/actions/?state=failed&ordering=subject")
    wanted_actions = sorted((a for a in actions if a.state == "failed"), key=lambda a: (a.subject, a.pk))
    assert [int(r["id"]) for r in rows] == [a.pk for a in wanted_actions] == [i["id"] for i in items]
    # The Actions export's own address answers the same, with its stable fields.
    rows, _ = exported(admin_client, "/actions/export/?state=failed&ordering=subject")
    assert [int(r["id"]) for r in rows] == [a.pk for a in wanted_actions]
    assert list(rows[0])[:4] == ["id", "created_at", "action_type", "state"]

    make_audit(10)
    rows, items = exported(admin_client, "/audit/?verb=thing.&ordering=verb")
    assert len(rows) == 10
    assert [r["verb"] for r in rows] == sorted(r["verb"] for r in rows)

    make_person("zed", department="ops")
    rows, items = exported(admin_client, "/people/?q=zed&ordering=username")
    assert [r["username"] for r in rows] == ["zed"]
    assert items[0]["department"] == "ops"
    rows, _ = exported(admin_client, f"/integrations/{integration.pk}/runs/?status=failed")
    assert rows == []
    rows, _ = exported(admin_client, "/teams/?q=none")
    assert rows == []


def options(response: Any) -> list[str]:
    assert response.status_code == 200
    return re.findall(r'<option value="([^"]*)">', response.content.decode())


def test_name_filters_suggest_names(
    admin_client: Client, integration: Integration, make_person: Callable[..., Person]
) -> None:
    make_person("alice")
    make_person("alfred")
    make_person("bob")
    Team.objects.create(name="Engineering")
    Team.objects.create(name="Sales")
    TargetGroup.objects.create(integration=integration, remote_id="1", display_name="eng-admins", content_hash="h")
    TargetGroup.objects.create(integration=integration, remote_id="2", display_name="finance", content_hash="h")
    make_audit(5)

    assert options(admin_client.get("/people/suggest/?q=al")) == ["alfred", "alice"]
    assert options(admin_client.get("/teams/suggest/?q=eng")) == ["Engineering"]
    assert options(admin_client.get(f"/integrations/{integration.pk}/groups/suggest/?field=group&group=ENG")) == [
        "eng-admins"
    ]
    verbs = options(admin_client.get("/audit/verbs/?field=verb&verb=thing"))
    assert verbs[0] == "thing."
    assert "thing.a0" in verbs
    assert len(verbs) == len(set(verbs))

    # The filters that take a name are wired to them.
    html = admin_client.get(f"/integrations/{integration.pk}/users/").content.decode()
    assert f'hx-get="/integrations/{integration.pk}/groups/suggest/?field=group"' in html
    assert '<datalist id="suggest-group">' in html
    html = admin_client.get("/audit/").content.decode()
    assert 'hx-get="/audit/verbs/?field=verb"' in html
    assert 'hx-get="/people/suggest/?field=actor"' in html
    assert 'hx-get="/people/suggest/?field=person"' in admin_client.get("/actions/").content.decode()


def test_people_filter_by_a_team_name_the_filter_suggests(
    admin_client: Client, admin: Person, make_person: Callable[..., Person], api_client_for: Callable[[Person], Any]
) -> None:
    engineering = Team.objects.create(name="Engineering")
    alice, bob = make_person("alice"), make_person("bob")
    make_person("carol")
    TeamMembership.objects.create(team=engineering, person=alice)
    TeamMembership.objects.create(team=engineering, person=bob)
    TeamMembership.objects.create(team=Team.objects.create(name="Sales"), person=bob)

    html = admin_client.get("/people/").content.decode()
    assert 'hx-get="/teams/suggest/?field=team"' in html
    assert '<datalist id="suggest-team">' in html
    assert options(admin_client.get("/teams/suggest/?field=team&team=eng")) == ["Engineering"]

    html = admin_client.get("/people/?team=engineering").content.decode()  # the name as typed, any case
    assert "<strong>2</strong> people" in html
    assert ">alice<" in html
    assert ">bob<" in html
    assert ">carol<" not in html
    assert "<strong>0</strong> people" in admin_client.get("/people/?team=Nobody").content.decode()
    exported = json.loads(content(admin_client.get("/people/?team=Sales&as=json")))
    assert [row["username"] for row in exported] == ["bob"]
    # The API takes the same filter.
    api = api_client_for(admin)
    assert [p["username"] for p in api.get("/api/v1/people/?team=Engineering").json()["results"]] == ["alice", "bob"]


def test_suggestions_need_the_view_permission(make_person: Callable[..., Person]) -> None:
    client = Client()
    assert client.get("/people/suggest/?q=a").status_code == 302  # to sign-in
    client.force_login(make_person("nobody", roles=[]))
    assert client.get("/people/suggest/?q=a").status_code == 403
    assert client.get("/audit/verbs/?q=a").status_code == 403


def test_a_cursor_from_another_sort_is_refused_not_an_error(
    admin_client: Client, integration: Integration, users: list[TargetUser]
) -> None:
    path = f"/integrations/{integration.pk}/runs/"
    ExtractionRun.objects.create(integration=integration, trigger="manual", status="succeeded")
    html = admin_client.get(f"/integrations/{integration.pk}/users/?page_size=25").content.decode()
    cursor = re.search(r"cursor=([^\"&]+)", html)
    assert cursor
    response = admin_client.get(f"{path}?ordering=users_seen&cursor={cursor.group(1)}")
    assert response.status_code == 200
    assert "start again from the first page" in response.content.decode()


@pytest.mark.parametrize("ordering", ["created_at", "-finished_at", "requested_by", "integration"])
def test_a_cursor_of_another_sort_is_refused_by_a_sort_on_a_date_or_an_expression(
    admin: Person,
    admin_client: Client,
    api_client_for: Callable[[Person], Any],
    integration: Integration,
    users: list[TargetUser],
    ordering: str,
) -> None:
    make_actions(integration, 3)
    html = admin_client.get(f"/integrations/{integration.pk}/users/?page_size=25").content.decode()
    cursor = re.search(r"cursor=([^\"&]+)", html)
    assert cursor  # a user name and an id: neither a date nor a person's id
    response = admin_client.get(f"/actions/?ordering={ordering}&cursor={cursor.group(1)}")
    assert response.status_code == 200
    assert "start again from the first page" in response.content.decode()
    refused = api_client_for(admin).get(f"/api/v1/actions/?ordering={ordering}&cursor={cursor.group(1)}")
    assert refused.status_code == 400
    assert "cursor" in refused.json()["fields"]


def api_walk(client: Any, url: str | None) -> list[int]:
    seen: list[int] = []
    while url:
        body = client.get(url).json()
        seen += [row["id"] for row in body["results"]]
        url = body["next"]
    return seen


def test_the_api_lists_take_the_same_ordering_and_page_size(
    admin: Person, api_client_for: Callable[[Person], Any], integration: Integration, users: list[TargetUser]
) -> None:
    client = api_client_for(admin)
    base = f"/api/v1/integrations/{integration.pk}/users/"
    seen = api_walk(client, f"{base}?ordering=-email&page_size=25")
    assert seen == expected(users, lambda u: u.email, True)
    assert len(client.get(f"{base}?page_size=50").json()["results"]) == 50
    refused = client.get(f"{base}?ordering=resource")
    assert refused.status_code == 400
    assert "ordering" in refused.json()["fields"]

    actions = make_actions(integration, 30)
    seen = api_walk(client, "/api/v1/actions/?ordering=subject&page_size=25")
    assert seen == expected(actions, lambda a: a.subject, False)
    rows = json.loads(content(client.get("/api/v1/actions/export/?as=json&ordering=-subject&state=failed")))
    assert [r["id"] for r in rows] == expected([a for a in actions if a.state == "failed"], lambda a: a.subject, True)

    teams = Team.objects.bulk_create(Team(name=f"t{n:02}") for n in range(30))
    assert api_walk(client, "/api/v1/teams/?ordering=-name&page_size=25") == expected(teams, lambda t: t.name, True)
    make_audit(30)
    events = list(AuditEvent.objects.all())
    assert api_walk(client, "/api/v1/audit-events/?ordering=verb") == expected(events, lambda e: e.verb, False)
    people = list(Person.objects.all())
    assert api_walk(client, "/api/v1/people/?ordering=email") == expected(people, lambda p: p.email, False)


def test_bulk_actions_take_all_accounts_the_filters_match(
    admin_client: Client, integration: Integration, users: list[TargetUser], monkeypatch: pytest.MonkeyPatch
) -> None:
    integration.provisioning_enabled = True
    integration.save()
    users[0].removed_at = timezone.now()
    users[0].save()
    html = admin_client.get(f"/integrations/{integration.pk}/users/?q=user00").content.decode()
    assert 'data-select-page aria-label="Select all on this page"' in html
    assert 'name="all_matching" value="1" form="bulk-form"' in html
    assert 'name="matching" value="q=user00" form="bulk-form"' in html
    plan = admin_client.post(
        "/actions/bulk/",
        {
            "integration": integration.pk,
            "action_type": "DEPROVISION_IDENTITY",
            "all_matching": "1",
            "matching": "q=user00",
            "dry_run": "1",
        },
    )
    # Nine of the ten matching (user000 is gone from the application), none of the others.
    assert [t.user_name for t in plan.context["targets"]] == [f"user00{n}" for n in range(1, 10)]

    monkeypatch.setattr("provisioning.forms.BULK_MATCHING_LIMIT", 5)
    refused = admin_client.post(
        "/actions/bulk/",
        {"integration": integration.pk, "action_type": "DEPROVISION_IDENTITY", "all_matching": "1", "matching": ""},
        follow=True,
    )
    assert "More than 5 accounts match" in refused.content.decode()
    assert not Action.objects.exists()


# Sorts that are not a column of their own (an index on the expression, then the id).

FAR_FUTURE = timezone.now() + timedelta(days=365 * 1000)


def test_users_sort_by_status_department_title_and_owner_both_ways_over_keyset_pages(
    admin_client: Client, integration: Integration, make_person: Callable[..., Person]
) -> None:
    owners = [make_person(f"owner{n}") for n in range(3)]
    now = timezone.now()

    def resource(n: int) -> dict[str, Any]:
        found: dict[str, Any] = {}
        if n % 4:  # a quarter of them without a department
            found[ENTERPRISE] = {"department": word(n * 7)}
        if n % 5:  # a fifth without a title
            found["title"] = word(n * 3)
        return found

    users = TargetUser.objects.bulk_create(
        TargetUser(
            integration=integration,
            remote_id=f"r{n}",
            user_name=f"user{n:03}",
            content_hash="h",
            active=n % 3 != 1,
            removed_at=now if n % 7 == 0 else None,
            resource=resource(n),
            **dict(zip(("department", "title"), department_and_title(resource(n)), strict=True)),
            owner=owners[n % 3] if n % 4 != 3 else None,
        )
        for n in range(60)
    )
    # Another integration's accounts never show, whatever the sort.
    other = Integration.objects.create(name="Other", base_url="https://other.example.com/scim/v2", bearer_token="t")
    TargetUser.objects.create(integration=other, remote_id="x", user_name="x", content_hash="h", active=False)

    def status(u: TargetUser) -> int:
        return 2 if u.removed_at else (0 if u.active else 1)

    assert_sorts(
        admin_client,
        f"/integrations/{integration.pk}/users/",
        users,
        {
            "status": status,
            "department": lambda u: u.resource.get(ENTERPRISE, {}).get("department", ""),
            "title": lambda u: u.resource.get("title", ""),
            "owner": lambda u: u.owner_id or 0,
        },
    )
    html = admin_client.get(f"/integrations/{integration.pk}/users/?ordering=status").content.decode()
    assert 'aria-sort="ascending" data-column="status"' in html
    # Sorting by owner says what the order is: grouped by the person, not by name.
    html = admin_client.get(
        f"/integrations/{integration.pk}/users/?ordering=-owner&columns_set=1&columns=user_name&columns=owner"
    ).content.decode()
    assert 'class="table-sort-note muted">By owner: accounts grouped by their owner' in html
    assert 'aria-sort="descending" data-column="owner" title="By owner: accounts grouped' in html
    html = admin_client.get(f"/integrations/{integration.pk}/users/?ordering=title").content.decode()
    assert "table-sort-note" not in html

    # The group's members sort by status too (the same index, the integration's).
    group = TargetGroup.objects.create(integration=integration, remote_id="g", display_name="g", content_hash="h")
    TargetMembership.objects.bulk_create(
        TargetMembership(integration=integration, group=group, member_remote_id=u.remote_id, user=u) for u in users[:40]
    )
    assert_sorts(admin_client, f"/integrations/{integration.pk}/groups/{group.pk}/", users[:40], {"status": status})


def test_a_groups_last_seen_does_not_sort_and_its_header_does_not_offer_to(
    admin_client: Client, admin: Person, api_client_for: Callable[[Person], Any], integration: Integration
) -> None:
    TargetGroup.objects.create(integration=integration, remote_id="g", display_name="g", content_hash="h")
    path = f"/integrations/{integration.pk}/groups/"
    html = admin_client.get(f"{path}?ordering=last_seen").content.decode()
    header = re.search(r'<th scope="col"[^>]*data-column="last_seen"[^>]*>(.*?)</th>', html)
    assert header
    assert header.group(1) == "Last seen"  # a label, no link to sort by it
    assert 'aria-sort="ascending" data-column="display_name"' in html  # the default sort instead
    refused = api_client_for(admin).get(f"/api/v1/integrations/{integration.pk}/groups/?ordering=last_seen")
    assert refused.status_code == 400
    assert "ordering" in refused.json()["fields"]


def test_people_sort_by_name_and_created_both_ways_over_keyset_pages(admin_client: Client, admin: Person) -> None:
    start = timezone.now() - timedelta(days=1)

    def named(n: int) -> dict[str, str]:
        # The name shown: the display name, else given and family names, else the user name.
        return [
            {"display_name": f"d{n:03}"},
            {"given_name": f"g{n:03}", "family_name": f"f{n:03}"},
            {"given_name": f"g{n:03}"},
            {"family_name": f"f{n:03}"},
            {},
        ][n % 5]

    created = Person.objects.bulk_create(Person(username=f"p{n:03}", **named(n)) for n in range(50))
    for n, person in enumerate(created):  # two at each time: the id breaks ties
        Person.objects.filter(pk=person.pk).update(created_at=start + timedelta(minutes=n // 2))
    people = list(Person.objects.all())
    assert sorted(p.full_name for p in people)[:3] == ["d000", "d005", "d010"]
    assert_sorts(
        admin_client,
        "/people/",
        people,
        {"name": lambda p: p.full_name, "created_at": lambda p: p.created_at},
    )


def test_actions_sort_by_integration_requester_and_finished_both_ways_over_keyset_pages(
    admin_client: Client, integration: Integration, make_person: Callable[..., Person]
) -> None:
    others = [
        Integration.objects.create(name=f"B{n}", base_url=f"https://b{n}.example.com/scim/v2", bearer_token="t")
        for n in range(2)
    ]
    requesters = [make_person(f"requester{n}") for n in range(2)]
    actions = make_actions(integration, 55)
    finished = timezone.now() - timedelta(hours=1)
    for n, action in enumerate(actions):
        action.integration = [integration, *others][n % 3]
        action.requested_by = [None, *requesters][n % 3] if n % 4 else None
        action.finished_at = finished + timedelta(minutes=n % 6) if n % 5 else None  # some not finished yet
    Action.objects.bulk_update(actions, ["integration", "requested_by", "finished_at"])
    assert_sorts(
        admin_client,
        "/actions/",
        actions,
        {
            "integration": lambda a: a.integration_id,
            "requested_by": lambda a: a.requested_by_id or 0,
            "finished_at": lambda a: a.finished_at or FAR_FUTURE,
        },
    )
    html = admin_client.get("/actions/?ordering=integration").content.decode()
    assert "By integration: actions grouped by integration" in html


def test_the_api_takes_the_new_sorts(
    admin: Person, api_client_for: Callable[[Person], Any], integration: Integration, users: list[TargetUser]
) -> None:
    client = api_client_for(admin)
    base = f"/api/v1/integrations/{integration.pk}/users/"
    department = expected(users, lambda u: u.resource[ENTERPRISE]["department"], True)
    assert api_walk(client, f"{base}?ordering=-department&page_size=25") == department
    assert api_walk(client, f"{base}?ordering=status&page_size=25") == expected(users, lambda u: 0, False)
    for key in ("title", "-owner"):
        assert client.get(f"{base}?ordering={key}").status_code == 200

    actions = make_actions(integration, 30)
    for n, action in enumerate(actions):
        action.finished_at = timezone.now() - timedelta(minutes=n % 4) if n % 3 else None
    Action.objects.bulk_update(actions, ["finished_at"])
    by_finished = expected(actions, lambda a: a.finished_at or FAR_FUTURE, True)
    assert api_walk(client, "/api/v1/actions/?ordering=-finished_at&page_size=25") == by_finished
    assert api_walk(client, "/api/v1/actions/?ordering=requested_by&page_size=25") == expected(
        actions, lambda a: 0, False
    )
    rows = json.loads(content(client.get("/api/v1/actions/export/?as=json&ordering=-finished_at")))
    assert [r["id"] for r in rows] == by_finished
    assert client.get("/api/v1/actions/?ordering=integration").status_code == 200

    people = list(Person.objects.all())
    assert api_walk(client, "/api/v1/people/?ordering=-name&page_size=1") == expected(
        people, lambda p: p.full_name, True
    )
    assert api_walk(client, "/api/v1/people/?ordering=created_at") == expected(people, lambda p: p.created_at, False)
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert "-finished_at" in schema.content.decode()  # the documented choices of ?ordering=


def test_a_persons_accounts_sort_by_application_name_status_and_last_seen_over_keyset_pages(
    admin_client: Client, make_person: Callable[..., Person]
) -> None:
    owner = make_person("owner", roles=[])
    apps = [
        Integration.objects.create(name=f"app{word(n)}", base_url=f"https://a{n}.example.com/scim/v2") for n in range(4)
    ]
    start = timezone.now() - timedelta(days=30)
    accounts = TargetUser.objects.bulk_create(
        TargetUser(
            integration=apps[n % 4],
            remote_id=f"r{n}",
            user_name=f"{word(n * 3)}{n:02}",
            active=n % 3 != 0,
            removed_at=start if n % 5 == 0 else None,
            last_seen_at=start + timedelta(hours=n * 7 % 31),
            content_hash="h",
            owner=owner,
        )
        for n in range(30)
    )
    TargetUser.objects.create(integration=apps[0], remote_id="other", user_name="other", content_hash="h")
    path = f"/people/{owner.pk}/"
    # No extraction ran: an account was last seen when extraction last wrote it.
    assert_sorts(
        admin_client,
        path,
        accounts,
        {
            "application": lambda u: u.integration.name,
            "user_name": lambda u: u.user_name,
            "status": lambda u: 2 if u.removed_at else (0 if u.active else 1),
            "last_seen": lambda u: u.last_seen_at,
        },
    )
    page = admin_client.get(path).content.decode()
    assert '<p class="table-total" data-total="30"><strong>30</strong> accounts</p>' in page

    # Sorting with htmx swaps the table alone; the export has the rows in the table's order,
    # each with the actions under way for it.
    waiting = Action.objects.create(
        integration=accounts[1].integration,
        action_type=ActionType.DEPROVISION_IDENTITY,
        state=ActionState.PENDING_APPROVAL,
        target_user=accounts[1],
        subject=accounts[1].user_name,
    )
    partial = admin_client.get(f"{path}?ordering=-user_name", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="table-region")
    body = partial.content.decode()
    assert "<h1>" not in body
    assert 'data-table="person-accounts"' in body
    assert page_ids(body) == expected(accounts, lambda u: u.user_name, True)[:25]
    assert f'href="/actions/{waiting.pk}/"' in body
    rows, items = exported(admin_client, f"{path}?ordering=-user_name")
    assert [r["user_name"] for r in rows] == sorted((u.user_name for u in accounts), reverse=True)
    assert [i["user_name"] for i in items] == [r["user_name"] for r in rows]
    assert list(rows[0]) == ["application", "user_name", "why", "status", "groups", "last_seen", "actions_in_flight"]
    in_flight = {i["user_name"]: i["actions_in_flight"] for i in items}
    assert in_flight[accounts[1].user_name] == f"Deprovision identity #{waiting.pk} Waiting for approval"
    assert {v for k, v in in_flight.items() if k != accounts[1].user_name} == {""}


def test_an_integrations_mappings_sort_by_who_state_and_made_over_keyset_pages(
    admin_client: Client, integration: Integration
) -> None:
    from lifecycle.models import BirthrightMapping, MappingState

    teams = [Team.objects.create(name=f"team {word(n)}") for n in range(5)]
    start = timezone.now() - timedelta(days=3)
    states = [MappingState.ACTIVE, MappingState.PENDING, MappingState.REJECTED]
    mappings = BirthrightMapping.objects.bulk_create(
        BirthrightMapping(
            integration=integration,
            team=teams[n % 5] if n % 6 else None,
            conditions=[] if n % 6 else [{"attribute": "department", "operator": "equals", "values": ["x"]}],
            state=states[n % 3],
            created_at=start + timedelta(minutes=n * 11 % 37),
        )
        for n in range(30)
    )
    path = f"/integrations/{integration.pk}/lifecycle/"
    assert_sorts(
        admin_client,
        path,
        mappings,
        {
            "who": lambda m: m.team.name if m.team else "",
            "state": lambda m: m.state,
            "created": lambda m: m.created_at,
        },
    )
    page = admin_client.get(path).content.decode()
    assert '<p class="table-total" data-total="30"><strong>30</strong> mappings</p>' in page
    partial = admin_client.get(f"{path}?ordering=-created", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="table-region")
    body = partial.content.decode()
    assert "<h1>" not in body
    assert 'data-table="mappings"' in body
    assert page_ids(body) == expected(mappings, lambda m: m.created_at, True)[:25]
