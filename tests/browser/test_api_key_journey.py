"""In a real browser: sign in, make an API key, use it, revoke it, find both in the audit log."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from playwright.sync_api import Page, ViewportSize, expect

from console.accounts.models import Person
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

VIEWPORTS: dict[str, ViewportSize] = {
    "phone": {"width": 390, "height": 844},
    "laptop": {"width": 1366, "height": 768},
}


def sign_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/sign-in/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def screenshots(page: Page, name: str) -> None:
    """Save the page at a phone's and a laptop's size (var/test-logs/, for people to look at).

    Whatever the size, nothing may stick out sideways: only tables scroll, inside their frame.
    """
    folder = Path(settings.DATA_DIR) / "test-logs"
    folder.mkdir(parents=True, exist_ok=True)
    original = page.viewport_size
    for label, size in VIEWPORTS.items():
        page.set_viewport_size(size)
        page.screenshot(path=folder / f"{name}-{label}.png", full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{name} is {overflow}px wider than a {label} screen"
    if original:
        page.set_viewport_size(original)


def test_an_api_key_is_shown_once_works_until_revoked_and_both_events_are_audited(
    page: Page, live_server: Any, make_person: Callable[..., Person]
) -> None:
    base = live_server.url
    make_person("ada", roles=["admin"], email="ada@example.com")
    sign_in(page, base, "ada")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    screenshots(page, "dashboard")

    # On a phone the account menu opens within the screen, so its links can be reached.
    page.set_viewport_size(VIEWPORTS["phone"])
    page.locator("summary", has_text="ada").click()
    menu = page.locator(".account-menu ul").bounding_box()
    assert menu is not None
    assert menu["x"] >= 0
    assert menu["x"] + menu["width"] <= VIEWPORTS["phone"]["width"]
    page.get_by_role("link", name="API keys", exact=True).click()
    page.set_viewport_size(VIEWPORTS["laptop"])
    page.get_by_label("Name").fill("automation")
    page.get_by_role("button", name="Create key").click()
    key_field = page.get_by_test_id("new-api-key")
    expect(key_field).to_be_visible()
    token = key_field.input_value()
    assert re.fullmatch(r"lck_[0-9a-f]{8}_[A-Za-z0-9_-]{40,}", token)
    screenshots(page, "api-keys-new-key")

    page.reload()  # the key was shown once; a reload shows it no more, and makes no second key
    expect(page.get_by_test_id("new-api-key")).to_have_count(0)
    assert token not in page.content()
    expect(page.get_by_role("cell", name="automation", exact=True)).to_have_count(1)

    people = httpx.get(f"{base}/api/v1/people/", headers={"Authorization": f"Bearer {token}"})
    assert people.status_code == 200
    assert "ada" in [p["username"] for p in people.json()["results"]]

    page.goto(f"{base}/account/api-keys/")
    page.get_by_role("button", name="Revoke key automation").click()
    page.get_by_test_id("confirm-dialog").get_by_role("button", name="Revoke key").click()
    expect(page.get_by_text("revoked", exact=True)).to_be_visible()
    refused = httpx.get(f"{base}/api/v1/people/", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 401
    assert refused.json()["detail"] == "This API key has been revoked."

    page.get_by_role("link", name="Audit").click()
    expect(page.get_by_role("cell", name="API key made")).to_be_visible()  # verbs in words
    expect(page.get_by_role("cell", name="API key revoked")).to_be_visible()
    # Filtering swaps only the table: the page (and its filled-in form) stays.
    page.evaluate("window.__sameDocument = true")
    verb = page.locator("#table-filters").get_by_label("Verb")
    verb.fill("api_key.revoked")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_role("cell", name="API key made")).to_have_count(0)
    expect(page.get_by_role("cell", name="API key revoked")).to_be_visible()
    expect(page).to_have_url(re.compile(r"verb=api_key\.revoked"))
    expect(verb).to_have_value("api_key.revoked")
    assert page.evaluate("window.__sameDocument") is True  # no full page load happened


def test_a_person_without_a_console_role_is_told_why_they_cannot_sign_in(
    page: Page, live_server: Any, make_person: Callable[..., Person]
) -> None:
    make_person("norole", roles=[])
    sign_in(page, live_server.url, "norole")
    expect(page.get_by_role("alert")).to_contain_text("no console role")
    expect(page).to_have_url(re.compile(r"/sign-in/"))


def test_searching_people_updates_the_table_in_place(
    page: Page, live_server: Any, make_person: Callable[..., Person]
) -> None:
    make_person("grace", roles=["viewer"])
    make_person("linus", roles=["viewer"])
    sign_in(page, live_server.url, "grace")
    page.get_by_role("link", name="People & Teams").click()
    expect(page.get_by_role("link", name="linus")).to_be_visible()
    page.evaluate("window.__sameDocument = true")
    page.locator("#table-filters").get_by_label("Search").fill("grac")
    expect(page.get_by_role("link", name="linus")).to_have_count(0)
    expect(page.get_by_role("link", name="grace", exact=True)).to_be_visible()
    expect(page).to_have_url(re.compile(r"q=grac"))
    assert page.evaluate("window.__sameDocument") is True  # no full page load happened
