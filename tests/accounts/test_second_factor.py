"""The second factor of password sign-in: enrolment, codes, recovery codes, and the break-glass rule."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pyotp
import pytest
from django.test import Client
from django.utils import timezone

from console.accounts.models import Person, SecondFactor
from console.accounts.services import api_key_create
from console.audit.models import AuditEvent
from console.core.models import ConsoleSettings
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def password_sign_in(client: Client, username: str) -> str:
    response = client.post("/sign-in/", {"username": username, "password": PASSWORD})
    return response["Location"] if response.status_code == 302 else response.content.decode()


def enrol(client: Client, person: Person) -> tuple[str, list[str]]:
    """Set up an authenticator app on the account page; returns its secret and the recovery codes shown."""
    client.post("/account/second-factor/", {"step": "start"})
    page = client.get("/account/second-factor/").content.decode()
    assert "<svg" in page  # the QR code, inline
    secret = SecondFactor.objects.get(person=person).secret
    assert secret in page
    assert (
        client.post("/account/second-factor/", {"step": "confirm", "code": pyotp.TOTP(secret).now()}).status_code == 302
    )
    shown = client.get("/account/second-factor/")
    codes = re.findall(r"<code>([0-9a-f]{8}-[0-9a-f]{8})</code>", shown.content.decode())
    assert len(codes) == 10
    assert "recovery-codes" not in client.get("/account/second-factor/").content.decode()  # shown once
    return secret, codes


def code_at(secret: str, seconds_from_now: int) -> str:
    return pyotp.TOTP(secret).at(timezone.now() + timedelta(seconds=seconds_from_now))


def test_enrolment_then_sign_in_asks_for_a_code(make_person: Callable[..., Person]) -> None:
    alice = make_person("alice", roles=["viewer"])
    client = Client()
    client.force_login(alice)
    secret, _ = enrol(client, alice)
    assert AuditEvent.objects.filter(verb="auth.second_factor_enrolled", target_id=str(alice.pk)).exists()

    fresh = Client()
    assert password_sign_in(fresh, "alice") == "/sign-in/second-factor/"
    assert fresh.get("/").status_code == 302  # not signed in before the code
    assert fresh.post("/sign-in/second-factor/", {"code": "000000"}).status_code == 400
    # Not the code that confirmed enrolment (taken once), but the next one.
    assert fresh.post("/sign-in/second-factor/", {"code": code_at(secret, 30)})["Location"] == "/"
    assert fresh.get("/").status_code == 200
    event = AuditEvent.objects.filter(verb="auth.signed_in").latest("id")
    assert event.details == {"method": "local", "second_factor": "totp"}
    failed = AuditEvent.objects.get(verb="auth.sign_in_failed")
    assert failed.details["reason"] == "bad second factor"


def test_a_code_signs_in_once(make_person: Callable[..., Person]) -> None:
    alice = make_person("alice", roles=["viewer"])
    SecondFactor.objects.create(person=alice, secret=(secret := pyotp.random_base32()), confirmed_at=timezone.now())
    code = code_at(secret, 0)
    first, second = Client(), Client()
    password_sign_in(first, "alice")
    password_sign_in(second, "alice")
    assert first.post("/sign-in/second-factor/", {"code": code})["Location"] == "/"
    assert second.post("/sign-in/second-factor/", {"code": code}).status_code == 400
    # The next step's code is still good (a clock a little ahead).
    assert second.post("/sign-in/second-factor/", {"code": code_at(secret, 30)})["Location"] == "/"


def test_a_recovery_code_signs_in_once(make_person: Callable[..., Person]) -> None:
    alice = make_person("alice", roles=["viewer"])
    owner = Client()
    owner.force_login(alice)
    _, codes = enrol(owner, alice)
    first = Client()
    password_sign_in(first, "alice")
    assert first.post("/sign-in/second-factor/", {"code": codes[0].upper()})["Location"] == "/"
    again = Client()
    password_sign_in(again, "alice")
    assert again.post("/sign-in/second-factor/", {"code": codes[0]}).status_code == 400
    assert AuditEvent.objects.get(verb="auth.recovery_code_used").details["left"] == 9


def test_a_required_second_factor_is_set_up_at_the_next_sign_in(make_person: Callable[..., Person]) -> None:
    make_person("bob", roles=["viewer"])
    ConsoleSettings.objects.update_or_create(pk=1, defaults={"second_factor_required": True})
    client = Client()
    assert password_sign_in(client, "bob") == "/sign-in/second-factor/"
    page = client.get("/sign-in/second-factor/").content.decode()
    assert "Set up an authenticator app" in page
    assert "<svg" in page
    secret = SecondFactor.objects.get(person__username="bob").secret
    assert client.get("/sign-in/second-factor/").content.decode().count(secret) >= 1  # a reload keeps the secret
    assert client.post("/sign-in/second-factor/", {"code": "123456"}).status_code == 400
    assert client.post("/sign-in/second-factor/", {"code": pyotp.TOTP(secret).now()})["Location"] == (
        "/account/second-factor/"
    )
    assert (
        len(re.findall(r"<code>[0-9a-f]{8}-[0-9a-f]{8}</code>", client.get("/account/second-factor/").content.decode()))
        == 10
    )
    # Required: it cannot be removed.
    code = code_at(secret, 30)
    assert client.post("/account/second-factor/", {"step": "remove", "code": code}).status_code == 400
    assert SecondFactor.objects.filter(person__username="bob", confirmed_at__isnull=False).exists()


def test_a_half_done_sign_in_ends_when_the_password_changes(make_person: Callable[..., Person]) -> None:
    alice = make_person("alice", roles=["viewer"])
    SecondFactor.objects.create(person=alice, secret=(secret := pyotp.random_base32()), confirmed_at=timezone.now())
    client = Client()
    password_sign_in(client, "alice")
    alice.set_password("another-long-password-77")
    alice.save()
    assert client.post("/sign-in/second-factor/", {"code": pyotp.TOTP(secret).now()})["Location"] == "/sign-in/"
    assert client.get("/").status_code == 302


def test_the_second_factor_page_needs_a_password_first(db: None) -> None:
    assert Client().get("/sign-in/second-factor/")["Location"] == "/sign-in/"


def test_removing_the_app_needs_a_current_code(make_person: Callable[..., Person]) -> None:
    alice = make_person("alice", roles=["viewer"])
    client = Client()
    client.force_login(alice)
    secret, _ = enrol(client, alice)
    assert client.post("/account/second-factor/", {"step": "remove", "code": "000000"}).status_code == 400
    assert client.post("/account/second-factor/", {"step": "remove", "code": code_at(secret, 30)}).status_code == 302
    assert not SecondFactor.objects.filter(person=alice).exists()
    assert AuditEvent.objects.filter(verb="auth.second_factor_removed").exists()
    assert password_sign_in(Client(), "alice") == "/"


def test_new_recovery_codes_replace_the_old_ones(make_person: Callable[..., Person]) -> None:
    alice = make_person("alice", roles=["viewer"])
    client = Client()
    client.force_login(alice)
    secret, old = enrol(client, alice)
    assert client.post("/account/second-factor/", {"step": "recovery", "code": code_at(secret, 30)}).status_code == 302
    new = re.findall(r"<code>([0-9a-f]{8}-[0-9a-f]{8})</code>", client.get("/account/second-factor/").content.decode())
    assert len(new) == 10
    assert not set(new) & set(old)
    assert AuditEvent.objects.filter(verb="auth.recovery_codes_regenerated").exists()
    fresh = Client()
    password_sign_in(fresh, "alice")
    assert fresh.post("/sign-in/second-factor/", {"code": old[0]}).status_code == 400


def test_api_keys_are_unaffected(make_person: Callable[..., Person]) -> None:
    alice = make_person("alice", roles=["viewer"])
    SecondFactor.objects.create(person=alice, secret=pyotp.random_base32(), confirmed_at=timezone.now())
    ConsoleSettings.objects.update_or_create(pk=1, defaults={"second_factor_required": True})
    token = api_key_create(actor=alice, owner=alice, name="script").token
    assert Client().get("/api/v1/people/", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200


def test_only_local_admins_use_a_password_while_sso_is_on(make_person: Callable[..., Person]) -> None:
    make_person("root", roles=["admin"])
    make_person("viewer", roles=["viewer"])
    ConsoleSettings.objects.update_or_create(
        pk=1,
        defaults={
            "oidc_enabled": True,
            "oidc_issuer": "https://idp.example.com",
            "oidc_client_id": "console",
            "password_sign_in_admins_only": True,
        },
    )
    page = Client().get("/sign-in/").content.decode()
    assert "Local administrator sign-in" in page
    client = Client()
    assert password_sign_in(client, "viewer") == "/sign-in/sso/?next=%2F"
    assert client.get("/").status_code == 302
    event = AuditEvent.objects.get(verb="auth.sign_in_failed")
    assert event.details["reason"] == "password sign-in is for local admins"
    assert password_sign_in(Client(), "root") == "/"
