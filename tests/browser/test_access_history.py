"""In a real browser: the group page's date picker shows the members on a past date, and says what is known."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from console.accounts.models import Person
from integrations.extraction import extraction_run_execute
from integrations.models import ExtractionRun, Integration, MembershipChange, TargetGroup, TargetUser
from tests.conftest import PASSWORD
from tests.scim_peer import PEER_TOKEN, Peer

pytestmark = [pytest.mark.browser]


def extract(app: Integration) -> None:
    run = ExtractionRun.objects.create(integration=app, trigger="manual")
    done = extraction_run_execute(run_id=run.pk)
    assert done is not None
    assert done.status == "succeeded", done.error


def test_a_viewer_picks_a_past_date_on_a_groups_page(
    page: Page, live_server: Any, make_person: Callable[..., Person], peer: Peer
) -> None:
    ada, bob, cy = (peer.user(name) for name in ("ada", "bob", "cy"))
    engineers = peer.group("Engineers", [ada, bob])
    app = Integration.objects.create(name="Peer app", base_url=peer.url, bearer_token=PEER_TOKEN)
    extract(app)
    peer.http.patch(
        f"/Groups/{engineers['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {"op": "remove", "path": f'members[value eq "{bob["id"]}"]'},
                {"op": "add", "path": "members", "value": [{"value": cy["id"]}]},
            ],
        },
    ).raise_for_status()
    extract(app)
    # The first read ten days ago, the change two days ago.
    now = timezone.now()
    Integration.objects.filter(pk=app.pk).update(history_since=now - timedelta(days=10))
    TargetGroup.objects.filter(integration=app).update(first_seen_at=now - timedelta(days=10))
    TargetUser.objects.filter(integration=app).update(first_seen_at=now - timedelta(days=10))
    assert MembershipChange.objects.update(at=now - timedelta(days=2)) == 2
    group = TargetGroup.objects.get(integration=app, display_name="Engineers")
    make_person("vera", roles=["viewer"])

    page.goto(f"{live_server.url}/sign-in/")
    page.get_by_label("User name").fill("vera")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server.url}/integrations/{app.pk}/groups/{group.pk}/")
    expect(page.get_by_role("link", name="cy", exact=True)).to_be_visible()

    page.get_by_label("Members as of").fill((timezone.localdate() - timedelta(days=5)).isoformat())
    expect(page.get_by_test_id("as-of-words")).to_contain_text("As of ")
    expect(page.get_by_role("link", name="bob", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="cy", exact=True)).to_have_count(0)

    page.get_by_label("Members as of").fill((timezone.localdate() - timedelta(days=20)).isoformat())
    expect(page.get_by_test_id("as-of-words")).to_contain_text("before that nothing is known")
    expect(page.get_by_role("link", name="ada", exact=True)).to_have_count(0)
