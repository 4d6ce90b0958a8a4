"""Personal API keys: shown once, stored hashed, revocable, tied to an active owner."""

from __future__ import annotations

from collections.abc import Callable
from io import StringIO
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from console.accounts.access import api_key_authenticate
from console.accounts.models import ApiKey, Person, Role, Team, hash_api_key_secret
from console.accounts.selectors import person_permissions
from console.accounts.services import api_key_create, team_members_add
from console.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_a_key_made_through_the_api_is_shown_once_and_stored_only_as_a_hash(
    make_person: Callable[..., Person],
) -> None:
    alice = make_person("alice", roles=["viewer"])
    client = APIClient()
    client.force_login(alice)
    response = client.post("/api/v1/api-keys/", {"name": "laptop"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    token = body["key"]
    assert token.startswith(f"lck_{body['prefix']}_")
    assert response["Cache-Control"] == "no-store"
    key = ApiKey.objects.get(pk=body["id"])
    assert token not in key.secret_hash
    assert key.secret_hash == hash_api_key_secret(token.split("_", 2)[2])
    # Listing and reading again never show it.
    assert "key" not in client.get(f"/api/v1/api-keys/{key.pk}/").json()
    listed = client.get("/api/v1/api-keys/").json()["results"]
    assert [k["prefix"] for k in listed] == [body["prefix"]]
    assert token not in str(listed)
    # Nor does the audit log.
    event = AuditEvent.objects.get(verb="api_key.created")
    assert token not in str(event.details)
    assert event.details["prefix"] == body["prefix"]


def test_a_key_authenticates_and_records_when_it_was_last_used(make_person: Callable[..., Person]) -> None:
    alice = make_person("alice", roles=["viewer"])
    created = api_key_create(actor=alice, owner=alice, name="ci")
    assert created.key.last_used_at is None
    response = bearer(created.token).get("/api/v1/people/")
    assert response.status_code == 200
    assert [p["username"] for p in response.json()["results"]] == ["alice"]
    created.key.refresh_from_db()
    assert created.key.last_used_at is not None


@pytest.mark.parametrize(
    "token", ["lck_nope_nope", "garbage", "lck__", "Bearer lck_x_y"], ids=["unknown", "malformed", "empty", "doubled"]
)
def test_a_bad_key_gets_401_with_a_clear_message(make_person: Callable[..., Person], token: str) -> None:
    response = bearer(token).get("/api/v1/people/")
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid API key."
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_key_gets_401(make_person: Callable[..., Person]) -> None:
    alice = make_person("alice", roles=["viewer"])
    created = api_key_create(actor=alice, owner=alice, name="ci")
    client = bearer(created.token)
    assert client.post(f"/api/v1/api-keys/{created.key.pk}/revoke/").status_code == 200
    response = client.get("/api/v1/people/")
    assert response.status_code == 401
    assert response.json()["detail"] == "This API key has been revoked."
    assert AuditEvent.objects.filter(verb="api_key.revoked", target_id=str(created.key.pk)).count() == 1


def test_a_key_stops_while_its_owner_is_inactive_and_works_again_after(make_person: Callable[..., Person]) -> None:
    alice = make_person("alice", roles=["viewer"])
    created = api_key_create(actor=alice, owner=alice, name="ci")
    Person.objects.filter(pk=alice.pk).update(is_active=False)
    response = bearer(created.token).get("/api/v1/people/")
    assert response.status_code == 401
    assert response.json()["detail"] == "The owner of this API key is inactive."
    Person.objects.filter(pk=alice.pk).update(is_active=True)
    assert bearer(created.token).get("/api/v1/people/").status_code == 200


def test_people_see_and_revoke_only_their_own_keys(make_person: Callable[..., Person]) -> None:
    alice = make_person("alice", roles=["viewer"])
    bob = make_person("bob", roles=["operator"])
    bobs = api_key_create(actor=bob, owner=bob, name="bob's")
    client = bearer(api_key_create(actor=alice, owner=alice, name="alice's").token)
    assert [k["name"] for k in client.get("/api/v1/api-keys/").json()["results"]] == ["alice's"]
    assert client.post(f"/api/v1/api-keys/{bobs.key.pk}/revoke/").status_code == 404
    assert client.delete(f"/api/v1/api-keys/{bobs.key.pk}/").status_code == 404
    bobs.key.refresh_from_db()
    assert bobs.key.revoked_at is None


def test_admins_see_and_revoke_every_key_and_make_keys_for_service_accounts(
    make_person: Callable[..., Person], admin: Person
) -> None:
    okta = make_person("okta-provisioner", roles=["scim_provisioner"], password=None)
    alice = make_person("alice", roles=["viewer"])
    alices = api_key_create(actor=alice, owner=alice, name="alice's")
    client = bearer(api_key_create(actor=admin, owner=admin, name="admin's").token)
    assert {k["owner"] for k in client.get("/api/v1/api-keys/").json()["results"]} == {"alice", "root-admin"}
    assert client.delete(f"/api/v1/api-keys/{alices.key.pk}/").status_code == 204
    alices.key.refresh_from_db()
    assert alices.key.revoked_at is not None
    made = client.post("/api/v1/api-keys/", {"name": "Okta", "owner": "okta-provisioner"}, format="json")
    assert made.status_code == 201
    assert made.json()["owner"] == okta.username
    # A non-admin cannot make a key for someone else.
    denied = bearer(api_key_create(actor=alice, owner=alice, name="2").token).post(
        "/api/v1/api-keys/", {"name": "x", "owner": "okta-provisioner"}, format="json"
    )
    assert denied.status_code == 400
    assert denied.json()["detail"] == "Only admins can create keys for someone else."


def test_a_key_needs_a_name(make_person: Callable[..., Person]) -> None:
    alice = make_person("alice", roles=["viewer"])
    client = APIClient()
    client.force_login(alice)
    response = client.post("/api/v1/api-keys/", {"name": ""}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()["fields"]


def test_the_api_keys_page_shows_a_new_key_once(make_person: Callable[..., Person]) -> None:
    alice = make_person("alice", roles=["viewer"])
    client = Client()
    client.force_login(alice)
    posted = client.post("/account/api-keys/", {"name": "laptop"})
    assert posted.status_code == 302  # Post/Redirect/Get: a reload cannot make a second key
    stored = " ".join(str(session.get_decoded()) for session in Session.objects.all())
    assert "lck_" not in stored  # waiting for the next page, the key is encrypted in the session
    page = client.get("/account/api-keys/")
    assert page["Cache-Control"] == "no-store"
    key = ApiKey.objects.get(owner=alice)
    html = page.content.decode()
    assert f"lck_{key.prefix}_" in html
    again = client.get("/account/api-keys/").content.decode()
    assert f"lck_{key.prefix}_" not in again
    assert key.prefix in again


def test_create_api_key_command_prints_a_working_key(make_person: Callable[..., Person]) -> None:
    make_person("robot", roles=["viewer"], password=None)
    out = StringIO()
    call_command("create_api_key", "ROBOT", "--name", "automation", stdout=out)
    token = out.getvalue().strip()
    assert bearer(token).get("/api/v1/people/").status_code == 200
    assert ApiKey.objects.get().name == "automation"
    with pytest.raises(CommandError, match="No person"):
        call_command("create_api_key", "nobody")


def test_a_key_carries_its_owners_direct_and_team_roles_read_with_it(
    make_person: Callable[..., Person], django_assert_num_queries: Any
) -> None:
    alice = make_person("alice", roles=[])
    token = api_key_create(actor=alice, owner=alice, name="ci").token
    assert bearer(token).get("/api/v1/people/").status_code == 403  # no role at all

    readers = Team.objects.create(name="Readers")
    readers.roles.add(Role.objects.get(name="viewer"))
    team_members_add(team=readers, person_ids=[alice.pk])
    assert bearer(token).get("/api/v1/people/").status_code == 200  # viewer through the team

    alice.roles.add(Role.objects.get(name="operator"))
    twice = Team.objects.create(name="Also readers")
    twice.roles.add(Role.objects.get(name="viewer"))
    team_members_add(team=twice, person_ids=[alice.pk])
    key, reason = api_key_authenticate(token)
    assert key is not None
    assert reason == ""
    expected = {p for r in Role.objects.filter(name__in=["viewer", "operator"]) for p in r.permissions}
    with django_assert_num_queries(0):  # read with the key, not asked for again
        assert person_permissions(person=key.owner) == expected
    assert key.owner == alice
    assert key.owner.username == "alice"

    readers.delete()
    twice.delete()
    alice.roles.clear()
    assert bearer(token).get("/api/v1/people/").status_code == 403  # the roles went with the teams


def test_a_person_page_links_to_making_a_key_for_that_person(
    admin_client: Client, make_person: Callable[..., Person]
) -> None:
    bot = make_person("svc-okta", roles=["scim_provisioner"], password=None)
    page = admin_client.get(f"/people/{bot.pk}/").content.decode()
    link = "/account/api-keys/?owner=svc-okta#create-key"
    assert f'href="{link}">Make an API key for svc-okta</a>' in page

    form = admin_client.get(link).content.decode()
    assert '<option value="svc-okta" selected>' in form
    admin_client.post(link, {"name": "Okta", "owner": "svc-okta"})
    assert ApiKey.objects.get(name="Okta").owner == bot


def test_your_own_page_links_to_making_your_own_key(make_person: Callable[..., Person]) -> None:
    viewer = make_person("vic", roles=["viewer"])
    client = Client()
    client.force_login(viewer)
    page = client.get(f"/people/{viewer.pk}/").content.decode()
    assert 'href="/account/api-keys/#create-key">Make an API key for yourself</a>' in page


def test_no_key_link_for_an_inactive_person(admin_client: Client, make_person: Callable[..., Person]) -> None:
    gone = make_person("gone", active=False)
    assert "Make an API key" not in admin_client.get(f"/people/{gone.pk}/").content.decode()
