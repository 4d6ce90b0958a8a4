"""In a real browser: add an integration, test it, extract with a real worker, open a user and a group."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from console.accounts.models import Person
from tests.conftest import PASSWORD, WorkerProcess
from tests.integrations.conftest import Peer

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def test_an_admin_connects_an_application_and_watches_it_extracted(
    page: Page,
    live_server: Any,
    make_person: Callable[..., Person],
    peer: Peer,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    ada = peer.user("ada", displayName="Ada Lovelace", emails=[{"value": "ada@example.com", "primary": True}])
    peer.user("bob")
    peer.group("Engineers", [ada])
    make_person("ops-admin", roles=["admin"])
    start_worker("browser-extraction", concurrency=1)

    page.goto(f"{live_server.url}/sign-in/")
    page.get_by_label("User name").fill("ops-admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Integrations", exact=True).click()
    page.get_by_role("link", name="Add integration").click()
    expect(page.get_by_role("heading", name="Atlassian Cloud")).to_be_visible()  # the catalog comes first
    page.get_by_role("link", name="Start from scratch").click()
    page.get_by_label("Name", exact=True).fill("Peer app")
    page.get_by_label("SCIM base URL").fill(peer.url)
    page.get_by_label("Bearer token").fill("peer-token")
    page.get_by_role("button", name="Add integration").click()
    expect(page.get_by_role("heading", name="Peer app")).to_be_visible()

    page.get_by_role("button", name="Test connection").click()
    expect(page.get_by_text("Connected")).to_be_visible()
    page.get_by_role("link", name="Back to Peer app").click()

    page.get_by_role("button", name="Extract now").click()
    expect(page.get_by_test_id("run-status")).to_have_text("Succeeded", timeout=30_000)
    expect(page.get_by_text("2 users and 1 group read")).to_be_visible()
    expect(page.get_by_label("Extraction progress")).to_have_attribute("value", "1")

    page.get_by_role("link", name="Users", exact=True).click()
    page.get_by_role("link", name="ada", exact=True).click()
    expect(page.get_by_text("Ada Lovelace").first).to_be_visible()
    expect(page.get_by_text("ada@example.com").first).to_be_visible()
    page.get_by_role("link", name="Engineers").click()
    expect(page.get_by_role("heading", name="Engineers")).to_be_visible()
    expect(page.get_by_role("link", name="ada", exact=True)).to_be_visible()
