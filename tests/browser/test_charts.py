"""In a real browser: the dashboard draws its activity chart, and its numbers open as a table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from console.accounts.models import Person
from integrations.models import Integration
from provisioning.models import Action, ActionState
from tests.browser.test_api_key_journey import screenshots, sign_in

pytestmark = pytest.mark.browser


def test_a_chart_is_drawn_and_its_numbers_are_one_click_away(
    page: Page, live_server: Any, make_person: Callable[..., Person]
) -> None:
    app = Integration.objects.create(name="App", base_url="https://app.example.com/scim/v2")
    for state in [ActionState.SUCCEEDED] * 3 + [ActionState.FAILED]:
        Action.objects.create(
            integration=app, action_type="SYNC_IDENTITIES", state=state, subject="x", finished_at=timezone.now()
        )
    make_person("ada", roles=["viewer"])
    sign_in(page, live_server.url, "ada")

    chart = page.get_by_test_id("chart-actions-per-day")
    canvas = chart.locator("canvas")
    expect(canvas).to_have_attribute("data-drawn", "1")  # Chart.js drew it
    assert canvas.evaluate("c => c.width") > 0
    table = chart.locator("table")
    expect(table).to_be_hidden()
    chart.get_by_text("Numbers").click()
    expect(table).to_be_visible()
    today = table.locator("tbody tr").last
    expect(today.locator("td")).to_have_text(["3", "1", "0", "0"])
    screenshots(page, "dashboard-charts")
