"""Navigation: the global search, breadcrumbs, the integration's tabs and a page per extraction run."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from console.accounts.models import Person, Team
from console.audit.models import AuditEvent
from console.audit.services import audit_record
from integrations.extraction import extraction_run_cancel, extraction_run_execute, flow
from integrations.models import ExtractionRun, Integration, TargetGroup, TargetUser
from integrations.services import integration_delete
from provisioning.models import Action, ActionState

pytestmark = pytest.mark.django_db


def _client(person: Person) -> Client:
    client = Client()
    client.force_login(person)
    return client


@pytest.fixture
def app() -> Integration:
    return Integration.objects.create(name="Slack", base_url="https://slack.example.com/scim/v2")


def _account(app: Integration, user_name: str, **fields: Any) -> TargetUser:
    return TargetUser.objects.create(
        integration=app, remote_id=f"r-{user_name}", user_name=user_name, content_hash="-", **fields
    )


def _group(app: Integration, name: str) -> TargetGroup:
    return TargetGroup.objects.create(integration=app, remote_id=f"g-{name}", display_name=name, content_hash="-")


def _search(client: Client, q: str, *, dropdown: bool = False) -> str:
    if dropdown:
        response = client.get(reverse("search"), {"q": q, "part": "suggestions"}, headers={"HX-Request": "true"})
    else:
        response = client.get(reverse("search"), {"q": q})
    assert response.status_code == 200
    return response.content.decode()


def test_search_finds_people_accounts_groups_teams_and_integrations_each_linking_to_its_page(
    admin_client: Client, make_person: Callable[..., Person], app: Integration
) -> None:
    jane = make_person("jane.doe", email="jane@example.com", display_name="Jane Doe")
    account = _account(app, "Jane.Doe@example.com")
    group = _group(app, "Janitors")
    team = Team.objects.create(name="Jan team")
    integration = Integration.objects.create(name="Jansky", base_url="https://jansky.example.com/scim/v2")

    page = _search(admin_client, "jan")

    assert reverse("person_detail", args=[jane.pk]) in page
    assert reverse("target_user_detail", args=[app.pk, account.pk]) in page
    assert reverse("target_group_detail", args=[app.pk, group.pk]) in page
    assert reverse("team_detail", args=[team.pk]) in page
    assert reverse("integration_detail", args=[integration.pk]) in page
    # Grouped by kind, in a fixed order.
    kinds = ["search-people", "search-accounts", "search-groups", "search-integrations", "search-teams"]
    positions = [page.index(f'data-testid="{kind}"') for kind in kinds]
    assert positions == sorted(positions)
    assert "in Slack" in page  # an account names its integration


def test_search_matches_from_the_beginning_whatever_the_case(admin_client: Client, app: Integration) -> None:
    _account(app, "Jane.Doe@example.com")
    assert "Jane.Doe@example.com" in _search(admin_client, "JANE.d")
    assert "Jane.Doe@example.com" not in _search(admin_client, "doe")  # not a prefix: the index serves prefixes
    assert 'data-testid="search-nothing"' in _search(admin_client, "zzz-nobody")


@pytest.mark.parametrize("typed", ["{pk}", "#{pk}", "action {pk}"])
def test_an_action_is_found_by_its_number(admin_client: Client, app: Integration, typed: str) -> None:
    action = Action.objects.create(
        integration=app, action_type="DEPROVISION_IDENTITY", state=ActionState.PENDING_APPROVAL, subject="jane"
    )
    page = _search(admin_client, typed.format(pk=action.pk))
    assert reverse("action_detail", args=[action.pk]) in page
    assert f"Action {action.pk}: deprovision identity jane" in page
    assert "Waiting for approval" in page or "Pending approval" in page


def test_the_dropdown_holds_a_few_of_each_kind_and_the_page_more(admin_client: Client, app: Integration) -> None:
    for n in range(30):
        _account(app, f"bulk{n:02}@example.com")
    dropdown = _search(admin_client, "bulk", dropdown=True)
    assert "<html" not in dropdown  # the partial only
    assert dropdown.count("/users/") == 5
    assert "All results for" in dropdown
    page = _search(admin_client, "bulk")
    assert page.count(f"/integrations/{app.pk}/users/") == 25
    assert "The first 25" in page


def test_search_leaves_out_deleted_integrations_and_removed_accounts(
    admin_client: Client, admin: Person, app: Integration
) -> None:
    _account(app, "gone@example.com", removed_at=timezone.now())
    other = Integration.objects.create(name="Old", base_url="https://old.example.com/scim/v2")
    _account(other, "archived@example.com")
    integration_delete(actor=admin, integration=other)
    page = _search(admin_client, "gone")
    assert "gone@example.com" not in page
    assert "archived@example.com" not in _search(admin_client, "archived")


def test_search_costs_a_few_bounded_queries(
    admin_client: Client, app: Integration, django_assert_max_num_queries: Any
) -> None:
    for n in range(40):
        _account(app, f"q{n:02}@example.com")
        _group(app, f"q-group-{n:02}")
    with django_assert_max_num_queries(14):  # session, person, roles; one per kind
        _search(admin_client, "q")


def test_search_needs_console_view(make_person: Callable[..., Person]) -> None:
    assert Client().get(reverse("search"), {"q": "x"}).status_code == 302  # to sign in
    nobody = _client(make_person("no-role", roles=[]))
    assert nobody.get(reverse("search"), {"q": "x"}).status_code == 403
    viewer = _client(make_person("viewer", roles=["viewer"]))
    assert viewer.get(reverse("search"), {"q": "x"}).status_code == 200


def test_the_top_bar_searches_as_you_type_and_without_script(admin_client: Client) -> None:
    page = admin_client.get(reverse("dashboard")).content.decode()
    assert 'role="search"' in page
    assert f'action="{reverse("search")}"' in page
    assert 'hx-trigger="input changed delay:250ms' in page
    assert 'hx-target="#search-suggestions"' in page


def _crumbs(page: str) -> str:
    start = page.index('data-testid="breadcrumbs"')
    return page[start : page.index("</nav>", start)]


def test_detail_pages_show_where_they_sit(admin_client: Client, app: Integration, admin: Person) -> None:
    account = _account(app, "jane@example.com")
    group = _group(app, "Engineers")
    team = Team.objects.create(name="Finance")
    action = Action.objects.create(integration=app, action_type="SYNC_IDENTITIES", state="queued", subject="jane")
    run = ExtractionRun.objects.create(integration=app, trigger="manual", status="succeeded")
    expected = {
        reverse("target_user_detail", args=[app.pk, account.pk]): ["Integrations", "Slack", "Users", account.user_name],
        reverse("target_group_detail", args=[app.pk, group.pk]): ["Integrations", "Slack", "Groups", "Engineers"],
        reverse("extraction_run_detail", args=[app.pk, run.pk]): ["Integrations", "Slack", "Runs", f"Run {run.pk}"],
        reverse("action_detail", args=[action.pk]): ["Actions", f"Action {action.pk}"],
        reverse("person_detail", args=[admin.pk]): ["People", admin.username],
        reverse("team_detail", args=[team.pk]): ["Teams", "Finance"],
        reverse("integration_settings", args=[app.pk]): ["Integrations", "Slack", "Settings"],
    }
    for url, trail in expected.items():
        crumbs = _crumbs(admin_client.get(url).content.decode())
        positions = [crumbs.index(label) for label in trail]
        assert positions == sorted(positions), (url, crumbs)
        assert f'<span aria-current="page">{trail[-1]}</span>' in crumbs, crumbs
    users_crumbs = _crumbs(admin_client.get(reverse("target_user_detail", args=[app.pk, account.pk])).content.decode())
    assert f'href="{reverse("integration_users", args=[app.pk])}"' in users_crumbs


def test_each_tab_of_an_integration_has_its_own_page_and_panels(admin_client: Client, app: Integration) -> None:
    tabs = {
        "integration_detail": ["Lifecycle health", 'id="progress"', 'id="dialect"', "Extractions and actions"],
        "integration_users": ["caption", "Users"],
        "integration_groups": ["Groups"],
        "integration_provisioning": [
            'id="approval-policies"',
            'id="transformers"',
            'data-testid="provisioning-summary"',
        ],
        "integration_runs": ["Extraction runs"],
        "integration_settings": ['data-testid="integration-settings"', 'data-testid="extraction-interval"'],
    }
    for name, panels in tabs.items():
        response = admin_client.get(reverse(name, args=[app.pk]))
        assert response.status_code == 200, name
        page = response.content.decode()
        for label in ["Overview", "Users", "Groups", "Provisioning", "Runs", "Settings"]:
            assert f">{label}</a>" in page, (name, label)
        assert page.count('aria-current="page"') >= 1
        for panel in panels:
            assert panel in page, (name, panel)
    overview = admin_client.get(reverse("integration_detail", args=[app.pk])).content.decode()
    assert 'id="transformers"' not in overview
    assert 'id="approval-policies"' not in overview
    assert reverse("integration_delete", args=[app.pk]) not in overview
    settings_page = admin_client.get(reverse("integration_settings", args=[app.pk])).content.decode()
    assert reverse("integration_delete", args=[app.pk]) in settings_page
    assert reverse("integration_edit", args=[app.pk]) in settings_page
    assert 'id="dialect"' not in settings_page


def _finished_run(app: Integration) -> ExtractionRun:
    now = timezone.now()
    return ExtractionRun.objects.create(
        integration=app,
        trigger="manual",
        status="succeeded",
        queued_at=now - timedelta(seconds=80),
        started_at=now - timedelta(seconds=75),
        finished_at=now - timedelta(seconds=3),
        users_seen=1234,
        groups_seen=56,
        users_total=1240,
        created=7,
        updated=8,
        removed=9,
        pages=13,
        requests=21,
        warnings=["the application's totalResults was wrong"],
    )


def test_the_run_page_shows_its_numbers_and_who_asked(admin_client: Client, admin: Person, app: Integration) -> None:
    run = _finished_run(app)
    audit_record(verb="integration.extraction_requested", actor=admin, target=app, details={"run": run.pk})

    page = admin_client.get(reverse("extraction_run_detail", args=[app.pk, run.pk])).content.decode()

    assert "Succeeded" in page
    assert "Read 1234 users and 56 groups, with 1 warning" in page
    assert "7 / 8 / 9" in page
    assert "1234 of 1240 reported" in page
    assert '<dd data-testid="run-pages">13</dd>' in page
    assert '<dd data-testid="run-requests">21</dd>' in page
    assert "72.0 s" in page
    assert "Warning: the application&#x27;s totalResults was wrong" in page
    assert admin.username in page.split('data-testid="run-requested-by"')[1][:200]
    assert 'data-testid="run-cancel"' not in page  # it ended
    runs = admin_client.get(reverse("integration_runs", args=[app.pk])).content.decode()
    assert f'href="{reverse("extraction_run_detail", args=[app.pk, run.pk])}"' in runs
    overview = admin_client.get(reverse("integration_detail", args=[app.pk])).content.decode()
    assert f'href="{reverse("extraction_run_detail", args=[app.pk, run.pk])}"' in overview  # its recent runs too


def test_the_run_page_of_another_integration_is_not_found(admin_client: Client, app: Integration) -> None:
    other = Integration.objects.create(name="Other", base_url="https://other.example.com/scim/v2")
    run = _finished_run(other)
    assert admin_client.get(reverse("extraction_run_detail", args=[app.pk, run.pk])).status_code == 404


def test_cancel_stops_a_queued_run_and_says_who(
    admin_client: Client, admin: Person, app: Integration, make_person: Callable[..., Person]
) -> None:
    run = ExtractionRun.objects.create(integration=app, trigger="schedule")
    url = reverse("extraction_run_detail", args=[app.pk, run.pk])
    assert 'data-testid="run-cancel"' in admin_client.get(url).content.decode()

    viewer = _client(make_person("viewer", roles=["viewer"]))
    assert viewer.post(reverse("extraction_run_cancel", args=[app.pk, run.pk])).status_code == 403
    response = admin_client.post(reverse("extraction_run_cancel", args=[app.pk, run.pk]))

    assert response.status_code == 302
    assert response["Location"] == url
    run.refresh_from_db()
    assert run.status == ExtractionRun.Status.FAILED
    assert run.error == f"cancelled by {admin.username}"
    assert run.finished_at is not None
    event = AuditEvent.objects.get(verb="integration.extraction_cancelled")
    assert event.actor_id == admin.pk
    assert event.details == {"run": run.pk}
    page = admin_client.get(url).content.decode()
    assert f"cancelled by {admin.username}" in page
    assert 'data-testid="run-cancel"' not in page
    # The worker that picks it up later finds nothing to do.
    assert extraction_run_execute(run_id=run.pk) is None
    run.refresh_from_db()
    assert run.error == f"cancelled by {admin.username}"
    # Cancelling an ended run changes nothing.
    assert extraction_run_cancel(run=run, actor=admin) is False
    assert AuditEvent.objects.filter(verb="integration.extraction_cancelled").count() == 1


class _IdleClient:
    """Stands in for the SCIM client of a run whose reading is replaced below."""

    before_request = None
    defer_learning = False
    requests_made = 3

    def save_learned(self) -> None:
        pass


def test_a_run_cancelled_while_running_is_not_overwritten_by_its_late_finish(
    admin: Person, app: Integration, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.discover_extensions = False
    app.save()
    run = ExtractionRun.objects.create(integration=app, trigger="manual")

    def read_users(run: ExtractionRun, client: Any, counts: Any) -> dict[str, int]:
        # The admin cancels while the worker reads; the worker does not notice and finishes.
        assert extraction_run_cancel(run=ExtractionRun.objects.get(pk=run.pk), actor=admin)
        counts.created = 5
        return {}

    monkeypatch.setattr(flow, "_extract_users", read_users)
    monkeypatch.setattr(flow, "_extract_groups", lambda *args: None)
    monkeypatch.setattr(flow, "_link_members_by_user_name", lambda *args: None)

    finished = extraction_run_execute(run_id=run.pk, client=_IdleClient())  # type: ignore[arg-type]

    assert finished is not None
    run.refresh_from_db()
    assert run.status == ExtractionRun.Status.FAILED
    assert run.error == f"cancelled by {admin.username}"
    assert run.created == 0
