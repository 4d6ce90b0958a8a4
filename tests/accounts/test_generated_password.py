"""The first admin's generated password is shown once; their first sign-in asks for their own."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from console.accounts.models import Person
from console.accounts.services import api_key_create

pytestmark = pytest.mark.django_db


def _first_admin(monkeypatch: Any) -> tuple[str, str]:
    monkeypatch.delenv("CONSOLE_ADMIN_PASSWORD", raising=False)
    monkeypatch.setenv("CONSOLE_ADMIN_USERNAME", "root-admin")
    out = io.StringIO()
    call_command("ensure_admin", stdout=out)
    password = re.search(r"password:\s+(\S+)", out.getvalue())
    assert password, out.getvalue()
    assert "the first sign-in asks for a new one" in out.getvalue()
    return "root-admin", password.group(1)


def test_the_first_sign_in_with_a_generated_password_asks_for_a_new_one(monkeypatch: Any) -> None:
    username, generated = _first_admin(monkeypatch)
    client = Client()

    signed_in = client.post("/sign-in/", {"username": username, "password": generated}, follow=True)

    assert signed_in.redirect_chain[-1][0] == "/account/password/"
    assert "was generated for you: choose your own now" in signed_in.content.decode()
    assert client.get("/")["Location"] == "/account/password/"  # every page leads there until it is done
    assert client.get("/integrations/")["Location"] == "/account/password/"
    changed = client.post(
        "/account/password/",
        {"old_password": generated, "new_password1": "my-own-long-pass-77", "new_password2": "my-own-long-pass-77"},
    )
    assert changed.status_code == 302
    assert not Person.objects.get(username=username).password_change_required
    assert client.get("/").status_code == 200


def test_api_keys_are_not_held_up_by_it(monkeypatch: Any) -> None:
    username, _ = _first_admin(monkeypatch)
    person = Person.objects.get(username=username)
    token = api_key_create(actor=person, owner=person, name="automation").token

    response = Client().get("/api/v1/people/", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200


def test_a_password_from_the_environment_is_the_admins_own(monkeypatch: Any) -> None:
    monkeypatch.setenv("CONSOLE_ADMIN_PASSWORD", "chosen-by-the-operator-42")
    monkeypatch.setenv("CONSOLE_ADMIN_USERNAME", "ops")
    call_command("ensure_admin", stdout=io.StringIO())
    assert not Person.objects.get(username="ops").password_change_required
