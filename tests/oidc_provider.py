"""A real OpenID Connect provider on loopback (Canaille, run by pytest-iam), and how the console signs in with it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client

from console.core.models import ConsoleSettings

CLIENT_ID = "lifecycle-console"
CLIENT_SECRET = "provider-client-secret-1234"
# A client whose ID tokens are made out to another application (Canaille's per-client audience).
MISDIRECTED_CLIENT_ID = "console-misdirected"
OTHER_CLIENT_ID = "some-other-application"
CALLBACK_PATH = "/sign-in/sso/callback/"


@dataclass
class Provider:
    server: Any  # pytest_iam.Server
    clients: dict[str, Any]

    @property
    def issuer(self) -> str:
        return self.server.url.rstrip("/")

    def allow_console_at(self, base_url: str) -> None:
        """Register ``base_url`` (a live server's) as a redirect and post-sign-out address of every client."""
        for client in self.clients.values():
            self.server.backend.update(
                client,
                redirect_uris=sorted({*client.redirect_uris, base_url + CALLBACK_PATH}),
                post_logout_redirect_uris=sorted({*client.post_logout_redirect_uris, base_url + "/sign-in/"}),
            )
            self.server.backend.save(client)

    def person(self, username: str, *, email: str | None = None, **fields: Any) -> Any:
        """A user at the provider whose ``preferred_username`` (Canaille: display name) is ``username``."""
        return self.server.random_user(
            user_name=username.lower().replace("@", "-"),
            display_name=username,
            emails=[email or f"{username.lower()}@example.com"],
            **fields,
        )

    def configure_console(self, *, client_id: str = CLIENT_ID, **settings: Any) -> ConsoleSettings:
        values = {
            "oidc_enabled": True,
            "oidc_issuer": self.server.url,
            "oidc_client_id": client_id,
            "oidc_client_secret": CLIENT_SECRET,
            "oidc_button_label": "Sign in with Canaille",
            **settings,
        }
        current, _ = ConsoleSettings.objects.update_or_create(pk=1, defaults=values)
        return current

    def sign_in(self, client: Client, user: Any, *, bend: Callable[[str], str] | None = None) -> Any:
        """Click "Sign in with …", be signed in at the provider already, and come back: the console's answer."""
        start = client.get("/sign-in/sso/")
        assert start.status_code == 302, start.content[:500]
        authorize = start["Location"]
        assert authorize.startswith(self.server.url), authorize
        if bend is not None:
            authorize = bend(authorize)
        self.server.login(user)
        self.server.consent(user)
        try:
            answer = self.server.test_client.get(authorize)
        finally:
            self.server.logout()
        assert answer.status_code == 302, answer.text[:500]
        back = urlsplit(answer.location)
        assert back.path == CALLBACK_PATH, answer.location
        return client.get(f"{back.path}?{back.query}")


@pytest.fixture(scope="session")
def oidc_provider(iam_server: Any) -> Provider:
    """The provider, with the console registered as a confidential client (and one misdirected twin)."""
    models = iam_server.models
    redirect = ["http://testserver" + CALLBACK_PATH]
    common = {
        "client_secret": CLIENT_SECRET,
        "redirect_uris": redirect,
        "post_logout_redirect_uris": ["http://testserver/sign-in/"],
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
        "scope": ["openid", "profile", "email"],
    }
    console = models.Client(client_id=CLIENT_ID, client_name="Lifecycle Console", **common)
    other = models.Client(client_id=OTHER_CLIENT_ID, client_name="Another application", **common)
    misdirected = models.Client(client_id=MISDIRECTED_CLIENT_ID, client_name="Misdirected", **common)
    for client in (console, other, misdirected):
        iam_server.backend.save(client)
    console.audience = [console]
    other.audience = [other]
    misdirected.audience = [other]
    for client in (console, other, misdirected):
        iam_server.backend.save(client)
    return Provider(iam_server, {CLIENT_ID: console, OTHER_CLIENT_ID: other, MISDIRECTED_CLIENT_ID: misdirected})
