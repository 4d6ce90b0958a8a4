"""In a real browser: the global search suggests as you type, and leads to the page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from console.accounts.models import Person
from integrations.models import Integration, TargetUser
from tests.browser.test_api_key_journey import screenshots, sign_in

pytestmark = pytest.mark.browser


def test_typing_in_the_search_suggests_and_a_suggestion_leads_to_its_page(
    page: Page, live_server: Any, make_person: Callable[..., Person]
) -> None:
    app = Integration.objects.create(name="Slack", base_url="https://slack.example.com/scim/v2")
    account = TargetUser.objects.create(
        integration=app, remote_id="r1", user_name="marguerite@example.com", content_hash="-"
    )
    make_person("ada", roles=["viewer"])
    sign_in(page, live_server.url, "ada")

    search = page.get_by_test_id("global-search")
    search.click()
    search.press_sequentially("margu", delay=30)
    suggestions = page.get_by_test_id("search-suggestions")
    expect(suggestions).to_be_visible()
    suggestion = suggestions.get_by_role("link", name="marguerite@example.com")
    expect(suggestion).to_be_visible()
    screenshots(page, "search-suggestions")
    suggestion.click()
    expect(page).to_have_url(f"{live_server.url}/integrations/{app.pk}/users/{account.pk}/")
    expect(page.get_by_test_id("breadcrumbs")).to_contain_text("Slack")

    # Enter, without choosing a suggestion: the whole results page, grouped by kind.
    search = page.get_by_test_id("global-search")
    search.fill("slack")
    search.press("Enter")
    expect(page).to_have_url(f"{live_server.url}/search/?q=slack")
    results = page.get_by_test_id("search-integrations")
    expect(results).to_be_visible()
    results.get_by_role("link", name="Slack").click()
    expect(page).to_have_url(f"{live_server.url}/integrations/{app.pk}/")


@pytest.mark.parametrize("width", [1280, 1600, 390])
def test_the_account_menu_opens_on_the_page_and_signs_out_whatever_the_width(
    width: int, page: Page, live_server: Any, make_person: Callable[..., Person]
) -> None:
    # An admin's top bar is the longest (Approvals): at 1280 px the account menu wraps to the
    # bar's left edge, where a menu opening leftwards would put Sign out off the page.
    make_person("root", roles=["admin"])
    page.set_viewport_size({"width": width, "height": 720})
    sign_in(page, live_server.url, "root")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    page.locator(".account-menu summary").click()
    sign_out = page.get_by_role("button", name="Sign out")
    expect(sign_out).to_be_in_viewport()
    box = sign_out.bounding_box()
    assert box is not None
    assert box["x"] >= 0, box
    assert box["x"] + box["width"] <= width, box
    sign_out.click()
    expect(page).to_have_url(f"{live_server.url}/sign-in/")
