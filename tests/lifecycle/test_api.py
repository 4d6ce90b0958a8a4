"""/api/v1/lifecycle-policies/ and /api/v1/birthright-mappings/: round trips, validation,
permissions, the scope preview and the simulated plan."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from console.accounts.models import Person, Team, TeamMembership
from console.accounts.services import api_key_create
from console.audit.models import AuditEvent
from integrations.models import Integration, TargetGroup, TargetUser
from lifecycle.engine import wanted_apply, wanted_for
from lifecycle.models import BirthrightMapping, Grant, LifecyclePolicy, PlannedChange, PolicyMode, SensitiveGroup
from provisioning.models import Action, ActionType
from tests.lifecycle.conftest import push_group, push_user
from tests.provisioning.conftest import run_queued
from tests.scim.conftest import ScimClient
from tests.scim_peer import Peer

pytestmark = pytest.mark.django_db


def api_for(person: Person) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(actor=person, owner=person, name='t').token}")
    return client


@pytest.fixture
def integration() -> Integration:
    return Integration.objects.create(name="Wiki", base_url="http://127.0.0.1:9/scim/v2")


@pytest.fixture
def groups(integration: Integration) -> dict[str, TargetGroup]:
    return {
        name: TargetGroup.objects.create(
            integration=integration, remote_id=f"g-{name}", display_name=name, content_hash="-"
        )
        for name in ("Engineering", "Sales", "Payroll")
    }


@pytest.fixture
def people(make_person: Callable[..., Person]) -> dict[str, Any]:
    engineering = Team.objects.create(name="Engineering team")
    sales = Team.objects.create(name="Sales team")
    made = {}
    for name, team, department in (
        ("ada", engineering, "Engineering"),
        ("grace", engineering, "Engineering"),
        ("linus", sales, "Sales"),
    ):
        made[name] = make_person(name, roles=[], department=department)
        TeamMembership.objects.create(team=team, person=made[name])
    made["gone"] = make_person("gone", roles=[], active=False, department="Engineering")
    return {"engineering": engineering, "sales": sales, **made}


@pytest.fixture
def admin_api(admin: Person) -> APIClient:
    return api_for(admin)


def test_a_policy_is_created_read_changed_and_says_who_is_in_scope(
    admin_api: APIClient, integration: Integration, people: dict[str, Any]
) -> None:
    created = admin_api.post(
        "/api/v1/lifecycle-policies/",
        {"integration": integration.pk, "teams": [people["engineering"].pk], "retention_days": 7},
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["mode"] == "off"
    assert body["teams"] == [people["engineering"].pk]
    assert body["scope_count"] == 2
    assert body["scope_sample"] == ["ada", "grace"]
    assert body["scope_text"] == "active members of Engineering team"
    assert body["retention_days"] == 7

    again = admin_api.post("/api/v1/lifecycle-policies/", {"integration": integration.pk}, format="json")
    assert again.status_code == 409

    changed = admin_api.patch(
        f"/api/v1/lifecycle-policies/{body['id']}/",
        {
            "all_active_people": True,
            "teams": [],
            "conditions": [{"attribute": "department", "operator": "in", "values": ["Sales", "Engineering"]}],
            "retention_days": None,
        },
        format="json",
    )
    assert changed.status_code == 200, changed.content
    assert changed.json()["scope_count"] == 3
    assert changed.json()["retention_days"] is None
    assert "department is one of" in changed.json()["scope_text"]

    listed = admin_api.get("/api/v1/lifecycle-policies/", {"integration": integration.pk}).json()
    assert [p["id"] for p in listed["results"]] == [body["id"]]
    assert admin_api.get(f"/api/v1/lifecycle-policies/{body['id']}/").json()["scope_count"] == 3
    verbs = set(AuditEvent.objects.filter(verb__startswith="lifecycle.policy").values_list("verb", flat=True))
    assert verbs == {"lifecycle.policy_created", "lifecycle.policy_changed"}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"mode": "sometimes"}, "mode"),
        ({"retention_days": 0}, "retention_days"),
        ({"retention_days": "soon"}, "retention_days"),
        ({"teams": [999999]}, "teams"),
        ({"teams": "Engineering"}, "teams"),
        ({"pilot_team": 999999}, "pilot_team"),
        ({"conditions": [{"attribute": "shoe_size", "operator": "equals", "values": ["9"]}]}, "conditions"),
        ({"conditions": [{"attribute": "title", "operator": "equals", "values": ["a", "b"]}]}, "conditions"),
        ({"on_leaving_scope": "shrug"}, "on_leaving_scope"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_fields_are_400_naming_the_field(
    admin_api: APIClient, integration: Integration, fields: dict[str, Any], field: str
) -> None:
    response = admin_api.post("/api/v1/lifecycle-policies/", {"integration": integration.pk, **fields}, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]
    assert not LifecyclePolicy.objects.exists()


def test_unknown_ids_are_404_and_an_unknown_integration_400(admin_api: APIClient) -> None:
    assert admin_api.get("/api/v1/lifecycle-policies/424242/").status_code == 404
    assert admin_api.get("/api/v1/lifecycle-policies/424242/plan/").status_code == 404
    assert admin_api.patch("/api/v1/lifecycle-policies/424242/", {}, format="json").status_code == 404
    assert admin_api.post("/api/v1/birthright-mappings/424242/approve/").status_code == 404
    assert admin_api.delete("/api/v1/birthright-mappings/424242/").status_code == 404
    response = admin_api.post("/api/v1/lifecycle-policies/", {"integration": 424242}, format="json")
    assert response.status_code == 400
    assert "integration" in response.json()["fields"]


def test_the_preview_counts_unsaved_fields(
    admin_api: APIClient, integration: Integration, people: dict[str, Any], make_person: Callable[..., Person]
) -> None:
    viewer = api_for(make_person("watcher", roles=["viewer"]))
    response = viewer.post(
        "/api/v1/lifecycle-policies/preview/",
        {"conditions": [{"attribute": "department", "operator": "starts_with", "values": ["eng"]}]},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json() == {
        "count": 2,
        "sample": ["ada", "grace"],
        "text": "active people whose department starts with “eng”",
    }
    pilot = admin_api.post(
        "/api/v1/lifecycle-policies/preview/",
        {"all_active_people": True, "pilot_team": people["sales"].pk},
        format="json",
    ).json()
    assert (pilot["count"], pilot["sample"]) == (1, ["linus"])
    assert not LifecyclePolicy.objects.exists()
    bad = admin_api.post("/api/v1/lifecycle-policies/preview/", {"teams": ["x"]}, format="json")
    assert bad.status_code == 400
    assert "teams" in bad.json()["fields"]


def test_simulating_records_the_plan_at_once_and_the_api_pages_it(
    admin_api: APIClient, integration: Integration, people: dict[str, Any], groups: dict[str, TargetGroup]
) -> None:
    policy = admin_api.post(
        "/api/v1/lifecycle-policies/",
        {"integration": integration.pk, "teams": [people["engineering"].pk], "mode": "simulate"},
        format="json",
    ).json()
    plan = admin_api.get(f"/api/v1/lifecycle-policies/{policy['id']}/plan/", {"page_size": 1}).json()
    assert len(plan["results"]) == 1
    assert plan["next"] is not None
    rest = admin_api.get(plan["next"]).json()["results"]
    rows = plan["results"] + rest
    assert {(r["action_type"], r["person_name"]) for r in rows} == {
        ("SYNC_IDENTITIES", "ada"),
        ("SYNC_IDENTITIES", "grace"),
    }
    assert rows[0]["action_label"] == "Sync identity"
    assert "creates the account" in rows[0]["cause"]
    assert PlannedChange.objects.count() == 2

    # Off again: nothing planned is shown any more.
    admin_api.patch(f"/api/v1/lifecycle-policies/{policy['id']}/", {"mode": "off"}, format="json")
    assert admin_api.get(f"/api/v1/lifecycle-policies/{policy['id']}/plan/").json()["results"] == []


def test_a_viewer_reads_but_cannot_change(
    integration: Integration, make_person: Callable[..., Person], groups: dict[str, TargetGroup], admin: Person
) -> None:
    policy = LifecyclePolicy.objects.create(integration=integration)
    viewer = api_for(make_person("watcher", roles=["viewer"]))
    assert viewer.get(f"/api/v1/lifecycle-policies/{policy.pk}/").status_code == 200
    assert viewer.get("/api/v1/birthright-mappings/").status_code == 200
    assert viewer.patch(f"/api/v1/lifecycle-policies/{policy.pk}/", {"mode": "on"}, format="json").status_code == 403
    group = groups["Payroll"]
    assert (
        viewer.post(
            f"/api/v1/integrations/{integration.pk}/groups/{group.pk}/sensitive/", {"sensitive": True}, format="json"
        ).status_code
        == 403
    )
    assert (
        viewer.post(
            "/api/v1/birthright-mappings/", {"integration": integration.pk, "groups": [group.pk]}, format="json"
        ).status_code
        == 403
    )
    operator = api_for(make_person("op", roles=["operator"]))
    assert operator.patch(f"/api/v1/lifecycle-policies/{policy.pk}/", {}, format="json").status_code == 403
    assert LifecyclePolicy.objects.get().mode == PolicyMode.OFF


def test_a_mapping_to_a_sensitive_group_waits_for_a_second_admin(
    admin: Person,
    admin_api: APIClient,
    make_person: Callable[..., Person],
    integration: Integration,
    people: dict[str, Any],
    groups: dict[str, TargetGroup],
) -> None:
    payroll = groups["Payroll"]
    marked = admin_api.post(
        f"/api/v1/integrations/{integration.pk}/groups/{payroll.pk}/sensitive/", {"sensitive": True}, format="json"
    )
    assert marked.status_code == 200
    assert marked.json()["sensitive"] is True
    assert marked.json()["marked_by"] == admin.username
    assert SensitiveGroup.objects.filter(group=payroll).exists()

    created = admin_api.post(
        "/api/v1/birthright-mappings/",
        {"integration": integration.pk, "team": people["engineering"].pk, "groups": [payroll.pk, groups["Sales"].pk]},
        format="json",
    )
    assert created.status_code == 201, created.content
    mapping = created.json()
    assert (mapping["state"], mapping["state_label"]) == ("pending", "Waiting for a second admin")
    assert mapping["text"] == "team Engineering team"
    assert mapping["created_by"] == admin.username

    own = admin_api.post(f"/api/v1/birthright-mappings/{mapping['id']}/approve/")
    assert own.status_code == 409
    assert own.json()["detail"] == "You created this mapping: a second admin must approve or reject it."

    operator = api_for(make_person("op", roles=["operator"]))
    assert operator.post(f"/api/v1/birthright-mappings/{mapping['id']}/approve/").status_code == 403

    second = make_person("second", roles=["admin"])
    approved = api_for(second).post(f"/api/v1/birthright-mappings/{mapping['id']}/approve/")
    assert approved.status_code == 200, approved.content
    assert (approved.json()["state"], approved.json()["decided_by"]) == ("active", "second")
    assert api_for(second).post(f"/api/v1/birthright-mappings/{mapping['id']}/reject/").status_code == 409

    plain = admin_api.post(
        "/api/v1/birthright-mappings/",
        {"integration": integration.pk, "team": people["sales"].pk, "groups": [groups["Sales"].pk]},
        format="json",
    ).json()
    assert plain["state"] == "active"
    listed = admin_api.get("/api/v1/birthright-mappings/", {"integration": integration.pk}).json()["results"]
    assert [m["id"] for m in listed] == [mapping["id"], plain["id"]]
    assert admin_api.delete(f"/api/v1/birthright-mappings/{plain['id']}/").status_code == 204
    verbs = list(AuditEvent.objects.filter(verb__startswith="lifecycle.").order_by("pk").values_list("verb", flat=True))
    assert verbs == [
        "lifecycle.group_sensitive",
        "lifecycle.mapping_created",
        "lifecycle.mapping_approved",
        "lifecycle.mapping_created",
        "lifecycle.mapping_deleted",
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"groups": []}, "groups"),
        ({"groups": ["x"]}, "groups"),
        ({"groups": "all"}, "groups"),
        ({"team": 999999}, "team"),
        ({"conditions": [{"attribute": "nope", "values": ["x"]}]}, "conditions"),
    ],
)
def test_bad_mappings_are_400_naming_the_field(
    admin_api: APIClient,
    integration: Integration,
    people: dict[str, Any],
    groups: dict[str, TargetGroup],
    body: dict[str, Any],
    field: str,
) -> None:
    response = admin_api.post(
        "/api/v1/birthright-mappings/",
        {"integration": integration.pk, "team": people["sales"].pk, "groups": [groups["Sales"].pk], **body},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]


def test_a_mapping_takes_groups_of_its_own_integration_only_and_needs_a_team_or_condition(
    admin_api: APIClient, integration: Integration, people: dict[str, Any], groups: dict[str, TargetGroup]
) -> None:
    other = Integration.objects.create(name="Other", base_url="http://127.0.0.1:9/scim/v2")
    foreign = TargetGroup.objects.create(integration=other, remote_id="x", display_name="X", content_hash="-")
    response = admin_api.post(
        "/api/v1/birthright-mappings/",
        {"integration": integration.pk, "team": people["sales"].pk, "groups": [foreign.pk]},
        format="json",
    )
    assert response.status_code == 400
    assert "Wiki has no group" in response.json()["fields"]["groups"][0]
    nobody = admin_api.post(
        "/api/v1/birthright-mappings/", {"integration": integration.pk, "groups": [groups["Sales"].pk]}, format="json"
    )
    assert nobody.status_code == 400
    assert "team" in nobody.json()["fields"]
    assert not BirthrightMapping.objects.exists()


def test_deleting_a_mapping_plans_the_removal_of_what_only_it_granted(
    admin_api: APIClient, integration: Integration, people: dict[str, Any], groups: dict[str, TargetGroup]
) -> None:
    """Ada's account is in Sales because of one mapping; deleting the mapping puts the removal in
    the simulated plan (on, it would be asked for in the same way)."""
    ada = people["ada"]
    account = TargetUser.objects.create(
        integration=integration, remote_id="u-ada", user_name="ada", owner=ada, active=True, content_hash="-"
    )
    from integrations.models import TargetMembership

    TargetMembership.objects.create(integration=integration, group=groups["Sales"], member_remote_id=account.remote_id)
    mapping = admin_api.post(
        "/api/v1/birthright-mappings/",
        {"integration": integration.pk, "team": people["engineering"].pk, "groups": [groups["Sales"].pk]},
        format="json",
    ).json()
    Grant.objects.create(person=ada, group=groups["Sales"], mapping_ids=[mapping["id"]])
    policy = admin_api.post(
        "/api/v1/lifecycle-policies/",
        {"integration": integration.pk, "teams": [people["engineering"].pk], "mode": "simulate"},
        format="json",
    ).json()
    before = {
        (r["action_type"], r["subject"])
        for r in admin_api.get(f"/api/v1/lifecycle-policies/{policy['id']}/plan/").json()["results"]
    }
    assert ("MANAGE_RELATIONSHIPS", "remove from Sales") not in before

    assert admin_api.delete(f"/api/v1/birthright-mappings/{mapping['id']}/").status_code == 204
    after = admin_api.get(f"/api/v1/lifecycle-policies/{policy['id']}/plan/").json()["results"]
    removal = [r for r in after if r["subject"] == "remove from Sales"]
    assert [r["person_name"] for r in removal] == ["ada"]
    assert "no birthright mapping grants Sales" in removal[0]["cause"]


def test_marking_a_group_sensitive_answers_404_for_another_integrations_group(
    admin_api: APIClient, integration: Integration, groups: dict[str, TargetGroup]
) -> None:
    other = Integration.objects.create(name="Other", base_url="http://127.0.0.1:9/scim/v2")
    url = f"/api/v1/integrations/{other.pk}/groups/{groups['Sales'].pk}/sensitive/"
    assert admin_api.post(url, {"sensitive": True}, format="json").status_code == 404
    url = f"/api/v1/integrations/{integration.pk}/groups/{groups['Sales'].pk}/sensitive/"
    assert admin_api.post(url, {"sensitive": "yes"}, format="json").status_code == 400
    assert admin_api.post(url, {}, format="json").status_code == 400
    assert admin_api.get(url).json()["sensitive"] is False
    assert admin_api.post(url, {"sensitive": True}, format="json").json()["sensitive"] is True
    assert admin_api.post(url, {"sensitive": False}, format="json").json()["sensitive"] is False


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("", "application/json"),
        ("{", "application/json"),
        ("[]", "application/json"),
        ("null", "application/json"),
        ('{"sensitive": null}', "application/json"),
        ('{"sensitive": [1]}', "application/json"),
        ("sensitive=true", "application/x-www-form-urlencoded"),
    ],
)
def test_the_sensitive_route_answers_400_to_bad_bodies(
    admin_api: APIClient, integration: Integration, groups: dict[str, TargetGroup], body: str, content_type: str
) -> None:
    """The schema walk of tests/console/test_no_server_errors.py fills only ``{id}``: this route's
    ``{group_pk}`` is filled here."""
    url = f"/api/v1/integrations/{integration.pk}/groups/{groups['Sales'].pk}/sensitive/"
    response = admin_api.generic("POST", url, body, content_type=content_type)
    assert response.status_code == 400, response.content
    assert not SensitiveGroup.objects.exists()


def test_on_deleting_a_mapping_removes_only_what_it_alone_granted_in_the_application(
    peer: Peer,
    app: Integration,
    scim: ScimClient,
    groups_in_app: dict[str, TargetGroup],
    admin_api: APIClient,
) -> None:
    """Against the real SCIM server: two mappings grant Engineering, one of them Sales too;
    deleting that one takes Sales away and leaves Engineering, which the other still grants."""
    ada = push_user(scim, "ada@example.com")
    push_group(scim, "Eng team", [ada])
    push_group(scim, "Ops team", [ada])
    eng, ops = Team.objects.get(name="Eng team"), Team.objects.get(name="Ops team")
    engineering, sales = groups_in_app["Engineering"], groups_in_app["Sales"]
    for team, granted in ((eng, [engineering.pk]), (ops, [engineering.pk, sales.pk])):
        response = admin_api.post(
            "/api/v1/birthright-mappings/", {"integration": app.pk, "team": team.pk, "groups": granted}, format="json"
        )
        assert response.status_code == 201, response.content
    ops_mapping = BirthrightMapping.objects.get(team=ops)

    # Turned on: the review asks for Ada's account at once, and her groups once it exists.
    policy = admin_api.post(
        "/api/v1/lifecycle-policies/", {"integration": app.pk, "mode": "on", "teams": [eng.pk, ops.pk]}, format="json"
    ).json()
    assert policy["scope_sample"] == ["ada@example.com"]
    synced = run_queued(app)
    assert [a.action_type for a in synced] == [ActionType.SYNC_IDENTITIES]
    on = LifecyclePolicy.objects.get(pk=policy["id"])
    # What the worker's success sends (lifecycle_follow_up_task, after commit): her groups.
    wanted_apply(on, wanted_for(on, [Person.objects.get(username="ada@example.com").pk], accounts=False))
    run_queued(app)
    assert _members(peer, "Engineering") == {"ada@example.com"}
    assert _members(peer, "Sales") == {"ada@example.com"}

    assert admin_api.delete(f"/api/v1/birthright-mappings/{ops_mapping.pk}/").status_code == 204
    removal = Action.objects.filter(integration=app, action_type=ActionType.MANAGE_RELATIONSHIPS).latest("pk")
    assert removal.target_group_id == sales.pk
    assert "no birthright mapping grants Sales any more" in removal.cause["text"]
    run_queued(app)
    assert _members(peer, "Sales") == set()
    assert _members(peer, "Engineering") == {"ada@example.com"}
    assert list(Grant.objects.filter(person__username="ada@example.com").values_list("group_id", flat=True)) == [
        engineering.pk
    ]


def _members(peer: Peer, group_name: str) -> set[str]:
    found = peer.http.get("/Groups", params={"filter": f'displayName eq "{group_name}"'}).json()["Resources"][0]
    ids = {m["value"] for m in found.get("members") or []}
    return {peer.http.get(f"/Users/{pk}").json()["userName"] for pk in ids}
