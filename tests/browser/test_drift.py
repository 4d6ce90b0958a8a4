"""In a real browser: an admin opens an integration's Drift tab, filters a category, reads an
attribute's difference, exports the list, sees the chart drawn, and asks for a check."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from console.accounts.models import Person
from console.audit.models import AuditEvent
from integrations.models import Integration, TargetGroup, TargetUser
from reconciliation.models import DriftCategory, DriftItem, DriftRun
from tests.browser.test_api_key_journey import screenshots, sign_in

pytestmark = pytest.mark.browser


def test_an_admin_filters_the_drift_reads_an_attribute_difference_and_exports_it(
    page: Page, live_server: Any, make_person: Callable[..., Person]
) -> None:
    app = Integration.objects.create(name="Wiki", base_url="http://127.0.0.1:9/scim/v2")
    ada = make_person("ada", roles=[])
    account = TargetUser.objects.create(integration=app, remote_id="u-ada", user_name="ada", content_hash="-")
    stray = TargetUser.objects.create(integration=app, remote_id="u-x", user_name="stray", content_hash="-")
    staff = TargetGroup.objects.create(integration=app, remote_id="g-s", display_name="Staff", content_hash="-")
    now = timezone.now()
    DriftItem.objects.create(
        integration=app,
        category=DriftCategory.ORPHAN,
        key=f"account:{stray.pk}",
        target_user=stray,
        rule="no person owns it",
        first_seen_at=now - timedelta(days=2),
    )
    DriftItem.objects.create(
        integration=app,
        category=DriftCategory.ATTRIBUTE,
        key=f"account:{account.pk}",
        target_user=account,
        person=ada,
        rule="policy: in scope (everyone)",
        detail={"attributes": [{"path": "title", "application": "Engineer", "wanted": "Staff engineer"}]},
    )
    DriftItem.objects.create(
        integration=app,
        category=DriftCategory.MISSING_MEMBERSHIP,
        key=f"membership:{staff.pk}:u-ada",
        target_user=account,
        person=ada,
        group=staff,
        rule="mapping 1: everyone → Staff",
    )
    for minutes, counts in ((60, {"orphan": 1}), (5, {"orphan": 1, "attribute": 1, "missing_membership": 1})):
        DriftRun.objects.create(
            integration=app,
            trigger=DriftRun.Trigger.EXTRACTION,
            started_at=now - timedelta(minutes=minutes),
            finished_at=now - timedelta(minutes=minutes),
            counts=dict.fromkeys(DriftCategory.values, 0) | counts,
        )
    make_person("boss", roles=["admin"])
    sign_in(page, live_server.url, "boss")

    # The overview's panel counts it, and the tab says it all.
    page.goto(f"{live_server.url}/integrations/{app.pk}/")
    expect(page.get_by_test_id("drift-panel-total")).to_have_text("3")
    screenshots(page, "drift-overview")
    page.get_by_role("link", name="Drift").first.click()
    expect(page.get_by_test_id("drift-count-all")).to_contain_text("3 open in all")
    expect(page.get_by_test_id("drift-last-run")).to_contain_text("after an extraction")
    rows = page.locator("table[data-table=drift] tbody tr")
    expect(rows).to_have_count(3)
    chart = page.get_by_test_id(f"chart-drift-{app.pk}")
    expect(chart.locator("canvas")).to_have_attribute("data-drawn", "1")

    # A category's count filters the list; the attribute's difference reads before → after.
    page.get_by_test_id("drift-count-attribute").click()
    expect(rows).to_have_count(1)
    diff = rows.first.get_by_test_id("drift-diff")
    expect(diff).to_contain_text("title")
    expect(diff.locator(".before")).to_have_text("Engineer")
    expect(diff.locator(".after")).to_have_text("Staff engineer")
    expect(rows.first.get_by_role("link", name="ada").first).to_have_attribute(
        "href", f"/integrations/{app.pk}/users/{account.pk}/"
    )
    screenshots(page, "drift-tab")

    # The filter form changes the category in place (htmx), and the export takes what it selects.
    page.get_by_role("search").get_by_label("Category").select_option(label="Orphan account")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("stray")
    expect(rows.first).to_contain_text("2\xa0days ago")
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV").click()
    exported = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    assert [(r["category"], r["account"], r["rule"]) for r in exported] == [("orphan", "stray", "no person owns it")]

    # Check now asks for a computation and says so.
    page.get_by_test_id("drift-check").click()
    expect(page.locator(".messages")).to_contain_text("Drift check queued")
    assert AuditEvent.objects.filter(verb="drift.requested", target_id=str(app.pk)).exists()
