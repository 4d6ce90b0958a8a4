"""The Lifecycle tab of an integration: the policy form, the live scope preview, mappings,
sensitive groups and the simulated plan."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable

import pytest
from django.test import Client

from console.accounts.models import Person, Team, TeamMembership
from integrations.models import Integration, TargetGroup
from lifecycle.models import BirthrightMapping, LifecyclePolicy, MappingState, PolicyMode, SensitiveGroup

pytestmark = pytest.mark.django_db


@pytest.fixture
def integration() -> Integration:
    return Integration.objects.create(name="Wiki", base_url="http://127.0.0.1:9/scim/v2")


@pytest.fixture
def team(make_person: Callable[..., Person]) -> Team:
    team = Team.objects.create(name="Engineering team")
    for name in ("ada", "grace"):
        TeamMembership.objects.create(team=team, person=make_person(name, roles=[], department="Engineering"))
    make_person("linus", roles=[], department="Sales")
    return team


@pytest.fixture
def group(integration: Integration) -> TargetGroup:
    return TargetGroup.objects.create(integration=integration, remote_id="g1", display_name="Payroll", content_hash="-")


def client_for(person: Person) -> Client:
    client = Client()
    client.force_login(person)
    return client


def test_the_integration_pages_have_a_lifecycle_tab(admin_client: Client, integration: Integration) -> None:
    page = admin_client.get(f"/integrations/{integration.pk}/users/").content.decode()
    assert f'href="/integrations/{integration.pk}/lifecycle/">Lifecycle</a>' in page
    tab = admin_client.get(f"/integrations/{integration.pk}/lifecycle/").content.decode()
    assert f'href="/integrations/{integration.pk}/lifecycle/" aria-current="page">Lifecycle</a>' in tab
    assert "Simulate (plan and record, send nothing)" in tab
    assert "The console works out what it would do and lists it below; nothing is sent." in tab


def test_saving_the_form_sets_the_policy_and_simulating_shows_the_plan(
    admin_client: Client, integration: Integration, team: Team
) -> None:
    response = admin_client.post(
        f"/integrations/{integration.pk}/lifecycle/",
        {
            "mode": "simulate",
            "scope": "teams",
            "teams": [str(team.pk)],
            "condition_attribute": ["department", ""],
            "condition_operator": ["equals", "equals"],
            "condition_values": ["Engineering", ""],
            "on_leaving_scope": "remove_groups",
            "retention_days": "",
        },
    )
    assert response.status_code == 302
    policy = LifecyclePolicy.objects.get(integration=integration)
    assert policy.mode == PolicyMode.SIMULATE
    assert list(policy.teams.all()) == [team]
    assert policy.conditions == [{"attribute": "department", "operator": "equals", "values": ["Engineering"]}]
    assert (policy.on_leaving_scope, policy.retention_days) == ("remove_groups", None)
    page = admin_client.get(response["Location"]).content.decode()
    assert "2 people in scope</strong>: ada, grace" in page
    assert "2 changes the policy would make" in page
    assert page.count('data-testid="plan-row"') == 2
    assert "the lifecycle policy of Wiki creates the account" in page
    plan = admin_client.get(f"/integrations/{integration.pk}/lifecycle/plan/")
    assert plan.status_code == 200
    assert "Sync identity: ada" in plan.content.decode()
    assert '<option value="" selected>Any</option>' in plan.content.decode()  # the filter's empty choice in words
    assert "---------" not in plan.content.decode()
    csv = admin_client.get(f"/integrations/{integration.pk}/lifecycle/plan/?as=csv")
    assert b"Sync identity: grace" in b"".join(csv.streaming_content)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"retention_days": "0"}, "Retention is a number of days from 1 to 36500"),
        ({"retention_days": "soon"}, "Retention is a number of days, or empty for never."),
        ({"scope": "teams"}, "Choose at least one team, or another scope."),
        ({"scope": "conditions"}, "Give at least one condition, or another scope."),
        ({"mode": "sometimes"}, "The mode is one of off, simulate, on."),
    ],
)
def test_errors_stand_beside_their_field_and_keep_what_was_typed(
    admin_client: Client, integration: Integration, fields: dict[str, str], message: str
) -> None:
    body = {"mode": "off", "scope": "everyone", "on_leaving_scope": "deprovision", "retention_days": "30", **fields}
    response = admin_client.post(f"/integrations/{integration.pk}/lifecycle/", body)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not LifecyclePolicy.objects.exists()


def test_the_preview_follows_the_unsaved_form(admin_client: Client, integration: Integration, team: Team) -> None:
    url = f"/integrations/{integration.pk}/lifecycle/preview/"
    everyone = admin_client.get(url, {"scope": "everyone"}, HTTP_HX_REQUEST="true").content.decode()
    assert "people in scope</strong>: ada, grace, linus" in everyone
    narrowed = admin_client.get(
        url,
        {
            "scope": "everyone",
            "condition_attribute": "department",
            "condition_operator": "in",
            "condition_values": "sales, marketing",
        },
    ).content.decode()
    assert "1 person in scope</strong>: linus" in narrowed
    assert "<html" not in narrowed
    missing = admin_client.get(url, {"scope": "teams"}).content.decode()
    assert "Choose at least one team" in missing
    assert not LifecyclePolicy.objects.exists()


def test_a_viewer_sees_the_tab_but_cannot_save(
    integration: Integration, make_person: Callable[..., Person], group: TargetGroup
) -> None:
    viewer = client_for(make_person("watcher", roles=["viewer"]))
    page = viewer.get(f"/integrations/{integration.pk}/lifecycle/").content.decode()
    assert "Save policy" not in page
    assert "Add mapping" not in page
    assert viewer.post(f"/integrations/{integration.pk}/lifecycle/", {"mode": "on"}).status_code == 403
    assert viewer.post(f"/integrations/{integration.pk}/lifecycle/sensitive/", {"group": group.pk}).status_code == 403


def test_mappings_from_the_page_need_a_second_admin_for_a_sensitive_group(
    admin: Person,
    admin_client: Client,
    integration: Integration,
    team: Team,
    group: TargetGroup,
    make_person: Callable[..., Person],
) -> None:
    url = f"/integrations/{integration.pk}/lifecycle/"
    admin_client.post(f"{url}sensitive/", {"group": group.pk, "sensitive": "1"})
    assert SensitiveGroup.objects.filter(group=group).exists()
    response = admin_client.post(f"{url}mappings/", {"team": team.pk, "groups": [group.pk]})
    assert response.status_code == 302
    mapping = BirthrightMapping.objects.get()
    assert mapping.state == MappingState.PENDING
    page = admin_client.get(url).content.decode()
    assert "Waiting for a second admin" in page
    assert "Waits for another admin" in page  # the creator gets no Approve button
    assert f"{url}mappings/{mapping.pk}/approve/" not in page

    admin_client.post(f"{url}mappings/{mapping.pk}/approve/")
    mapping.refresh_from_db()
    assert mapping.state == MappingState.PENDING

    second = client_for(make_person("second", roles=["admin"]))
    assert f"{url}mappings/{mapping.pk}/approve/" in second.get(url).content.decode()
    second.post(f"{url}mappings/{mapping.pk}/approve/")
    mapping.refresh_from_db()
    assert (mapping.state, mapping.decided_by.username if mapping.decided_by else "") == ("active", "second")

    bad = admin_client.post(f"{url}mappings/", {"team": team.pk})
    assert bad.status_code == 400
    assert "Choose at least one group." in bad.content.decode()

    asked = admin_client.post(f"{url}mappings/{mapping.pk}/delete/", {"confirm": "ask"})
    assert asked.status_code == 200  # the confirmation page, without script
    assert BirthrightMapping.objects.exists()
    admin_client.post(f"{url}mappings/{mapping.pk}/delete/", {"confirm": "done"})
    assert not BirthrightMapping.objects.exists()


def test_a_mapping_of_another_integration_is_404(
    admin_client: Client, integration: Integration, team: Team, group: TargetGroup
) -> None:
    other = Integration.objects.create(name="Other", base_url="http://127.0.0.1:9/scim/v2")
    mapping = BirthrightMapping.objects.create(integration=integration, team=team)
    for verb in ("approve", "reject", "delete"):
        response = admin_client.post(f"/integrations/{other.pk}/lifecycle/mappings/{mapping.pk}/{verb}/")
        assert response.status_code == 404


def test_turned_on_where_provisioning_is_disabled_the_page_says_why_nothing_happened(
    admin_client: Client, integration: Integration, team: Team
) -> None:
    from console.accounts.models import IdentityEvent

    ada = Person.objects.get(username="ada")
    newest = IdentityEvent.objects.create(person=ada, kind=IdentityEvent.Kind.UPDATED, changes={"title": "x"}).pk
    body = {"mode": "on", "scope": "teams", "teams": [str(team.pk)], "on_leaving_scope": "deprovision"}
    response = admin_client.post(f"/integrations/{integration.pk}/lifecycle/", body)
    assert response.status_code == 302
    policy = LifecyclePolicy.objects.get(integration=integration)
    assert policy.mode == PolicyMode.ON
    # The refused review still stands for the past: the consumer starts after the newest event.
    assert policy.event_cursor == newest
    page = admin_client.get(response["Location"]).content.decode()
    assert 'data-testid="policy-refused"' in page
    assert "The policy could not act" in page


def test_turning_the_policy_on_is_confirmed_first_and_the_reason_recorded(
    admin_client: Client, integration: Integration, team: Team
) -> None:
    from console.audit.models import AuditEvent

    url = f"/integrations/{integration.pk}/lifecycle/"
    body = {"mode": "on", "scope": "teams", "teams": [str(team.pk)], "on_leaving_scope": "deprovision"}
    asked = admin_client.post(url, {**body, "confirm": "ask", "confirm_label": "Turn on"})
    assert asked.status_code == 200
    page = asked.content.decode()
    assert "Turn on?" in page
    assert "each person in scope (2) gets an account in Wiki" in page
    assert f'<input type="hidden" name="teams" value="{team.pk}">' in page
    assert not LifecyclePolicy.objects.exists()
    done = admin_client.post(url, {**body, "confirm": "done", "reason": "pilot first"})
    assert done.status_code == 302
    assert LifecyclePolicy.objects.get().mode == PolicyMode.ON
    event = AuditEvent.objects.get(verb="lifecycle.policy_created")
    assert event.details["reason"] == "pilot first"
    # Simulating asks nothing: nothing is sent.
    simulate = admin_client.post(url, {**body, "mode": "simulate", "confirm": "ask"})
    assert simulate.status_code == 302


def test_while_the_policy_is_on_adding_or_approving_a_mapping_is_confirmed_first(
    admin_client: Client, integration: Integration, team: Team, group: TargetGroup
) -> None:
    LifecyclePolicy.objects.create(integration=integration, mode=PolicyMode.ON, all_active_people=True)
    pending = BirthrightMapping.objects.create(integration=integration, team=team, state=MappingState.PENDING)
    pending.groups.set([group])
    url = f"/integrations/{integration.pk}/lifecycle/"
    page = admin_client.get(url).content.decode()
    assert 'data-confirm-label="Add mapping"' in page
    assert 'data-confirm-label="Approve mapping"' in page
    asked = admin_client.post(
        f"{url}mappings/", {"team": team.pk, "groups": [group.pk], "confirm": "ask", "confirm_label": "Add mapping"}
    )
    assert asked.status_code == 200
    assert "Add mapping?" in asked.content.decode()
    # Without the script, the page says what the mapping does, as the dialog does, not "This
    # changes the application."
    words = asked.content.decode()
    assert (
        "Adds the mapping of team Engineering team to Payroll in Wiki: while the policy is on, "
        "the people it covers are added to these groups at once." in words
    )
    assert "This changes the application." not in words
    assert "sensitive" not in words
    SensitiveGroup.objects.create(group=group)
    asked = admin_client.post(
        f"{url}mappings/", {"team": team.pk, "groups": [group.pk], "confirm": "ask", "confirm_label": "Add mapping"}
    )
    assert "Payroll is sensitive: the mapping waits for a second admin&#x27;s approval first." in asked.content.decode()
    # A mistake is named before anyone is asked to confirm.
    wrong = admin_client.post(
        f"{url}mappings/", {"groups": [group.pk], "confirm": "ask", "confirm_label": "Add mapping"}
    )
    assert wrong.status_code == 400
    assert "Choose a team or give at least one condition." in wrong.content.decode()
    assert "Add mapping?" not in wrong.content.decode()
    assert BirthrightMapping.objects.count() == 1
    asked = admin_client.post(
        f"{url}mappings/{pending.pk}/approve/", {"confirm": "ask", "confirm_label": "Approve mapping"}
    )
    assert "Approve mapping?" in asked.content.decode()
    pending.refresh_from_db()
    assert pending.state == MappingState.PENDING


def test_the_mappings_table_counts_and_exports_who_groups_state_and_who_made_and_decided(
    admin_client: Client, admin: Person, integration: Integration, team: Team, group: TargetGroup
) -> None:
    SensitiveGroup.objects.create(group=group)
    staff = TargetGroup.objects.create(integration=integration, remote_id="g2", display_name="Staff", content_hash="-")
    active = BirthrightMapping.objects.create(integration=integration, team=team, created_by=admin)
    active.groups.set([staff])
    waiting = BirthrightMapping.objects.create(
        integration=integration,
        conditions=[{"attribute": "department", "operator": "equals", "values": ["Sales"]}],
        state=MappingState.PENDING,
        created_by=admin,
    )
    waiting.groups.set([group, staff])
    url = f"/integrations/{integration.pk}/lifecycle/"
    page = admin_client.get(url).content.decode()
    assert '<p class="table-total" data-total="2"><strong>2</strong> mappings</p>' in page
    assert f'<span id="mapping-{active.pk}" data-testid="mapping-row">Team Engineering team</span>' in page
    assert 'Payroll <span class="badge warn">sensitive</span>, Staff' in page
    assert '<span class="badge warn">Waiting for a second admin</span>' in page
    assert "<small>Waits for another admin</small>" in page  # the one who made it cannot approve it

    exported = admin_client.get(f"{url}?as=csv&ordering=-who")
    assert exported["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode())))  # type: ignore[attr-defined]
    assert [(r["who"], r["groups"], r["state_label"], r["made_by"], r["decided_by"]) for r in rows] == [
        ("Team Engineering team", "Staff", "In effect", admin.username, ""),
        ("Department equals “Sales”", "Payroll (sensitive), Staff", "Waiting for a second admin", admin.username, ""),
    ]
    items = json.loads(b"".join(admin_client.get(f"{url}?as=json").streaming_content))  # type: ignore[attr-defined]
    assert [i["id"] for i in items] == [active.pk, waiting.pk]
    assert items[1]["conditions"] == waiting.conditions
    assert items[1]["state"] == "pending"
