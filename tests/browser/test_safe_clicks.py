"""In a real browser: the one confirmation dialog (what, how many, a reason; Escape keeps
everything), and a refused form's error summary taking the focus."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from console.accounts.models import Person
from console.audit.models import AuditEvent
from integrations.models import Integration, TargetUser
from provisioning.models import Batch
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser]


def sign_in(page: Page, url: str, username: str) -> None:
    page.goto(f"{url}/sign-in/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_a_bulk_deprovision_asks_once_with_the_count_and_records_the_reason(
    page: Page, live_server: Any, make_person: Callable[..., Person]
) -> None:
    app = Integration.objects.create(
        name="Slack",
        base_url="http://127.0.0.1:9/scim/v2",
        bearer_token="t",
        provisioning_enabled=True,
        mass_change_max_accounts=10,
        mass_change_max_percent=100,
    )
    for name in ("amy", "ben", "cal"):
        TargetUser.objects.create(integration=app, remote_id=f"id-{name}", user_name=name, content_hash="x")
    make_person("operator", roles=["operator"])

    sign_in(page, live_server.url, "operator")
    page.goto(f"{live_server.url}/integrations/{app.pk}/users/")
    page.get_by_label("Select amy").check()
    page.get_by_label("Select ben").check()
    request = page.get_by_role("button", name="Request", exact=True)
    request.click()

    dialog = page.get_by_test_id("confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading")).to_have_text("Request?")
    expect(dialog).to_contain_text("Deprovision each selected account in Slack")
    expect(dialog.get_by_test_id("confirm-count")).to_have_text("2 accounts touched.")
    expect(dialog.get_by_label("Reason (optional)")).to_be_focused()  # the focus moved into the dialog
    page.keyboard.press("Escape")  # cancel keeps everything
    expect(dialog).to_be_hidden()
    expect(request).to_be_focused()  # and the focus comes back
    assert not Batch.objects.exists()

    request.click()
    expect(dialog.get_by_role("button")).to_have_text(["Request", "Go back"])  # never two "Cancel"s
    dialog.get_by_role("button", name="Go back").click()
    expect(dialog).to_be_hidden()
    assert not Batch.objects.exists()

    page.get_by_label("Select cal").check()
    request.click()
    expect(dialog.get_by_test_id("confirm-count")).to_have_text("3 accounts touched.")
    dialog.get_by_label("Reason (optional)").fill("contracts ended")
    dialog.get_by_role("button", name="Request").click()

    expect(page.get_by_test_id("batch-progress")).to_be_visible()
    batch = Batch.objects.get()
    assert batch.actions.count() == 3
    assert AuditEvent.objects.get(verb="batch.requested").details["reason"] == "contracts ended"


def test_a_refused_integration_form_sums_up_its_errors_and_takes_the_focus(
    page: Page, live_server: Any, make_person: Callable[..., Person]
) -> None:
    make_person("ops-admin", roles=["admin"])
    sign_in(page, live_server.url, "ops-admin")
    page.goto(f"{live_server.url}/integrations/new/?scratch=1")

    expect(page.get_by_label("Password", exact=True)).to_be_hidden()  # bearer is chosen: basic's fields wait
    page.get_by_label("Authentication method").select_option("basic")
    expect(page.get_by_label("Password", exact=True)).to_be_visible()
    expect(page.get_by_label("Bearer token")).to_be_hidden()
    page.get_by_label("Authentication method").select_option("bearer")

    page.get_by_label("Name", exact=True).fill("Peer app")
    page.get_by_label("SCIM base URL").fill("ftp://nowhere")
    page.get_by_label("Page size").fill("0")
    page.get_by_role("button", name="Add integration").click()

    summary = page.get_by_test_id("error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("At least 1: a page of 0 accounts reads nothing")
    summary.get_by_role("link", name="Page size").click()
    expect(page).to_have_url(f"{live_server.url}/integrations/new/?scratch=1#id_page_size")
    assert not Integration.objects.exists()
