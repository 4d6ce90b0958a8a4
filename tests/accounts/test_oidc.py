"""Sign-in through a real OpenID Connect provider (Canaille on loopback): who gets in, who does not, and why."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.test import Client

from console.accounts.models import Person, Role
from console.accounts.services import api_key_create, person_set_active
from console.audit.models import AuditEvent
from tests.oidc_provider import MISDIRECTED_CLIENT_ID, Provider

pytestmark = pytest.mark.django_db

SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def refusal(response: object) -> str:
    """The reason the sign-in page shows after a refused sign-in."""
    assert response.status_code == 302  # type: ignore[attr-defined]
    assert response["Location"] == "/sign-in/"  # type: ignore[index]
    return str(AuditEvent.objects.filter(verb="auth.sign_in_failed").latest("id").details["reason"])


def shown(client: Client) -> str:
    """The messages the sign-in page shows next."""
    return " ".join(str(message) for message in client.get("/sign-in/").context["messages"])


def test_an_active_person_with_a_role_signs_in_and_lands_on_the_dashboard(
    oidc_provider: Provider, make_person: Callable[..., Person]
) -> None:
    alice = make_person("Alice", roles=["viewer"])
    oidc_provider.configure_console()
    client = Client()
    response = oidc_provider.sign_in(client, oidc_provider.person("alice"))  # the claim's case does not matter
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.get("/").status_code == 200
    event = AuditEvent.objects.get(verb="auth.signed_in")
    assert event.actor_id == alice.pk
    assert event.details == {"method": "oidc", "provider": oidc_provider.server.url}
    assert event.source_address == "127.0.0.1"


def test_the_sign_in_page_offers_the_provider_first(oidc_provider: Provider) -> None:
    oidc_provider.configure_console()
    page = Client().get("/sign-in/?next=/people/").content.decode()
    assert page.index("Sign in with Canaille") < page.index('name="password"')
    assert "/sign-in/sso/?next=/people/" in page


def test_the_email_claim_can_name_the_person(oidc_provider: Provider, make_person: Callable[..., Person]) -> None:
    make_person("Bea.Smith@Example.com", roles=["viewer"])
    oidc_provider.configure_console(oidc_username_claim="email")
    user = oidc_provider.person("someone-else", email="bea.smith@example.com")
    assert oidc_provider.sign_in(Client(), user)["Location"] == "/"


def test_an_unknown_person_is_refused_and_not_created_while_scim_is_on(
    oidc_provider: Provider, make_person: Callable[..., Person]
) -> None:
    make_person("root-admin", roles=["admin"])
    # Even a stale just-in-time switch creates no one while SCIM provisioning is on.
    oidc_provider.configure_console(scim_provisioning_enabled=True, oidc_create_people=True)
    before = Person.objects.count()
    response = oidc_provider.sign_in(Client(), oidc_provider.person("stranger"))
    assert refusal(response) == "unknown person"
    assert Person.objects.count() == before
    event = AuditEvent.objects.get(verb="auth.sign_in_failed")
    assert event.details["username"] == "stranger"
    assert event.details["method"] == "oidc"


def test_an_unknown_person_is_refused_when_creation_is_off(oidc_provider: Provider) -> None:
    oidc_provider.configure_console()
    assert refusal(oidc_provider.sign_in(Client(), oidc_provider.person("nobody"))) == "unknown person"
    assert not Person.objects.filter(username__iexact="nobody").exists()


def test_an_inactive_person_is_refused(oidc_provider: Provider, make_person: Callable[..., Person]) -> None:
    make_person("dormant", roles=["viewer"], active=False)
    oidc_provider.configure_console()
    client = Client()
    assert refusal(oidc_provider.sign_in(client, oidc_provider.person("dormant"))) == "inactive"
    assert client.get("/").status_code == 302


def test_a_person_without_a_role_is_refused(oidc_provider: Provider, make_person: Callable[..., Person]) -> None:
    make_person("roleless", roles=[])
    oidc_provider.configure_console()
    client = Client()
    assert refusal(oidc_provider.sign_in(client, oidc_provider.person("roleless"))) == "no role"
    assert client.get("/").status_code == 302


def test_a_person_deactivated_over_scim_loses_the_session_and_cannot_sign_in_again(
    oidc_provider: Provider, make_person: Callable[..., Person]
) -> None:
    pushed = make_person("pushed.person", roles=["viewer"], source="scim", password=None)
    oidc_provider.configure_console(scim_provisioning_enabled=True)
    user = oidc_provider.person("pushed.person")
    client = Client()
    assert oidc_provider.sign_in(client, user)["Location"] == "/"
    assert client.get("/").status_code == 200
    person_set_active(actor=None, person=pushed, active=False, via_scim=True)
    assert client.get("/").status_code == 302  # the session ended at deactivation
    # The provider would still sign them in; the console refuses, and says why.
    assert refusal(oidc_provider.sign_in(client, user)) == "inactive"
    assert "inactive" in shown(client)


@pytest.mark.parametrize("deactivation", ["PATCH active false", "DELETE"])
def test_a_person_deactivated_through_the_scim_endpoint_is_signed_out_and_told_why(
    deactivation: str, oidc_provider: Provider, make_person: Callable[..., Person]
) -> None:
    """The identity provider deactivates someone over /scim/v2 while they are signed in here, and
    still has a session for them at its end: the console's session is gone, and the next sign-in
    through the provider is refused with the reason shown and audited."""
    make_person("root-admin", roles=["admin"])
    provisioner = make_person("idp-provisioner", roles=["scim_provisioner"], password=None)
    scim = Client(HTTP_AUTHORIZATION=f"Bearer {api_key_create(actor=provisioner, owner=provisioner, name='idp').token}")
    oidc_provider.configure_console(scim_provisioning_enabled=True)
    created = scim.post(
        "/scim/v2/Users",
        data=json.dumps({"schemas": [SCIM_USER], "userName": "Pat.Pushed", "active": True}),
        content_type="application/scim+json",
    )
    assert created.status_code == 201, created.content
    pushed = Person.objects.get(scim_id=created.json()["id"])
    pushed.roles.add(Role.objects.get(name="viewer"))  # an admin gave them a role
    user = oidc_provider.person("pat.pushed")
    client = Client()
    assert oidc_provider.sign_in(client, user)["Location"] == "/"
    assert client.get("/").status_code == 200

    path = f"/scim/v2/Users/{pushed.scim_id}"
    if deactivation == "DELETE":
        assert scim.delete(path).status_code == 204
    else:
        body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": False}]}
        answer = scim.patch(path, data=json.dumps(body), content_type="application/scim+json")
        assert answer.status_code == 200, answer.content

    assert client.get("/")["Location"].startswith("/sign-in/")  # the session ended at deactivation
    assert refusal(oidc_provider.sign_in(client, user)) == "inactive"
    assert "Your account in this console is inactive, so it cannot sign in." in shown(client)
    assert client.get("/").status_code == 302
    event = AuditEvent.objects.filter(verb="auth.sign_in_failed").latest("id")
    assert (event.details["username"], event.details["method"]) == ("pat.pushed", "oidc")
    assert event.source_address == "127.0.0.1"


def test_sign_in_never_changes_a_person(oidc_provider: Provider, make_person: Callable[..., Person]) -> None:
    kept = make_person("kept", roles=["viewer"], given_name="Kept", email="kept@corp.example", source="scim")
    oidc_provider.configure_console(scim_provisioning_enabled=True)
    user = oidc_provider.person("kept", email="changed@example.com", given_name="Changed")
    assert oidc_provider.sign_in(Client(), user)["Location"] == "/"
    fresh = Person.objects.get(pk=kept.pk)
    assert (fresh.given_name, fresh.email, fresh.updated_at) == ("Kept", "kept@corp.example", kept.updated_at)
    assert list(fresh.roles.values_list("name", flat=True)) == ["viewer"]


def test_just_in_time_creation_gives_the_default_role_while_scim_is_off(oidc_provider: Provider) -> None:
    oidc_provider.configure_console(oidc_create_people=True, oidc_default_role=Role.objects.get(name="viewer"))
    client = Client()
    assert oidc_provider.sign_in(client, oidc_provider.person("newcomer"))["Location"] == "/"
    created = Person.objects.get(username="newcomer")
    assert [role.name for role in created.roles.all()] == ["viewer"]
    assert created.source == "local"
    assert not created.has_usable_password()
    assert AuditEvent.objects.filter(verb="person.created", target_id=str(created.pk)).exists()


def test_just_in_time_creation_without_a_default_role_creates_someone_who_cannot_sign_in_yet(
    oidc_provider: Provider,
) -> None:
    oidc_provider.configure_console(oidc_create_people=True)
    assert refusal(oidc_provider.sign_in(Client(), oidc_provider.person("waiting"))) == "no role"
    assert Person.objects.get(username="waiting").roles.count() == 0


def test_a_token_made_out_to_another_application_is_refused(
    oidc_provider: Provider, make_person: Callable[..., Person]
) -> None:
    make_person("alice", roles=["viewer"])
    oidc_provider.configure_console(client_id=MISDIRECTED_CLIENT_ID)
    client = Client()
    assert refusal(oidc_provider.sign_in(client, oidc_provider.person("alice"))) == "bad token"
    assert "issued for another application (its audience)" in shown(client)
    assert client.get("/").status_code == 302


def test_a_token_with_another_nonce_is_refused(oidc_provider: Provider, make_person: Callable[..., Person]) -> None:
    make_person("alice", roles=["viewer"])
    oidc_provider.configure_console()

    def other_nonce(url: str) -> str:
        parts = urlsplit(url)
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        assert query["code_challenge_method"] == "S256"
        assert query["nonce"]
        query["nonce"] = "a-nonce-the-console-never-made"
        return parts._replace(query=urlencode(query)).geturl()

    client = Client()
    assert refusal(oidc_provider.sign_in(client, oidc_provider.person("alice"), bend=other_nonce)) == "bad token"
    assert "Invalid claim: 'nonce'" in shown(client)
    assert client.get("/").status_code == 302


def test_a_callback_the_console_did_not_start_is_refused(oidc_provider: Provider) -> None:
    oidc_provider.configure_console()
    response = Client().get("/sign-in/sso/callback/?code=abc&state=forged")
    assert refusal(response) == "bad token"


def test_a_callback_is_used_once(oidc_provider: Provider, make_person: Callable[..., Person]) -> None:
    make_person("alice", roles=["viewer"])
    oidc_provider.configure_console()
    client = Client()
    start = client.get("/sign-in/sso/")
    user = oidc_provider.person("alice")
    oidc_provider.server.login(user)
    oidc_provider.server.consent(user)
    try:
        back = oidc_provider.server.test_client.get(start["Location"]).location
    finally:
        oidc_provider.server.logout()
    callback = urlsplit(back)
    assert client.get(f"{callback.path}?{callback.query}")["Location"] == "/"
    client.post("/sign-out/")
    assert refusal(client.get(f"{callback.path}?{callback.query}")) == "bad token"


def test_sign_out_offers_to_sign_out_at_the_provider_too(
    oidc_provider: Provider, make_person: Callable[..., Person]
) -> None:
    make_person("alice", roles=["viewer"])
    oidc_provider.configure_console()
    client = Client()
    oidc_provider.sign_in(client, oidc_provider.person("alice"))
    page = client.post("/sign-out/")
    assert page.status_code == 200
    link = page.context["provider_sign_out"]
    assert link.startswith(oidc_provider.issuer)
    query = parse_qs(urlsplit(link).query)
    assert query["post_logout_redirect_uri"] == ["http://testserver/sign-in/"]
    assert query["id_token_hint"][0].count(".") == 2
    assert client.get("/").status_code == 302  # the console's session ended either way
    assert AuditEvent.objects.filter(verb="auth.signed_out").count() == 1


def test_sign_out_after_a_password_sign_in_goes_straight_to_the_sign_in_page(
    oidc_provider: Provider, make_person: Callable[..., Person]
) -> None:
    make_person("alice", roles=["viewer"])
    oidc_provider.configure_console()
    client = Client()
    client.post("/sign-in/", {"username": "alice", "password": "a-long-test-password-42"})
    assert client.post("/sign-out/")["Location"] == "/sign-in/"


def test_the_discovery_document_is_read_once(
    oidc_provider: Provider, make_person: Callable[..., Person], monkeypatch: pytest.MonkeyPatch
) -> None:
    from console.accounts import oidc

    make_person("alice", roles=["viewer"])
    oidc_provider.configure_console()
    reads: list[str] = []
    real = oidc._get_json

    def counted(url: str) -> dict[str, Any]:
        reads.append(url)
        return real(url)

    monkeypatch.setattr(oidc, "_get_json", counted)
    for _ in range(2):
        assert oidc_provider.sign_in(Client(), oidc_provider.person("alice"))["Location"] == "/"
    assert sum(url.endswith("/.well-known/openid-configuration") for url in reads) == 1


def test_without_a_provider_the_sso_start_explains(db: None) -> None:
    client = Client()
    response = client.get("/sign-in/sso/")
    assert response["Location"] == "/sign-in/"
    assert "not set up" in client.get("/sign-in/").content.decode()


def test_a_token_signed_by_another_key_is_refused(oidc_provider: Provider) -> None:
    import time

    from joserfc import jwt
    from joserfc.jwk import RSAKey

    from console.accounts import oidc

    current = oidc_provider.configure_console()
    document = oidc.discovery(oidc_provider.issuer)
    now = int(time.time())
    claims = {"iss": document["issuer"], "aud": "lifecycle-console", "sub": "x", "exp": now + 60, "iat": now}
    forged = jwt.encode({"alg": "RS256"}, {**claims, "nonce": "n"}, RSAKey.generate_key(2048))
    config = oidc.OidcConfig.from_settings(current)
    with pytest.raises(oidc.OidcError, match="signature is not the provider's"):
        oidc.id_token_claims(forged, config=config, document=document, nonce="n")


@pytest.mark.parametrize(
    ("change", "refused_for"),
    [
        ({"iss": "http://localhost:1/another-issuer"}, "'iss'"),
        ({"exp": -3600}, "expired"),
        ({"nonce": "another-nonce"}, "'nonce'"),
        ({"aud": "some-other-application"}, "another application"),
    ],
)
def test_a_token_signed_by_the_provider_s_own_key_is_refused_for_a_wrong_claim(
    change: dict[str, Any], refused_for: str, oidc_provider: Provider, iam_configuration: dict[str, Any]
) -> None:
    import time

    from joserfc import jwt
    from joserfc.jwk import RSAKey

    from console.accounts import oidc

    current = oidc_provider.configure_console()
    document = oidc.discovery(oidc_provider.issuer)
    config = oidc.OidcConfig.from_settings(current)
    key = RSAKey.import_key(iam_configuration["CANAILLE_OIDC"]["ACTIVE_JWKS"][0])  # the provider's signing key
    now = int(time.time())
    claims = {"iss": document["issuer"], "aud": config.client_id, "sub": "x", "exp": now + 60, "iat": now, "nonce": "n"}

    def signed(values: dict[str, Any]) -> str:
        return jwt.encode({"alg": "RS256", "kid": key.kid}, values, key)

    assert oidc.id_token_claims(signed(claims), config=config, document=document, nonce="n")["sub"] == "x"
    wrong = {**claims, **change}
    if "exp" in change:
        wrong["exp"] = now + change["exp"]
    with pytest.raises(oidc.OidcError, match=refused_for) as refused:
        oidc.id_token_claims(signed(wrong), config=config, document=document, nonce="n")
    assert refused.value.cause == oidc.BAD_TOKEN
