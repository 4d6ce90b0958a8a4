"""In a real browser, with a real worker and a real SCIM server: an admin sets an integration's
lifecycle policy to simulate, watches who is in scope before saving and reads the plan, turns
it on, and finds the account (and its birthright group) on the person's page."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from console.accounts.models import Person, Team, TeamMembership
from integrations.models import Integration, TargetGroup
from lifecycle.models import BirthrightMapping, LifecyclePolicy, PolicyMode
from tests.browser.test_provisioning import extracted_app, sign_in
from tests.conftest import WorkerProcess
from tests.scim_peer import Peer

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def test_an_admin_simulates_a_policy_turns_it_on_and_opens_the_persons_accounts(
    page: Page,
    live_server: Any,
    make_person: Callable[..., Person],
    peer: Peer,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    peer.group("Engineering", [])
    app: Integration = extracted_app(peer)
    engineering = TargetGroup.objects.get(integration=app, display_name="Engineering")
    team = Team.objects.create(name="Eng team")
    ada = make_person("ada", roles=[], department="Engineering", email="ada@example.com")
    TeamMembership.objects.create(team=team, person=ada)
    make_person("bob", roles=[], department="Sales")  # active, but never in the team's scope
    mapping = BirthrightMapping.objects.create(integration=app, team=team)
    mapping.groups.set([engineering])
    make_person("admin", roles=["admin"])
    start_worker("browser-lifecycle", concurrency=1)

    sign_in(page, live_server.url, "admin")
    page.goto(f"{live_server.url}/integrations/{app.pk}/")
    page.get_by_role("link", name="Lifecycle", exact=True).click()
    expect(page.get_by_test_id("policy-mode")).to_have_text("Off")

    page.get_by_label("Simulate (plan and record, send nothing)").check()
    page.get_by_label("Members of chosen teams").check()
    page.get_by_label("Which teams").select_option(label="Eng team")
    # Before saving, the page says who the scope covers.
    expect(page.get_by_test_id("scope-preview")).to_contain_text("1 person in scope: ada")
    page.get_by_label("Every active person").check()
    expect(page.get_by_test_id("scope-preview")).to_contain_text("people in scope")
    expect(page.get_by_test_id("scope-preview")).to_contain_text("bob")
    page.get_by_label("Members of chosen teams").check()
    expect(page.get_by_test_id("scope-preview")).to_contain_text("1 person in scope: ada")
    page.get_by_test_id("policy-save").click()

    expect(page.get_by_test_id("policy-mode")).to_have_text("Simulate (plan and record, send nothing)")
    plan = page.get_by_test_id("lifecycle-plan")
    expect(plan).to_contain_text("1 change the policy would make")
    expect(plan.get_by_test_id("plan-row")).to_contain_text("Sync identity: ada")
    expect(plan.get_by_test_id("plan-row")).to_contain_text("creates the account")
    assert peer.http.get("/Users", params={"filter": 'userName eq "ada"'}).json()["totalResults"] == 0

    page.get_by_label("On", exact=True).check()
    page.get_by_test_id("policy-save").click()
    # Turning on changes the application: the console's one confirmation asks first.
    expect(page.get_by_role("heading", name="Turn on?")).to_be_visible()
    expect(page.get_by_test_id("confirm-text")).to_contain_text("each person in scope (1) gets an account in Peer app")
    page.get_by_label("Reason (optional)").fill("pilot with engineering")
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_test_id("policy-mode")).to_have_text("On")
    assert LifecyclePolicy.objects.get(integration=app).mode == PolicyMode.ON

    # The person's page lists the account the policy made, and then its birthright group.
    page.goto(f"{live_server.url}/people/{ada.pk}/")
    accounts = page.get_by_test_id("person-accounts")
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        text = accounts.inner_text()
        if "Peer app" in text and "Engineering" in text:
            break
        time.sleep(1)
        page.reload()
    expect(accounts).to_contain_text("Peer app")
    expect(accounts).to_contain_text("Engineering")
    found = peer.http.get("/Users", params={"filter": 'userName eq "ada"'}).json()["Resources"]
    assert len(found) == 1
    group = peer.http.get("/Groups", params={"filter": 'displayName eq "Engineering"'}).json()["Resources"][0]
    assert [m["value"] for m in group.get("members") or []] == [found[0]["id"]]
