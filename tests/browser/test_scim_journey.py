"""In a real browser: a person pushed over SCIM signs in with their team's role, until SCIM deactivates them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from console.accounts.models import Person, Role, Team
from console.accounts.services import api_key_create, team_set_roles
from console.core.models import ConsoleSettings
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def sign_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/sign-in/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_scim_person_in_a_viewer_team_reads_but_cannot_change_and_loses_sign_in_when_deactivated(
    page: Page, live_server: Any, make_person: Callable[..., Person], admin: Person
) -> None:
    ConsoleSettings.objects.update_or_create(pk=1, defaults={"scim_provisioning_enabled": True})
    provisioner = make_person("okta", roles=["scim_provisioner"], password=None)
    token = api_key_create(actor=provisioner, owner=provisioner, name="okta").token
    scim = httpx.Client(
        base_url=f"{live_server.url}/scim/v2",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"},
    )
    created = scim.post(
        "/Users",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "nora@example.com",
            "name": {"givenName": "Nora", "familyName": "Reader"},
            "emails": [{"value": "nora@example.com", "type": "work", "primary": True}],
            "active": True,
        },
    )
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]
    group = scim.post("/Groups", json={"displayName": "Readers", "members": [{"value": user_id}]})
    assert group.status_code == 201, group.text
    team_set_roles(
        actor=admin, team=Team.objects.get(scim_id=group.json()["id"]), roles=[Role.objects.get(name="viewer")]
    )
    person = Person.objects.get(scim_id=user_id)
    person.set_password(PASSWORD)  # SCIM people have no password of their own here
    person.save()

    sign_in(page, live_server.url, "nora@example.com")
    page.goto(f"{live_server.url}/people/{person.pk}/")
    expect(page.get_by_text("Viewer — through team Readers")).to_be_visible()
    expect(page.locator("#scim-managed-note")).to_be_visible()
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    expect(page.get_by_role("button", name="Deactivate")).to_have_count(0)
    page.goto(f"{live_server.url}/people/")
    expect(page.get_by_role("link", name="nora@example.com")).to_be_visible()
    expect(page.get_by_role("link", name="Add person")).to_have_count(0)
    page.goto(f"{live_server.url}/teams/")
    expect(page.get_by_role("link", name="Readers")).to_be_visible()
    refused = page.goto(f"{live_server.url}/people/new/")
    assert refused is not None
    assert refused.status == 403

    off = scim.patch(
        f"/Users/{user_id}", json={"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]}
    )
    assert off.status_code == 200, off.text
    page.goto(f"{live_server.url}/people/")
    expect(page).to_have_url(f"{live_server.url}/sign-in/?next=/people/")
    sign_in(page, live_server.url, "nora@example.com")
    expect(page).to_have_url(f"{live_server.url}/sign-in/")
    expect(page.get_by_role("alert")).to_be_visible()
