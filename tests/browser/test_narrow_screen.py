"""At 390 px wide (a phone) the main pages fit the screen: only tables scroll, inside their card."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from playwright.sync_api import Page

from console.accounts.models import Person, Team
from integrations.models import ExtractionRun, Integration, TargetGroup, TargetUser
from lifecycle.models import BirthrightMapping, LifecyclePolicy, PlannedChange, PolicyMode, SensitiveGroup
from provisioning.models import Action, ActionState, ActionType, Batch
from tests.browser.test_api_key_journey import sign_in

pytestmark = pytest.mark.browser

LONG = "someone.with.a.rather-long-address" * 2 + "@subsidiary.example.com"


@pytest.fixture
def seeded(make_person: Callable[..., Person]) -> dict[str, int]:
    """Rows with long names and addresses, so each page has something wide to fit."""
    make_person("ada", roles=["admin"], email="ada@example.com")
    someone = make_person(LONG, roles=["operator"], email=LONG, department="Research and Development " * 3)
    team = Team.objects.create(name="A team with a long name " * 4)
    app = Integration.objects.create(
        name="Atlassian Cloud (production tenant)",
        base_url="https://api.atlassian.com/scim/directory/0123456789abcdef0123456789abcdef/",
        bearer_token="t",
    )
    ExtractionRun.objects.create(integration=app, trigger="manual", status=ExtractionRun.Status.SUCCEEDED)
    users = [
        TargetUser.objects.create(
            integration=app,
            remote_id=f"{i:032x}",
            user_name=f"{i}.{LONG}",
            email=LONG,
            content_hash="h",
            owner=someone,  # the person's page lists them, with the action in flight
            owner_source="email",
        )
        for i in range(5)
    ]
    group = TargetGroup.objects.create(
        integration=app, remote_id="g" * 40, display_name="Group " * 20, content_hash="h"
    )
    # The Lifecycle tab: a simulating policy with its plan, a mapping waiting for a second admin.
    policy = LifecyclePolicy.objects.create(integration=app, mode=PolicyMode.SIMULATE)
    policy.teams.set([team])
    PlannedChange.objects.create(
        policy=policy, person=someone, action_type=ActionType.SYNC_IDENTITIES, subject=LONG, cause="Joiner: " + LONG
    )
    mapping = BirthrightMapping.objects.create(integration=app, team=team, state="pending")
    mapping.groups.set([group])
    SensitiveGroup.objects.create(group=group)
    batch = Batch.objects.create(integration=app, action_type=ActionType.DEPROVISION_IDENTITY, requested_by=someone)
    action = Action.objects.create(
        integration=app,
        action_type=ActionType.DEPROVISION_IDENTITY,
        state=ActionState.PENDING_APPROVAL,
        requested_by=someone,
        target_user=users[0],
        subject=users[0].user_name,
        parameters={"reason": "x" * 300},
        batch=batch,
    )
    return {"integration": app.pk, "user": users[0].pk, "person": someone.pk, "action": action.pk, "batch": batch.pk}


def test_the_main_pages_are_no_wider_than_a_phone(page: Page, live_server: Any, seeded: dict[str, int]) -> None:
    base = live_server.url
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, base, "ada")
    page.wait_for_url(f"{base}/")
    app = seeded["integration"]
    paths = [
        "/",
        "/integrations/",
        f"/integrations/{app}/",
        f"/integrations/{app}/users/",
        f"/integrations/{app}/users/{seeded['user']}/",
        f"/integrations/{app}/groups/",
        f"/integrations/{app}/lifecycle/",
        f"/integrations/{app}/lifecycle/plan/",
        "/actions/",
        f"/actions/{seeded['action']}/",
        f"/actions/batches/{seeded['batch']}/",
        "/approvals/",
        "/people/",
        f"/people/{seeded['person']}/",
        "/teams/",
        "/audit/",
        "/account/api-keys/",
        "/settings/",
    ]
    folder = Path(settings.DATA_DIR) / "test-logs"
    folder.mkdir(parents=True, exist_ok=True)
    wider = {}
    for path in paths:
        page.goto(f"{base}{path}")
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > 390:
            page.screenshot(path=folder / f"narrow-{path.strip('/').replace('/', '-') or 'dashboard'}.png")
            wider[path] = width
    assert not wider, f"wider than 390 px: {wider}"

    # The accounts table is wider than the phone: it scrolls inside its frame instead.
    page.goto(f"{base}/integrations/{app}/users/?columns=user_name&columns=display_name&columns=email")
    frame = page.locator(".table-wrap").first
    assert frame.evaluate("e => e.scrollWidth > e.clientWidth")
    assert frame.evaluate("e => getComputedStyle(e).overflowX") == "auto"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    # What does wrap, wraps between words: an audit verb ("Person created over SCIM") is never
    # cut inside a word to squeeze its column; the table scrolls instead.
    for path in ("/", "/audit/"):
        page.goto(f"{base}{path}")
        assert page.locator(".verb").count() > 0, path
        broken = page.evaluate(CUT_WORDS, ".verb")
        assert not broken, f"{path}: words cut across lines: {broken}"


# The words of the elements matching a selector that the browser laid out on more than one line.
CUT_WORDS = """selector => {
  const cut = [];
  for (const element of document.querySelectorAll(selector)) {
    for (const node of element.childNodes) {
      if (node.nodeType !== Node.TEXT_NODE) continue;
      let at = 0;
      for (const word of node.textContent.split(" ")) {
        const range = document.createRange();
        range.setStart(node, at);
        range.setEnd(node, at + word.length);
        const lines = new Set([...range.getClientRects()].map((box) => Math.round(box.top)));
        if (lines.size > 1) cut.push(word);
        at += word.length + 1;
      }
    }
  }
  return cut;
}"""


def test_on_a_1280px_screen_an_admins_top_bar_is_one_line(page: Page, live_server: Any, seeded: dict[str, int]) -> None:
    """Every section shown (an admin's), with approvals waiting: the account menu stays beside the
    search, on the brand's line, rather than dropping alone to a second line."""
    base = live_server.url
    page.set_viewport_size({"width": 1280, "height": 800})
    sign_in(page, base, "ada")
    page.wait_for_url(f"{base}/")
    Action.objects.filter(pk=seeded["action"]).update(state=ActionState.PENDING_APPROVAL)
    page.goto(f"{base}/integrations/{seeded['integration']}/")
    tops = page.evaluate(
        "['.brand', '.global-search', '.account-menu'].map(s => document.querySelector(s).getBoundingClientRect().top)"
    )
    assert tops[0] == tops[2], tops
    assert page.locator(".global-search").bounding_box()["width"] >= 160  # type: ignore[index]
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 0
    assert page.locator(".global-search").bounding_box()["width"] > 300  # type: ignore[index]  # a phone: full width
