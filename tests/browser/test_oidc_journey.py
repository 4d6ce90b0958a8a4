"""In a real browser: "Sign in with …", sign in at the identity provider (Canaille), land on the dashboard."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from console.accounts.models import Person
from console.audit.models import AuditEvent
from tests.oidc_provider import Provider

pytestmark = pytest.mark.browser

PROVIDER_PASSWORD = "provider-password-for-grace-7"


def test_sign_in_through_the_identity_provider_lands_on_the_dashboard(
    page: Page, live_server: Any, oidc_provider: Provider, make_person: Callable[..., Person]
) -> None:
    base = live_server.url
    oidc_provider.allow_console_at(base)
    grace = make_person("grace", roles=["viewer"], source="scim", password=None)
    oidc_provider.configure_console(scim_provisioning_enabled=True, password_sign_in_admins_only=True)
    user = oidc_provider.person("grace", password=PROVIDER_PASSWORD)
    oidc_provider.server.consent(user)

    page.goto(f"{base}/sign-in/")
    page.get_by_role("link", name="Sign in with Canaille").click()

    # At the provider: its own sign-in form.
    expect(page).to_have_url(re.compile("^" + re.escape(oidc_provider.server.url)))
    page.get_by_label("Login").fill(user.user_name)
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("textbox", name="Password").fill(PROVIDER_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(f"{base}/")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    event = AuditEvent.objects.get(verb="auth.signed_in")
    assert event.actor_id == grace.pk
    assert event.details["method"] == "oidc"

    # Signing out offers the provider's sign-out too.
    page.locator(".account-menu summary").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("link", name="Sign out at the identity provider too")).to_be_visible()

    # The console's session ended; still signed in at the provider, a page asked for is
    # reached through "Sign in with …" without the provider asking again.
    page.goto(f"{base}/people/")
    expect(page).to_have_url(f"{base}/sign-in/?next=/people/")
    page.get_by_role("link", name="Sign in with Canaille").click()
    expect(page).to_have_url(f"{base}/people/")
    expect(page.get_by_role("heading", name="People")).to_be_visible()
    assert AuditEvent.objects.filter(verb="auth.signed_in", actor=grace).count() == 2
