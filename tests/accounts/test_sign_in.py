"""Signing in and out, throttling, and what the audit log records of it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client, override_settings

from console.accounts.models import Person
from console.audit.models import AuditEvent
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def sign_in(client: Client, username: str, password: str = PASSWORD, address: str = "10.0.0.1") -> str:
    response = client.post("/sign-in/", {"username": username, "password": password}, REMOTE_ADDR=address)
    return response.content.decode() if response.status_code == 200 else f"redirect:{response['Location']}"


def test_a_viewer_signs_in_and_lands_on_the_dashboard(make_person: Callable[..., Person]) -> None:
    alice = make_person("alice", roles=["viewer"])
    client = Client()
    assert sign_in(client, "alice") == "redirect:/"
    assert client.get("/").status_code == 200
    event = AuditEvent.objects.get(verb="auth.signed_in")
    assert event.actor_id == alice.pk
    assert event.source_address == "10.0.0.1"


def test_user_names_ignore_case_when_signing_in(make_person: Callable[..., Person]) -> None:
    make_person("Alice", roles=["viewer"])
    assert sign_in(Client(), "aLiCe") == "redirect:/"


def test_a_wrong_password_is_refused_and_recorded(make_person: Callable[..., Person]) -> None:
    make_person("alice")
    page = sign_in(Client(), "alice", "wrong-password")
    assert "not right" in page
    event = AuditEvent.objects.get(verb="auth.sign_in_failed")
    assert event.details["username"] == "alice"
    assert event.details["reason"] == "bad password"
    assert "wrong-password" not in str(event.details)


def test_a_refused_password_sign_in_is_audited_with_its_cause_but_the_page_does_not_tell(
    make_person: Callable[..., Person],
) -> None:
    make_person("dora", active=False)
    assert "not right" in sign_in(Client(), "nobody-here")
    assert "not right" in sign_in(Client(), "dora")  # the right password, but inactive
    causes = AuditEvent.objects.filter(verb="auth.sign_in_failed").order_by("id")
    assert [(e.details["username"], e.details["reason"], e.details["method"]) for e in causes] == [
        ("nobody-here", "unknown person", "local"),
        ("dora", "inactive", "local"),
    ]
    assert {e.source_address for e in causes} == {"10.0.0.1"}


def test_an_inactive_person_cannot_sign_in(make_person: Callable[..., Person]) -> None:
    make_person("bob", active=False)
    client = Client()
    assert "not right" in sign_in(client, "bob")
    assert client.get("/").status_code == 302


def test_a_person_without_a_console_role_is_told_why(make_person: Callable[..., Person]) -> None:
    make_person("carol", roles=[])
    client = Client()
    page = sign_in(client, "carol")
    assert "has no console role" in page
    assert client.get("/").status_code == 302
    assert AuditEvent.objects.get(verb="auth.sign_in_failed").details["reason"] == "no console role"


def test_a_scim_provisioner_cannot_sign_in_to_the_ui(make_person: Callable[..., Person]) -> None:
    make_person("okta", roles=["scim_provisioner"])
    assert "has no console role" in sign_in(Client(), "okta")


@override_settings(SIGN_IN_MAX_FAILURES_PER_ACCOUNT=3, SIGN_IN_MAX_FAILURES_PER_ADDRESS=100)
def test_failed_sign_ins_are_throttled_per_account_even_with_the_right_password(
    make_person: Callable[..., Person],
) -> None:
    make_person("alice")
    for attempt in range(3):
        sign_in(Client(), "alice", "wrong", address=f"10.0.0.{attempt + 1}")
    page = sign_in(Client(), "alice", address="10.0.0.9")
    assert "Too many failed sign-ins" in page
    assert AuditEvent.objects.filter(verb="auth.sign_in_failed", details__reason="throttled").count() == 1
    # Another account is unaffected.
    make_person("bob")
    assert sign_in(Client(), "bob", address="10.0.0.9") == "redirect:/"


@override_settings(SIGN_IN_MAX_FAILURES_PER_ACCOUNT=100, SIGN_IN_MAX_FAILURES_PER_ADDRESS=4)
def test_failed_sign_ins_are_throttled_per_address(make_person: Callable[..., Person]) -> None:
    make_person("victim")
    for name in ("a", "b", "c", "d"):
        sign_in(Client(), name, "guess", address="192.0.2.7")
    assert "Too many failed sign-ins" in sign_in(Client(), "victim", address="192.0.2.7")
    assert sign_in(Client(), "victim", address="192.0.2.8") == "redirect:/"


def test_signing_out_needs_a_post_and_ends_the_session(make_person: Callable[..., Person]) -> None:
    make_person("alice")
    client = Client()
    sign_in(client, "alice")
    assert client.get("/sign-out/").status_code == 405
    assert client.post("/sign-out/").status_code == 302
    assert client.get("/").status_code == 302
    assert AuditEvent.objects.filter(verb="auth.signed_out").count() == 1


def test_changing_the_password_needs_the_old_one_and_is_audited(make_person: Callable[..., Person]) -> None:
    alice = make_person("alice")
    new = "brand-new-passphrase-7"
    client = Client()
    client.force_login(alice)
    bad = client.post(
        "/account/password/",
        {"old_password": "nope", "new_password1": new, "new_password2": new},
    )
    assert bad.status_code == 200
    assert "incorrectly" in bad.content.decode()
    ok = client.post(
        "/account/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "brand-new-passphrase-7",
            "new_password2": "brand-new-passphrase-7",
        },
    )
    assert ok.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password("brand-new-passphrase-7")
    assert AuditEvent.objects.filter(verb="auth.password_changed", actor_id=alice.pk).exists()


def test_deactivating_a_person_ends_their_sessions(make_person: Callable[..., Person], admin_client: Client) -> None:
    alice = make_person("alice")
    alice_client = Client()
    sign_in(alice_client, "alice")
    assert alice_client.get("/").status_code == 200
    response = admin_client.post(f"/people/{alice.pk}/active/", {"active": "false"})
    assert response.status_code == 302
    assert alice_client.get("/").status_code == 302
    assert AuditEvent.objects.filter(verb="person.deactivated", target_id=str(alice.pk)).exists()


def test_ended_sessions_stay_ended_after_reactivation_and_others_keep_theirs(
    make_person: Callable[..., Person], admin_client: Client
) -> None:
    alice = make_person("alice")
    bob = make_person("bob")
    laptop, phone, bobs = Client(), Client(), Client()
    for client, name in ((laptop, "alice"), (phone, "alice"), (bobs, "bob")):
        sign_in(client, name)
        assert client.get("/").status_code == 200
    admin_client.post(f"/people/{alice.pk}/active/", {"active": "false"})
    admin_client.post(f"/people/{alice.pk}/active/", {"active": "true"})
    assert Person.objects.get(pk=alice.pk).is_active
    assert laptop.get("/").status_code == 302  # both of her sessions ended for good
    assert phone.get("/").status_code == 302
    assert bobs.get("/").status_code == 200
    assert Person.objects.get(pk=bob.pk).session_generation == 0
    fresh = Client()
    assert sign_in(fresh, "alice").startswith("redirect:")
    assert fresh.get("/").status_code == 200


def test_ending_sessions_costs_one_update_whatever_the_number_of_sessions(
    make_person: Callable[..., Person],
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from console.accounts.services import sessions_end_for

    alice = make_person("alice")
    for i in range(30):
        make_person(f"other{i}")
        sign_in(Client(), f"other{i}", address=f"10.0.1.{i}")
    with CaptureQueriesContext(connection) as captured:
        sessions_end_for(person=alice)
    statements = [q["sql"] for q in captured.captured_queries]
    assert not any("django_session" in sql for sql in statements)
    assert len(statements) <= 2


def test_a_wrong_password_says_the_user_name_ignores_case_and_the_password_does_not(
    make_person: Callable[..., Person],
) -> None:
    make_person("alice")
    page = sign_in(Client(), "ALICE", PASSWORD.upper())
    assert "The user name is not case-sensitive; the password is" in page
