"""Charts: the dashboard's and an integration's, each with its numbers as a table."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from console.accounts.models import Person
from integrations.models import ExtractionRun, Integration
from provisioning.charts import actions_per_day, pending_approvals
from provisioning.models import Action, ActionState, Revocation

pytestmark = pytest.mark.django_db


def _action(integration: Integration, state: str, finished: datetime | None) -> Action:
    return Action.objects.create(
        integration=integration, action_type="SYNC_IDENTITIES", state=state, subject="x", finished_at=finished
    )


def _chart_data(page: str, key: str) -> dict[str, Any]:
    found = re.search(rf'<script id="chart-data-{re.escape(key)}" type="application/json">(.*?)</script>', page, re.S)
    assert found, f"no data for chart {key}"
    return dict(json.loads(found.group(1)))


def test_actions_per_day_counts_each_outcome_on_its_day() -> None:
    app = Integration.objects.create(name="App", base_url="https://app.example.com/scim/v2")
    other = Integration.objects.create(name="Other", base_url="https://other.example.com/scim/v2")
    today = datetime(2026, 12, 6, 12, tzinfo=UTC)
    for _ in range(3):
        _action(app, ActionState.SUCCEEDED, today)
    _action(app, ActionState.FAILED, today - timedelta(days=1))
    _action(other, ActionState.REJECTED, today - timedelta(days=1))
    _action(app, ActionState.SUCCEEDED, today - timedelta(days=20))  # before the window
    _action(app, ActionState.QUEUED, None)  # not finished

    chart = actions_per_day(today=today.date())

    assert len(chart.labels) == 14
    assert chart.labels[-1] == "06 Dec"
    by_label = {s.label: s.values for s in chart.series}
    assert by_label["Succeeded"][-1] == 3
    assert by_label["Failed"][-2] == 1
    assert by_label["Rejected"][-2] == 1
    assert sum(by_label["Succeeded"]) == 3
    mine = actions_per_day(integration=app, today=today.date())
    assert sum(sum(s.values) for s in mine.series) == 4
    assert dict(mine.rows())["06 Dec"] == [3, 0, 0, 0]


def test_pending_approvals_per_integration() -> None:
    app = Integration.objects.create(name="App", base_url="https://app.example.com/scim/v2")
    for _ in range(2):
        _action(app, ActionState.PENDING_APPROVAL, None)

    chart = pending_approvals()

    assert chart.labels == ["App"]
    assert chart.series[0].values == [2]


def test_the_dashboard_draws_its_charts_and_shows_their_numbers(
    make_person: Callable[..., Person], client: Client
) -> None:
    app = Integration.objects.create(name="App", base_url="https://app.example.com/scim/v2")
    _action(app, ActionState.SUCCEEDED, timezone.now())
    _action(app, ActionState.PENDING_APPROVAL, None)
    client.force_login(make_person("viewer", roles=["viewer"]))

    page = client.get("/").content.decode()

    data = _chart_data(page, "actions-per-day")
    assert data["stacked"] is True
    assert [s["label"] for s in data["series"]] == ["Succeeded", "Failed", "Rejected", "Cancelled"]
    assert _chart_data(page, "pending-approvals")["labels"] == ["App"]
    assert "chartjs/chart.umd.min.js" in page
    assert "<summary>Numbers</summary>" in page


def test_an_integration_page_charts_its_extractions(make_person: Callable[..., Person], client: Client) -> None:
    app = Integration.objects.create(name="App", base_url="https://app.example.com/scim/v2")
    start = timezone.now() - timedelta(hours=1)
    ExtractionRun.objects.create(
        integration=app,
        trigger="manual",
        status="succeeded",
        started_at=start,
        finished_at=start + timedelta(seconds=12),
        users_seen=40,
        groups_seen=3,
        created=40,
    )
    ExtractionRun.objects.create(
        integration=app, trigger="manual", status="failed", started_at=start, finished_at=start + timedelta(seconds=2)
    )
    client.force_login(make_person("viewer", roles=["viewer"]))

    page = client.get(f"/integrations/{app.pk}/").content.decode()

    durations = _chart_data(page, f"run-durations-{app.pk}")
    # oldest finished first: the failed run (2 s), then the one that succeeded (12 s)
    assert [s["values"] for s in durations["series"]] == [[0, 12.0], [2.0, 0]]
    counts = _chart_data(page, f"run-counts-{app.pk}")
    assert counts["series"][0]["values"] == [0, 40]
    assert "Failed: 1 of 2 runs (50%)." in page
    assert "No action finished in App in the last 14 days." in page  # said, not drawn empty


def _revocation(integration: Integration, verified_at: datetime, seconds: float, outcome: str = "verified") -> None:
    action = _action(integration, ActionState.SUCCEEDED, verified_at)
    Revocation.objects.create(
        action=action,
        integration=integration,
        account="ada",
        requested_at=verified_at - timedelta(seconds=seconds),
        attempt=1,
        outcome=outcome,
        verified_at=verified_at,
        latency_seconds=seconds,
    )


def test_an_integration_page_charts_its_revocation_latency_per_day_with_its_numbers(
    make_person: Callable[..., Person], client: Client
) -> None:
    app = Integration.objects.create(name="App", base_url="https://app.example.com/scim/v2")
    other = Integration.objects.create(name="Other", base_url="https://other.example.com/scim/v2")
    today = timezone.now().astimezone(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    if today > timezone.now():
        today -= timedelta(days=1)  # before noon: the day's noon is still to come
    yesterday = today - timedelta(days=1)
    _revocation(app, yesterday, 2.0)
    _revocation(app, yesterday, 10.0)
    _revocation(app, today, 4.0)
    _revocation(app, today, 60.0, outcome="mismatch")  # counted apart, never in the latency
    _revocation(app, today - timedelta(days=40), 99.0)  # before the period
    _revocation(other, today, 500.0)  # another integration's
    client.force_login(make_person("viewer", roles=["viewer"]))

    page = client.get(f"/integrations/{app.pk}/").content.decode()

    data = _chart_data(page, f"revocation-latency-{app.pk}")
    assert data["labels"] == [f"{yesterday:%d %b}", f"{today:%d %b}"]  # the days that had one, oldest first
    assert [(s["label"], s["values"]) for s in data["series"]] == [
        ("p50 (seconds)", [2.0, 4.0]),
        ("p95 (seconds)", [10.0, 4.0]),
    ]
    assert data["unit"] == "seconds"
    assert "Last 30 days: 3 verified (p50 4.0 s, p95 10.0 s), 1 not verified." in page
    # the numbers, one click away: a row per day, a column per series
    figure = page.split(f'data-testid="chart-revocation-latency-{app.pk}"', 1)[1].split("</figure>", 1)[0]
    assert "<summary>Numbers</summary>" in figure
    assert f'<tr><th scope="row">{yesterday:%d %b}</th><td class="num">2.0</td><td class="num">10.0</td></tr>' in figure

    quiet = Integration.objects.create(name="Quiet", base_url="https://quiet.example.com/scim/v2")
    page = client.get(f"/integrations/{quiet.pk}/").content.decode()
    assert "No deprovision in Quiet was verified in the last 30 days." in page  # said, not drawn empty


def test_an_integration_page_charts_its_error_rate_per_day_with_its_numbers(
    make_person: Callable[..., Person], client: Client
) -> None:
    app = Integration.objects.create(name="App", base_url="https://app.example.com/scim/v2")
    today = timezone.now()
    for state in (ActionState.SUCCEEDED, ActionState.SUCCEEDED, ActionState.SUCCEEDED, ActionState.FAILED):
        _action(app, state, today)
    ExtractionRun.objects.create(integration=app, trigger="manual", status="failed", finished_at=today)
    ExtractionRun.objects.create(integration=app, trigger="manual", status="succeeded", finished_at=today)
    client.force_login(make_person("viewer", roles=["viewer"]))

    page = client.get(f"/integrations/{app.pk}/").content.decode()

    rates = _chart_data(page, f"error-rate-{app.pk}")
    assert rates["unit"] == "%"
    actions, runs = (s["values"] for s in rates["series"])
    assert actions[-1] == 25.0  # one of four actions today failed
    assert runs[-1] == 50.0  # one of two extractions
    assert sum(actions[:-1]) == 0
    assert "Error rate per day in App" in page
