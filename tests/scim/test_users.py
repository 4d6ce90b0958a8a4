"""SCIM Users: create, read, replace, patch, delete, ETags, deactivation, re-hire, events and audit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.test import Client

from console.accounts.models import IdentityEvent, Person
from console.accounts.services import api_key_create, api_key_revoke
from console.audit.models import AuditEvent
from tests.conftest import PASSWORD
from tests.scim.conftest import ScimClient, patch_op

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def test_create_answers_201_with_location_meta_and_etag(scim: ScimClient, make_user: Callable[..., Any]) -> None:
    response = scim.post(
        "Users",
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
            "userName": "Grace@Example.com",
            "name": {"givenName": "Grace", "familyName": "Hopper"},
            "emails": [{"value": "grace@example.com", "type": "work", "primary": True}],
            "roles": [{"value": "viewer"}],
            ENTERPRISE: {"employeeNumber": "42", "costCenter": "CC1", "department": "Navy", "division": "R&D"},
        },
    )
    assert response.status_code == 201
    assert response["Content-Type"].startswith("application/scim+json")
    body = response.json_body
    assert response["Location"] == body["meta"]["location"]
    assert response["ETag"] == body["meta"]["version"]
    assert {"created", "lastModified", "version"} <= set(body["meta"])
    assert body[ENTERPRISE]["employeeNumber"] == "42"
    assert body["roles"][0]["value"] == "viewer"
    person = Person.objects.get(scim_id=body["id"])
    assert person.source == "scim"
    assert person.department == "Navy"
    assert not person.has_usable_password()
    assert person.email == "grace@example.com"


def test_duplicate_user_name_is_409_uniqueness_whatever_the_case(
    scim: ScimClient, make_user: Callable[..., Any]
) -> None:
    make_user("ada@example.com")
    response = scim.post("Users", {"userName": "ADA@example.com"})
    assert response.status_code == 409
    assert response.json_body["scimType"] == "uniqueness"
    assert response.json_body["status"] == "409"


def test_unknown_role_is_refused(scim: ScimClient) -> None:
    response = scim.post("Users", {"userName": "x@example.com", "roles": [{"value": "superuser"}]})
    assert response.status_code == 400
    assert response.json_body["scimType"] == "invalidValue"


def test_unknown_user_is_404_as_a_scim_error(scim: ScimClient) -> None:
    response = scim.get("Users/99999")
    assert response.status_code == 404
    assert response.json_body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]


def test_if_match_with_a_stale_version_is_412(scim: ScimClient, make_user: Callable[..., Any]) -> None:
    user = make_user()
    stale = user["meta"]["version"]
    changed = scim.patch(f"Users/{user['id']}", patch_op({"op": "replace", "path": "title", "value": "CTO"}))
    assert changed.status_code == 200
    assert changed["ETag"] != stale
    refused = scim.patch(
        f"Users/{user['id']}", patch_op({"op": "replace", "path": "title", "value": "CEO"}), If_Match=stale
    )
    assert refused.status_code == 412
    accepted = scim.patch(
        f"Users/{user['id']}", patch_op({"op": "replace", "path": "title", "value": "CEO"}), If_Match=changed["ETag"]
    )
    assert accepted.status_code == 200
    assert accepted.json_body["title"] == "CEO"
    assert scim.get(f"Users/{user['id']}", If_None_Match=accepted["ETag"]).status_code == 304


def test_put_replaces_the_whole_user(scim: ScimClient, make_user: Callable[..., Any]) -> None:
    user = make_user(title="Engineer", nickName="ada")
    response = scim.put(f"Users/{user['id']}", {"userName": user["userName"], "displayName": "Ada L."})
    assert response.status_code == 200
    assert response.json_body["displayName"] == "Ada L."
    assert "title" not in response.json_body
    assert "nickName" not in response.json_body


def test_okta_deactivate_ends_sessions_stops_sign_in_and_keys_then_reactivate_restores(
    scim: ScimClient, make_user: Callable[..., Any]
) -> None:
    user = make_user(roles=[{"value": "viewer"}])
    person = Person.objects.get(scim_id=user["id"])
    person.set_password(PASSWORD)  # SCIM sets no passwords; give this one a way to sign in
    person.save()
    browser = Client()
    assert browser.login(username=person.username, password=PASSWORD)
    kept = api_key_create(actor=person, owner=person, name="mine")
    revoked = api_key_create(actor=person, owner=person, name="old")
    api_key_revoke(actor=person, key=revoked.key)
    own_api = Client(HTTP_AUTHORIZATION=f"Bearer {kept.token}")
    assert browser.get("/people/").status_code == 200
    assert own_api.get("/api/v1/people/").status_code == 200

    # Okta's documented deactivation body.
    response = scim.patch(
        f"Users/{user['id']}",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "value": {"active": False}}],
        },
    )
    assert response.status_code == 200
    assert response.json_body["active"] is False
    assert browser.get("/people/").status_code == 302  # session ended
    assert not Client().login(username=person.username, password=PASSWORD)
    assert own_api.get("/api/v1/people/").status_code == 401

    response = scim.patch(
        f"Users/{user['id']}",
        patch_op({"op": "replace", "value": {"active": True}}),
    )
    assert response.json_body["active"] is True
    assert Client().login(username=person.username, password=PASSWORD)
    assert own_api.get("/api/v1/people/").status_code == 200
    assert browser.get("/people/").status_code == 302  # the ended session stays ended
    assert Client(HTTP_AUTHORIZATION=f"Bearer {revoked.token}").get("/api/v1/people/").status_code == 401
    kinds = list(IdentityEvent.objects.filter(person=person).order_by("id").values_list("kind", flat=True))
    assert kinds == ["created", "deactivated", "reactivated"]


def test_delete_keeps_the_record_and_a_later_post_rehires_the_same_person(
    scim: ScimClient, make_user: Callable[..., Any]
) -> None:
    user = make_user("leaver@example.com")
    assert scim.delete(f"Users/{user['id']}").status_code == 204
    assert scim.get(f"Users/{user['id']}").status_code == 404
    person = Person.objects.get(scim_id=user["id"])
    assert person.removed_at is not None
    assert not person.is_active
    listed = scim.get('Users?filter=userName eq "leaver@example.com"').json_body
    assert listed["totalResults"] == 0

    again = scim.post("Users", {"userName": "Leaver@example.com", "active": True})
    assert again.status_code == 201
    assert again.json_body["id"] == user["id"]
    assert Person.objects.filter(username__iexact="leaver@example.com").count() == 1
    person.refresh_from_db()
    assert person.is_active
    assert person.removed_at is None
    kinds = list(IdentityEvent.objects.filter(person=person).order_by("id").values_list("kind", flat=True))
    assert kinds[:3] == ["created", "deactivated", "deleted"]
    assert "reactivated" in kinds
    assert AuditEvent.objects.filter(verb="scim.user.deleted", target_id=str(person.pk)).exists()


def test_every_write_is_audited_with_the_key_owner_as_actor(
    scim: ScimClient, provisioner: Person, make_user: Callable[..., Any]
) -> None:
    user = make_user()
    scim.patch(f"Users/{user['id']}", patch_op({"op": "replace", "path": "title", "value": "CTO"}))
    scim.patch(f"Users/{user['id']}", patch_op({"op": "replace", "path": "active", "value": False}))
    scim.put(f"Users/{user['id']}", {**user, "title": "CEO", "active": False})
    scim.patch(f"Users/{user['id']}", patch_op({"op": "replace", "path": "title", "value": "CEO"}))  # no change
    person = Person.objects.get(scim_id=user["id"])
    events = AuditEvent.objects.filter(target_id=str(person.pk)).order_by("id")
    # One event per change, by the service that made it, saying SCIM asked for it and how.
    assert list(events.values_list("verb", flat=True)) == [
        "scim.user.created",
        "person.updated",
        "person.deactivated",
        "person.updated",
    ]
    assert set(events.values_list("actor_id", flat=True)) == {provisioner.pk}
    retitled, deactivated, replaced = events[1], events[2], events[3]
    assert retitled.details["after"] == {"title": "CTO"}
    assert retitled.details["via"] == "scim"
    assert retitled.details["method"] == "PATCH"
    assert retitled.details["operations"] == [{"op": "replace", "path": "title"}]
    assert deactivated.details["after"] == {"active": False}
    assert deactivated.details["operations"] == [{"op": "replace", "path": "active"}]
    assert replaced.details["after"] == {"title": "CEO"}
    assert (replaced.details["via"], replaced.details["method"]) == ("scim", "PUT")


def test_update_event_names_the_changed_attributes(scim: ScimClient, make_user: Callable[..., Any]) -> None:
    user = make_user()
    scim.patch(f"Users/{user['id']}", patch_op({"op": "replace", "path": "name.familyName", "value": "Byron"}))
    event = IdentityEvent.objects.filter(person__scim_id=user["id"], kind="updated").get()
    assert event.changes["before"] == {"family_name": "Lovelace"}
    assert event.changes["after"] == {"family_name": "Byron"}


def test_scim_cannot_deactivate_or_demote_the_last_local_admin(scim: ScimClient, admin: Person) -> None:
    # A local admin is readable over SCIM, but SCIM never writes to a local account.
    assert scim.get(f"Users/{admin.pk}").status_code == 200
    response = scim.patch(f"Users/{admin.pk}", patch_op({"op": "replace", "path": "active", "value": False}))
    assert response.status_code == 403
    assert "local console account" in response.json_body["detail"]
    assert scim.delete(f"Users/{admin.pk}").status_code == 403
    demote = scim.patch(f"Users/{admin.pk}", patch_op({"op": "remove", "path": "roles"}))
    assert demote.status_code == 403
    admin.refresh_from_db()
    assert admin.is_active
    assert admin.removed_at is None
    assert admin.roles.filter(name="admin").exists()


def test_delete_takes_the_person_out_of_every_team_and_a_rehire_starts_without_old_roles(
    scim: ScimClient, make_user: Callable[..., Any], admin: Person
) -> None:
    from console.accounts.models import Role, Team
    from console.accounts.selectors import roles_effective_for
    from console.accounts.services import team_set_roles

    user = make_user("leaver@example.com", roles=[{"value": "viewer"}])
    stayer = make_user("stayer@example.com")
    group = scim.post(
        "Groups", {"displayName": "Operators", "members": [{"value": user["id"]}, {"value": stayer["id"]}]}
    ).json_body
    team = Team.objects.get(scim_id=group["id"])
    team_set_roles(actor=admin, team=team, roles=[Role.objects.get(name="operator")])
    version = scim.get(f"Groups/{group['id']}")["ETag"]

    assert scim.delete(f"Users/{user['id']}").status_code == 204
    members = scim.get(f"Groups/{group['id']}")
    assert [m["value"] for m in members.json_body["members"]] == [stayer["id"]]
    assert members["ETag"] != version
    assert scim.get(f'Groups?filter=members.value eq "{user["id"]}"').json_body["totalResults"] == 0
    left = IdentityEvent.objects.get(person__scim_id=user["id"], kind="left_team")
    assert left.team_id == team.pk
    assert AuditEvent.objects.filter(
        verb="team.members_changed", target_id=str(team.pk), details__removed=["leaver@example.com"]
    ).exists()
    assert AuditEvent.objects.get(verb="scim.user.deleted").details["teams_left"] == ["Operators"]

    again = scim.post("Users", {"userName": "leaver@example.com", "active": True})
    assert again.status_code == 201
    assert again.json_body["id"] == user["id"]
    assert "roles" not in again.json_body
    assert not roles_effective_for(person=Person.objects.get(scim_id=user["id"])).exists()


def test_a_role_only_change_moves_the_etag_and_writes_an_identity_event(
    scim: ScimClient, make_user: Callable[..., Any]
) -> None:
    user = make_user(roles=[])  # every other attribute stays as it is
    version = user["meta"]["version"]
    changed = scim.patch(f"Users/{user['id']}", patch_op({"op": "add", "path": "roles", "value": ["viewer"]}))
    assert changed.status_code == 200
    assert changed["ETag"] != version
    assert changed.json_body["meta"]["version"] == changed["ETag"]
    assert scim.get(f"Users/{user['id']}", If_None_Match=version).status_code == 200
    refused = scim.patch(f"Users/{user['id']}", patch_op({"op": "remove", "path": "roles"}), If_Match=version)
    assert refused.status_code == 412
    role_events = [
        e.changes
        for e in IdentityEvent.objects.filter(person__scim_id=user["id"], kind="updated")
        if "roles" in e.changes["after"]
    ]
    assert role_events == [{"before": {"roles": []}, "after": {"roles": ["viewer"]}}]
