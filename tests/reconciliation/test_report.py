"""The drift report: the Drift tab (counts, items, filter, export, Check now), the API
(``/api/v1/integrations/{id}/drift/``, ``…/runs/``, ``…/compute/``), and the counts on the
integration's overview and the dashboard. Items and runs are made directly."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from console.accounts.models import Person
from console.audit.models import AuditEvent
from integrations.models import Integration, TargetGroup, TargetUser
from reconciliation.models import DriftCategory, DriftItem, DriftRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def integration() -> Integration:
    return Integration.objects.create(name="Wiki", base_url="http://127.0.0.1:9/scim/v2")


@pytest.fixture
def world(integration: Integration, make_person: Callable[..., Person]) -> dict[str, Any]:
    """An orphan account, an attribute drift, a missing account and a missing membership, and two runs."""
    ada = make_person("ada", roles=[], department="Engineering")
    bob = make_person("bob", roles=[])
    ada_account = TargetUser.objects.create(
        integration=integration, remote_id="u-ada", user_name="ada", content_hash="-"
    )
    stray = TargetUser.objects.create(integration=integration, remote_id="u-x", user_name="stray", content_hash="-")
    staff = TargetGroup.objects.create(integration=integration, remote_id="g-s", display_name="Staff", content_hash="-")
    now = timezone.now()
    items = {
        "orphan": DriftItem.objects.create(
            integration=integration,
            category=DriftCategory.ORPHAN,
            key=f"account:{stray.pk}",
            target_user=stray,
            rule="no person owns it",
            first_seen_at=now - timedelta(days=3),
        ),
        "attribute": DriftItem.objects.create(
            integration=integration,
            category=DriftCategory.ATTRIBUTE,
            key=f"account:{ada_account.pk}",
            target_user=ada_account,
            person=ada,
            rule="policy: in scope (everyone)",
            detail={"attributes": [{"path": "title", "application": "Engineer", "wanted": "Staff engineer"}]},
            first_seen_at=now - timedelta(hours=5),
        ),
        "missing": DriftItem.objects.create(
            integration=integration,
            category=DriftCategory.MISSING,
            key=f"person:{bob.pk}",
            person=bob,
            rule="policy: in scope (everyone)",
            detail={"user_name": "bob"},
        ),
        "membership": DriftItem.objects.create(
            integration=integration,
            category=DriftCategory.MISSING_MEMBERSHIP,
            key=f"membership:{staff.pk}:u-ada",
            target_user=ada_account,
            person=ada,
            group=staff,
            rule="mapping 4: everyone → Staff",
            detail={"user_name": "ada", "active": True, "mappings": [4, 7]},
        ),
    }
    runs = [
        DriftRun.objects.create(
            integration=integration,
            trigger=DriftRun.Trigger.EXTRACTION,
            started_at=now - timedelta(hours=2),
            finished_at=now - timedelta(hours=2),
            counts=dict.fromkeys(DriftCategory.values, 0) | {"orphan": 1},
        ),
        DriftRun.objects.create(
            integration=integration,
            trigger=DriftRun.Trigger.ON_DEMAND,
            started_at=now - timedelta(minutes=5),
            finished_at=now - timedelta(minutes=5),
            counts=dict.fromkeys(DriftCategory.values, 0)
            | {"orphan": 1, "attribute": 1, "missing": 1, "missing_membership": 1},
        ),
    ]
    return {"items": items, "runs": runs, "ada": ada, "bob": bob, "staff": staff, "account": ada_account}


def client_for(person: Person) -> Client:
    client = Client()
    client.force_login(person)
    return client


def body(response: Any) -> bytes:
    """An export's bytes (it is streamed)."""
    return b"".join(response.streaming_content)


# The page


def test_the_tab_counts_each_category_and_lists_the_open_items_with_links(
    integration: Integration, world: dict[str, Any], make_person: Callable[..., Person]
) -> None:
    page = client_for(make_person("viewer", roles=["viewer"])).get(f"/integrations/{integration.pk}/drift/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="drift-count-all"><strong>4</strong> open in all' in html
    assert f'href="/integrations/{integration.pk}/drift/?category=orphan"' in html
    assert "<strong>1</strong> orphan account" in html
    # category in words, account, person and group linked
    assert "Missing membership" in html
    assert f'href="/integrations/{integration.pk}/users/{world["account"].pk}/">ada</a>' in html
    assert f'href="/people/{world["ada"].pk}/">ada</a>' in html
    assert f'href="/integrations/{integration.pk}/groups/{world["staff"].pk}/">Staff</a>' in html
    # attribute drift as a before/after, since when relative and exact
    assert '<dt>title</dt><dd><span class="before" title="In the application">Engineer</span>' in html
    assert "Staff engineer" in html
    assert "3\xa0days ago" in html
    assert "<time" in html
    # the last computation in words, the chart with its numbers
    assert "Last computed 5\xa0minutes ago" in html
    assert "on demand" in html
    assert "Succeeded" in html
    assert f'data-testid="chart-drift-{integration.pk}"' in html
    assert "<summary>Numbers</summary>" in html
    # what the computation noted, in words: no JSON booleans or lists
    assert "<dt>active</dt><dd>yes</dd><dt>mappings</dt><dd>4, 7</dd>" in html
    # the viewer may not check now, but finds the plans
    assert "Check now" not in html
    assert f'<a class="button" href="/integrations/{integration.pk}/plans/">Plans</a>' in html


def test_the_tab_filters_by_category_and_says_a_bad_one_beside_the_field(
    integration: Integration, world: dict[str, Any], admin_client: Client
) -> None:
    html = admin_client.get(f"/integrations/{integration.pk}/drift/?category=attribute").content.decode()
    rows = html.split("<tbody>")[1].split("</tbody>")[0]
    assert rows.count("<tr ") == 1
    assert "Attribute drift" in rows
    bad = admin_client.get(f"/integrations/{integration.pk}/drift/?category=everything")
    assert bad.status_code == 200
    assert "Select a valid choice" in bad.content.decode()
    assert "No open drift matches." in bad.content.decode()


def test_the_tab_sorts_by_since_and_pages(
    integration: Integration, world: dict[str, Any], admin_client: Client
) -> None:
    html = admin_client.get(f"/integrations/{integration.pk}/drift/?ordering=since&page_size=2").content.decode()
    rows = html.split("<tbody>")[1].split("</tbody>")[0]
    assert rows.index("stray") < rows.index("Attribute drift")  # three days before five hours
    assert rows.count("<tr ") == 2
    assert "cursor=" in html


def test_the_tab_exports_csv_and_json(integration: Integration, world: dict[str, Any], admin_client: Client) -> None:
    csv = body(admin_client.get(f"/integrations/{integration.pk}/drift/?as=csv")).decode()
    header = csv.splitlines()[0]
    assert header == ("category,category_label,account,person,group,rule,differs,first_seen_at,first_seen,last_seen_at")
    assert "title: Engineer → Staff engineer" in csv
    response = admin_client.get(f"/integrations/{integration.pk}/drift/?as=json&category=orphan")
    rows = json.loads(body(response))
    assert [(r["category"], r["account"], r["rule"]) for r in rows] == [("orphan", "stray", "no person owns it")]


def test_an_integration_without_drift_says_what_drift_is_and_when_it_is_computed(
    integration: Integration, admin_client: Client
) -> None:
    html = admin_client.get(f"/integrations/{integration.pk}/drift/").content.decode()
    assert 'data-testid="drift-empty"' in html
    assert "Drift is where an application disagrees" in html
    assert "computed after every successful extraction" in html
    assert "Never computed yet." in html
    assert 'id="table-region"' not in html


def test_a_failed_computation_says_its_error_and_what_to_do(integration: Integration, admin_client: Client) -> None:
    DriftRun.objects.create(
        integration=integration, trigger=DriftRun.Trigger.EXTRACTION, status=DriftRun.Status.FAILED, error="boom."
    )
    html = admin_client.get(f"/integrations/{integration.pk}/drift/").content.decode()
    assert "Failed" in html
    assert "The last computation failed: boom. Check the integration" in html


def test_check_now_queues_a_computation_and_audits_it(
    integration: Integration, admin_client: Client, django_capture_on_commit_callbacks: Any, monkeypatch: Any
) -> None:
    queued: list[dict[str, Any]] = []
    from reconciliation import tasks

    monkeypatch.setattr(tasks.drift_compute_task, "delay", lambda **kw: queued.append(kw))
    page = admin_client.get(f"/integrations/{integration.pk}/drift/").content.decode()
    assert f'action="/integrations/{integration.pk}/drift/check/"' in page
    assert "csrfmiddlewaretoken" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/integrations/{integration.pk}/drift/check/")
    assert response.status_code == 302
    assert response["Location"] == f"/integrations/{integration.pk}/drift/"
    assert queued == [{"integration_id": integration.pk}]
    assert AuditEvent.objects.filter(verb="drift.requested", target_id=str(integration.pk)).exists()


def test_check_now_needs_integration_management_and_a_post(
    integration: Integration, make_person: Callable[..., Person]
) -> None:
    operator = client_for(make_person("op", roles=["operator"]))
    assert operator.post(f"/integrations/{integration.pk}/drift/check/").status_code == 403
    admin = client_for(make_person("boss", roles=["admin"]))
    assert admin.get(f"/integrations/{integration.pk}/drift/check/").status_code == 405
    assert not AuditEvent.objects.filter(verb="drift.requested").exists()


def test_the_integrations_tabs_link_the_drift_tab_with_its_count(
    integration: Integration, world: dict[str, Any], admin_client: Client
) -> None:
    html = admin_client.get(f"/integrations/{integration.pk}/users/").content.decode()
    assert f'href="/integrations/{integration.pk}/drift/"' in html
    assert 'data-testid="drift-tab-count">4<' in html


def test_the_overview_shows_open_drift_per_category(
    integration: Integration, world: dict[str, Any], admin_client: Client
) -> None:
    html = admin_client.get(f"/integrations/{integration.pk}/").content.decode()
    panel = html.split('data-testid="drift-panel"')[1].split("</dd>")[0]
    assert 'data-testid="drift-panel-total">4<' in panel
    assert f'href="/integrations/{integration.pk}/drift/?category=attribute">Attribute drift: 1</a>' in panel


def test_the_dashboard_shows_open_drift_per_integration_and_a_total(
    integration: Integration, world: dict[str, Any], admin_client: Client
) -> None:
    other = Integration.objects.create(name="Chat", base_url="http://127.0.0.1:9/scim/v2")
    DriftItem.objects.create(
        integration=other, category=DriftCategory.ORPHAN, key="account:1", rule="no person owns it"
    )
    html = admin_client.get("/").content.decode()
    panel = html.split('data-testid="drift-dashboard"')[1].split("</section>")[0]
    assert 'data-testid="drift-dashboard-total">5<' in panel
    assert panel.index("Wiki") < panel.index("Chat")  # most drift first
    assert f'href="/integrations/{other.pk}/drift/?category=orphan">Orphan account: 1</a>' in panel


def test_the_dashboard_says_when_there_is_no_drift(admin_client: Client) -> None:
    assert "No open drift: every application agrees" in admin_client.get("/").content.decode()


def test_the_tab_reads_a_page_in_a_bounded_number_of_queries(
    integration: Integration, world: dict[str, Any], admin_client: Client, django_assert_max_num_queries: Any
) -> None:
    admin_client.get(f"/integrations/{integration.pk}/drift/")  # warm the session and the caches
    for n in range(40):
        DriftItem.objects.create(
            integration=integration,
            category=DriftCategory.ORPHAN,
            key=f"account:x{n}",
            target_user=world["account"],
            rule="no person owns it",
        )
    with django_assert_max_num_queries(25):
        assert admin_client.get(f"/integrations/{integration.pk}/drift/?page_size=50").status_code == 200


# The API


def test_the_api_lists_items_with_their_account_person_and_group(
    integration: Integration, world: dict[str, Any], make_person: Callable[..., Person], api_client_for: Any
) -> None:
    api = api_client_for(make_person("viewer", roles=["viewer"]))
    body = api.get(f"/api/v1/integrations/{integration.pk}/drift/?category=missing_membership").json()
    [item] = body["results"]
    assert item["category"] == "missing_membership"
    assert item["category_label"] == "Missing membership"
    assert item["account"] == {"id": world["account"].pk, "user_name": "ada"}
    assert item["person"] == {"id": world["ada"].pk, "username": "ada"}
    assert item["group"] == {"id": world["staff"].pk, "display_name": "Staff"}
    assert item["rule"] == "mapping 4: everyone → Staff"
    assert {"detail", "first_seen_at", "last_seen_at"} <= set(item)
    attribute = api.get(f"/api/v1/integrations/{integration.pk}/drift/?category=attribute").json()["results"][0]
    assert attribute["detail"] == {
        "attributes": [{"path": "title", "application": "Engineer", "wanted": "Staff engineer"}]
    }
    missing = api.get(f"/api/v1/integrations/{integration.pk}/drift/?category=missing").json()["results"][0]
    assert missing["account"] is None
    assert missing["group"] is None


def test_the_api_pages_by_keyset_without_losing_or_repeating_an_item(
    integration: Integration, world: dict[str, Any], admin: Person, api_client_for: Any
) -> None:
    api = api_client_for(admin)
    seen: list[int] = []
    url: str | None = f"/api/v1/integrations/{integration.pk}/drift/?page_size=1&ordering=-since"
    while url:
        body = api.get(url).json()
        assert body["page_size"] == 1
        seen += [item["id"] for item in body["results"]]
        url = body["next"]
    assert sorted(seen) == sorted(i.pk for i in world["items"].values())
    assert seen[-1] == world["items"]["orphan"].pk  # the oldest last, newest first


def test_the_api_refuses_a_bad_category_cursor_or_ordering_naming_the_field(
    integration: Integration, world: dict[str, Any], admin: Person, api_client_for: Any
) -> None:
    api = api_client_for(admin)
    base = f"/api/v1/integrations/{integration.pk}/drift/"
    response = api.get(base + "?category=nonsense")
    assert response.status_code == 400
    assert "category" in response.json()["fields"]
    assert "orphan" in response.json()["detail"]
    assert api.get(base + "?cursor=garbage").json()["fields"].keys() == {"cursor"}
    assert api.get(base + "?ordering=rule").json()["fields"].keys() == {"ordering"}


def test_the_api_answers_404_for_an_integration_that_is_not_there(admin: Person, api_client_for: Any) -> None:
    api = api_client_for(admin)
    for path in ("drift/", "drift/runs/"):
        assert api.get(f"/api/v1/integrations/999999/{path}").status_code == 404
    assert api.post("/api/v1/integrations/999999/drift/compute/").status_code == 404


def test_the_api_lists_the_runs_newest_first_with_their_counts(
    integration: Integration, world: dict[str, Any], admin: Person, api_client_for: Any
) -> None:
    body = api_client_for(admin).get(f"/api/v1/integrations/{integration.pk}/drift/runs/").json()
    assert [r["id"] for r in body["results"]] == [world["runs"][1].pk, world["runs"][0].pk]
    latest = body["results"][0]
    assert latest["trigger"] == "on_demand"
    assert latest["trigger_label"] == "On demand"
    assert latest["status"] == "succeeded"
    assert latest["counts"]["attribute"] == 1


def test_compute_queues_a_computation_for_integration_managers_only(
    integration: Integration,
    make_person: Callable[..., Person],
    api_client_for: Any,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: Any,
) -> None:
    queued: list[dict[str, Any]] = []
    from reconciliation import tasks

    monkeypatch.setattr(tasks.drift_compute_task, "delay", lambda **kw: queued.append(kw))
    url = f"/api/v1/integrations/{integration.pk}/drift/compute/"
    assert api_client_for(make_person("op", roles=["operator"])).post(url).status_code == 403
    assert api_client_for(make_person("viewer", roles=["viewer"])).get(url).status_code == 405
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client_for(make_person("boss", roles=["admin"])).post(url)
    assert response.status_code == 202
    assert response.json()["queued"] is True
    assert queued == [{"integration_id": integration.pk}]
    event = AuditEvent.objects.get(verb="drift.requested")
    assert event.target_id == str(integration.pk)


def test_a_deleted_integration_has_no_drift_report(
    integration: Integration, world: dict[str, Any], admin: Person, api_client_for: Any, admin_client: Client
) -> None:
    Integration.objects.filter(pk=integration.pk).update(archived_at=timezone.now())
    api = api_client_for(admin)
    assert api.get(f"/api/v1/integrations/{integration.pk}/drift/").status_code == 404
    assert api.post(f"/api/v1/integrations/{integration.pk}/drift/compute/").status_code == 404
    assert admin_client.get(f"/integrations/{integration.pk}/drift/").status_code == 404
    panel = admin_client.get("/").content.decode().split('data-testid="drift-dashboard"')[1].split("</section>")[0]
    assert "Wiki" not in panel
    assert "No open drift" in panel


def test_the_schema_documents_the_drift_endpoints(admin: Person, api_client_for: Any) -> None:
    response = api_client_for(admin).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    paths = json.loads(response.content)["paths"]
    assert {
        "/api/v1/integrations/{id}/drift/",
        "/api/v1/integrations/{id}/drift/runs/",
        "/api/v1/integrations/{id}/drift/compute/",
    } <= set(paths)
    parameters = {p["name"] for p in paths["/api/v1/integrations/{id}/drift/"]["get"]["parameters"]}
    assert {"category", "cursor", "page_size", "ordering"} <= parameters


def test_an_htmx_page_of_the_table_reads_only_the_table(
    integration: Integration, world: dict[str, Any], admin_client: Client
) -> None:
    response = admin_client.get(
        f"/integrations/{integration.pk}/drift/?category=orphan",
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="table-region",
    )
    html = response.content.decode()
    assert "stray" in html
    assert "<html" not in html
    assert "drift-summary" not in html


def test_how_long_ago_reads_just_now_under_a_minute_then_in_minutes() -> None:
    from datetime import timedelta

    from django.utils import timezone

    from console.core.display import ago

    now = timezone.now()
    assert ago(now - timedelta(seconds=20)) == "just now"
    assert ago(now - timedelta(minutes=3, seconds=5)) == "3\xa0minutes ago"
    assert ago(None) == "—"
