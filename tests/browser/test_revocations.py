"""In a real browser, with a real worker and a real SCIM server: a deprovision is verified, and
a viewer finds its latency on the dashboard and its record on the Revocations page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from console.accounts.models import Person
from provisioning.models import Action
from provisioning.services import action_request
from tests.browser.test_provisioning import extracted_app, server_active, sign_in
from tests.conftest import WorkerProcess
from tests.scim_peer import Peer

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def test_a_viewer_reads_a_verified_revocation_from_the_dashboard(
    page: Page,
    live_server: Any,
    make_person: Callable[..., Person],
    peer: Peer,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    jane = peer.user("jane@example.com", active=True)
    peer.group("Engineers", [jane])
    app = extracted_app(peer)
    leaver = make_person("jane", roles=[], active=False)
    make_person("watcher", roles=["viewer"])
    action = action_request(
        actor=make_person("operator", roles=["operator"]),
        integration=app,
        action_type="DEPROVISION_IDENTITY",
        target_user=app.target_users.get(user_name="jane@example.com"),
        person=leaver,
    )
    start_worker("browser-revocation", concurrency=1)

    sign_in(page, live_server.url, "watcher")
    latency = page.locator("section", has=page.get_by_role("heading", name="Revocation latency"))
    for _ in range(60):  # the dashboard does not follow the worker: reload until it has run
        if Action.objects.get(pk=action.pk).state == "succeeded":
            break
        page.wait_for_timeout(500)
    page.reload()
    row = latency.get_by_role("row").filter(has_text="Peer app")
    expect(row.get_by_role("cell").nth(1)).to_have_text("1")  # verified
    expect(row.get_by_role("cell").nth(4)).to_have_text("0")  # not verified
    assert not server_active(peer, "jane@example.com")

    latency.get_by_role("link", name="Every revocation").click()
    region = page.locator("#table-region")
    record = region.locator("tbody tr").filter(has_text="jane@example.com")
    expect(record).to_contain_text("Verified")
    expect(record).to_contain_text("jane@example.com reads inactive, and out of the 1 group it was in")
    expect(record).to_contain_text("jane")

    page.get_by_role("search").get_by_label("Outcome").select_option("mismatch")
    expect(region.get_by_text("No revocations match.")).to_be_visible()
    page.get_by_role("search").get_by_label("Outcome").select_option("verified")
    expect(record).to_have_count(1)

    record.get_by_role("link").first.click()  # its deprovision, with the calls it made
    expect(page.get_by_test_id("action-state")).to_have_text("Succeeded")
