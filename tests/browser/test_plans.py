"""In a real browser, with a real worker and a real SCIM server: make a plan of the drift, tick
two items, apply them through the confirmation and watch the batch's progress."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from console.accounts.models import Person
from reconciliation.models import DriftRun, PlanItem
from tests.browser.test_api_key_journey import screenshots
from tests.browser.test_provisioning import sign_in
from tests.conftest import WorkerProcess
from tests.reconciliation.conftest import (  # noqa: F401 - fixtures: drift about a real application's accounts
    World,
    app,
    extract,
    world,
)

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def test_make_a_plan_tick_two_apply_and_follow_the_batch(
    page: Page,
    live_server: Any,
    world: World,  # noqa: F811
    make_person: Callable[..., Person],
    start_worker: Callable[..., WorkerProcess],
) -> None:
    carol_left = world.people["carol"]
    carol_left.is_active = False  # carol leaves too: the worker's computation finds her account
    carol_left.save()
    make_person("second-approver", roles=["admin"])
    make_person("approver", roles=["admin"])
    worker = start_worker("browser-plans", concurrency=1)
    deadline = time.monotonic() + 30  # the computation the extraction queued
    while not DriftRun.objects.filter(trigger=DriftRun.Trigger.EXTRACTION, finished_at__isnull=False).exists():
        assert time.monotonic() < deadline, worker.output()
        time.sleep(0.25)

    sign_in(page, live_server.url, "approver")
    page.goto(f"{live_server.url}/integrations/{world.app.pk}/plans/")
    page.get_by_role("button", name="Make a plan").click()
    expect(page.get_by_test_id("plan-duration")).to_contain_text("requests/s")
    bob = PlanItem.objects.get(category="should_be_inactive", subject="bob")
    carol = PlanItem.objects.get(category="should_be_inactive", subject="carol")
    section = page.get_by_test_id("plan-category-should_be_inactive")
    screenshots(page, "plan")
    expect(section).to_contain_text(f"PATCH Users/{world.accounts['bob'].remote_id}")
    page.get_by_test_id(f"plan-item-{bob.pk}").get_by_role("checkbox").check()
    page.get_by_test_id(f"plan-item-{carol.pk}").get_by_role("checkbox").check()
    page.get_by_role("button", name="Apply the ticked items").click()
    dialog = page.get_by_test_id("confirm-dialog")
    expect(dialog.get_by_test_id("confirm-count")).to_have_text("2 items touched.")
    dialog.get_by_role("button", name="Apply the ticked items").click()
    expect(page.get_by_test_id("batch-progress")).to_contain_text("2 of 2 finished: 2 succeeded", timeout=30_000)
    assert world.server_user("bob")["active"] is False  # type: ignore[index]
    assert world.server_user("carol")["active"] is False  # type: ignore[index]
    assert world.server_user("erin") is None  # not ticked, not sent
    # The batch names its place (Actions > Batch N) and leads back to the plan it applies.
    expect(page.get_by_test_id("breadcrumbs")).to_contain_text("Batch")
    page.get_by_test_id("batch-plan").click()
    expect(page).to_have_url(f"{live_server.url}/integrations/{world.app.pk}/plans/{bob.plan_id}/")
    expect(page.get_by_test_id(f"plan-item-{bob.pk}").get_by_test_id("plan-item-state")).to_have_text("applied")
    expect(page.get_by_test_id(f"plan-item-{bob.pk}").get_by_role("checkbox")).to_be_disabled()
