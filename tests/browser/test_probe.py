"""In a real browser: probe an application with writes, from the dialog beside Test connection."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from console.accounts.models import Person
from integrations.models import Integration
from tests.conftest import PASSWORD, WorkerProcess
from tests.integrations.conftest import PEER_TOKEN, Peer

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def test_an_admin_probes_an_application_and_reads_its_dialect(
    page: Page,
    live_server: Any,
    make_person: Callable[..., Person],
    peer: Peer,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    ada = peer.user("ada")
    peer.group("Engineers", [ada])
    make_person("ops-admin", roles=["admin"])
    integration = Integration.objects.create(name="Peer app", base_url=peer.url, bearer_token=PEER_TOKEN)
    start_worker("browser-probe", concurrency=1)

    page.goto(f"{live_server.url}/sign-in/")
    page.get_by_label("User name").fill("ops-admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server.url}/integrations/{integration.pk}/")
    dialect = page.locator("#dialect")
    expect(dialect.get_by_text("Not probed yet.")).to_be_visible()

    page.get_by_test_id("probe-dialog").get_by_text("Probe", exact=True).click()
    page.get_by_label("Also try writes").check()
    page.get_by_role("button", name="Start probe").click()
    expect(page.get_by_test_id("probe-status")).to_contain_text("12 work, 1 refused", timeout=30_000)

    row = dialect.locator('tr[data-capability="member_reference"]')
    expect(row).to_contain_text("Holds id")
    expect(row).to_contain_text("Probe")
    expect(dialect.locator('tr[data-capability="patch_value_list_remove"]')).to_contain_text("Refused")
    expect(page.get_by_test_id("probe-remark").first).to_contain_text("was deleted")
    assert peer.http.get("/Users").json()["totalResults"] == 1  # only ada: the test user is gone
