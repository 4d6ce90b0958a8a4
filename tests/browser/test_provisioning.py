"""In a real browser, with a real worker and a real SCIM server: approve a pending action
straight from its row in the Approvals inbox and watch it succeed; deprovision three users in bulk and undo it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from console.accounts.models import Person
from integrations.extraction import extraction_run_execute
from integrations.models import ExtractionRun, Integration
from provisioning.services import action_request
from tests.conftest import PASSWORD, WorkerProcess
from tests.scim_peer import PEER_TOKEN, Peer

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def sign_in(page: Page, url: str, username: str) -> None:
    page.goto(f"{url}/sign-in/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def extracted_app(peer: Peer, **fields: Any) -> Integration:
    app = Integration.objects.create(
        name="Peer app", base_url=peer.url, bearer_token=PEER_TOKEN, provisioning_enabled=True, **fields
    )
    run = ExtractionRun.objects.create(integration=app, trigger="manual")
    done = extraction_run_execute(run_id=run.pk)
    assert done is not None
    assert done.status == "succeeded", done.error
    return app


def server_active(peer: Peer, user_name: str) -> bool:
    found = peer.http.get("/Users", params={"filter": f'userName eq "{user_name}"'}).json()["Resources"]
    return found[0].get("active") is not False


def test_an_approver_approves_from_the_inbox_and_watches_it_succeed(
    page: Page,
    live_server: Any,
    make_person: Callable[..., Person],
    peer: Peer,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    peer.user("leaver")
    app = extracted_app(peer, supports_hard_delete=True)
    operator = make_person("operator", roles=["operator"])
    make_person("approver", roles=["admin"])
    action_request(
        actor=operator,
        integration=app,
        action_type="DELETE_IDENTITY",
        target_user=app.target_users.get(user_name="leaver"),
    )
    start_worker("browser-approve", concurrency=1)

    sign_in(page, live_server.url, "approver")
    expect(page.get_by_test_id("approvals-count")).to_contain_text("1")
    page.get_by_role("link", name="Approvals").click()
    row = page.get_by_test_id("approval-row").filter(has_text="leaver")
    row.get_by_role("button", name="Reject").click()  # a rejection needs a reason: refused in place
    expect(row.get_by_role("alert")).to_contain_text("Say why the action is rejected.")
    row.get_by_label("Comment").fill("confirmed with HR")
    row.get_by_role("button", name="Approve").click()
    dialog = page.get_by_test_id("confirm-dialog")  # the one confirmation: what, how many, why
    expect(dialog.get_by_test_id("confirm-count")).to_have_text("1 account touched.")
    expect(dialog.get_by_label("Reason (optional)")).to_have_value("confirmed with HR")
    dialog.get_by_role("button", name="Approve").click()
    expect(row.get_by_test_id("action-state")).to_have_text("Succeeded", timeout=30_000)  # the row follows it
    expect(page.get_by_test_id("approvals-count")).to_have_count(0)  # the navigation's count followed the decision
    expect(page.get_by_role("heading", name="Approvals")).to_be_visible()  # never left the inbox
    row.get_by_role("link", name="Follow it").click()
    expect(page.get_by_test_id("action-state")).to_have_text("Succeeded")
    expect(page.get_by_text("approver: “confirmed with HR”")).to_be_visible()
    expect(page.get_by_text("DELETE", exact=False).first).to_be_visible()
    page.get_by_text("SCIM requests").scroll_into_view_if_needed()
    expect(page.locator("details.call summary").first).to_contain_text("204")
    assert peer.http.get("/Users", params={"filter": 'userName eq "leaver"'}).json()["totalResults"] == 0


def test_a_bulk_deprovision_of_three_users_and_its_undo(
    page: Page,
    live_server: Any,
    make_person: Callable[..., Person],
    peer: Peer,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    users = [peer.user(name) for name in ("amy", "ben", "cal", "dan")]
    peer.group("Engineers", users[:3])
    app = extracted_app(peer, mass_change_max_accounts=10, mass_change_max_percent=100)
    make_person("operator", roles=["operator"])
    start_worker("browser-bulk", concurrency=2)

    sign_in(page, live_server.url, "operator")
    page.goto(f"{live_server.url}/integrations/{app.pk}/users/")
    for name in ("amy", "ben", "cal"):
        page.get_by_label(f"Select {name}").check()
    page.get_by_role("button", name="Request", exact=True).click()
    dialog = page.get_by_test_id("confirm-dialog")
    expect(dialog.get_by_test_id("confirm-count")).to_have_text("3 accounts touched.")
    dialog.get_by_role("button", name="Request").click()
    expect(page.get_by_test_id("batch-progress")).to_contain_text("3 of 3 finished", timeout=30_000)
    expect(page.get_by_test_id("batch-progress")).to_contain_text("3 succeeded")
    assert [server_active(peer, name) for name in ("amy", "ben", "cal", "dan")] == [False, False, False, True]

    page.get_by_role("button", name="Undo batch").click()
    dialog.get_by_label("Reason (optional)").fill("wrong list")
    dialog.get_by_role("button", name="Undo batch").click()
    expect(page.get_by_text("Undoes batch")).to_be_visible()
    expect(page.get_by_test_id("batch-progress")).to_contain_text("6 of 6 finished", timeout=30_000)
    expect(page.get_by_test_id("batch-progress")).to_contain_text("6 succeeded")
    assert [server_active(peer, name) for name in ("amy", "ben", "cal")] == [True, True, True]
    group = peer.http.get("/Groups").json()["Resources"][0]
    assert {m["value"] for m in group["members"]} == {u["id"] for u in users[:3]}
