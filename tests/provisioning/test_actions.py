"""Every action type end to end against a real SCIM server: the server's state is checked,
not only the console's; approvals, refusals and illegal transitions; the call log."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import portpicker
import pytest

from console.accounts.models import Person
from console.audit.models import AuditEvent
from integrations.models import Integration
from integrations.scim_client import ScimClient
from provisioning.errors import ActionRefused
from provisioning.execution import action_execute
from provisioning.models import Action, ActionEvent, ActionState, ApprovalPolicy, ScimCall
from provisioning.services import action_approve, action_cancel, action_reject, action_request, action_retry
from tests.provisioning.conftest import account, group, run_action, server_user
from tests.scim_peer import Peer

pytestmark = pytest.mark.django_db


def test_sync_creates_the_account_and_the_picture_follows_at_once(
    peer: Peer, app: Integration, requester: Person, make_person: Callable[..., Person]
) -> None:
    jane = make_person("jane.doe", given_name="Jane", family_name="Doe", email="jane@example.com")
    action = action_request(actor=requester, integration=app, action_type="SYNC_IDENTITIES", person=jane)
    assert action.state == "queued"

    done = run_action(action)

    assert done.state == "succeeded", done.last_error
    assert done.result["operation"] == "created"
    on_server = server_user(peer, "jane.doe")
    assert on_server is not None
    assert on_server["name"]["givenName"] == "Jane"
    assert on_server["emails"][0]["value"] == "jane@example.com"
    assert account(app, "jane.doe").remote_id == on_server["id"]  # no extraction needed
    calls = list(ScimCall.objects.filter(action=done).values_list("method", "status"))
    assert calls == [("GET", 200), ("POST", 201)]
    assert [e.to_state for e in ActionEvent.objects.filter(action=done)] == ["queued", "running", "succeeded"]
    assert AuditEvent.objects.filter(verb="action.succeeded").exists()


def test_sync_updates_only_what_changed(
    peer: Peer, app: Integration, requester: Person, make_person: Callable[..., Person]
) -> None:
    peer.user("jane.doe", displayName="Jane D", name={"givenName": "Jane"}, active=True)
    jane = make_person("jane.doe", given_name="Jane", display_name="Jane Doe")

    done = run_action(action_request(actor=requester, integration=app, action_type="SYNC_IDENTITIES", person=jane))

    assert done.result["operation"] == "updated"
    patch = ScimCall.objects.get(action=done, method="PATCH")
    assert '"displayName"' in patch.request_body
    assert "givenName" not in patch.request_body  # unchanged, not sent
    assert server_user(peer, "jane.doe")["displayName"] == "Jane Doe"  # type: ignore[index]


def test_a_rehire_reactivates_the_deactivated_account_instead_of_a_duplicate(
    peer: Peer, app: Integration, requester: Person, make_person: Callable[..., Person]
) -> None:
    peer.user("Jane.Doe", active=False, externalId="emp-7")
    jane = make_person("jane.doe", external_id="emp-7")

    done = run_action(action_request(actor=requester, integration=app, action_type="SYNC_IDENTITIES", person=jane))

    assert done.result["operation"] == "reactivated"
    assert server_user(peer, "jane.doe")["active"] is True  # type: ignore[index]
    users = peer.http.get("/Users").json()
    assert users["totalResults"] == 1


def test_a_409_on_create_adopts_the_existing_account(
    app: Integration, requester: Person, make_person: Callable[..., Person]
) -> None:
    """A race a real server cannot be made to show on demand: absent on lookup, present on create."""
    existing = {"id": "u-1", "userName": "jane.doe", "externalId": "x-1", "active": True}
    lookups = 0

    def server(request: httpx.Request) -> httpx.Response:
        nonlocal lookups
        if request.method == "POST":
            return httpx.Response(409, json={"status": "409", "scimType": "uniqueness", "detail": "exists"})
        if request.method == "GET" and "filter" in request.url.params:
            lookups += 1
            found = [existing] if lookups > 2 else []  # externalId, userName: none; after the 409: there
            return httpx.Response(200, json={"totalResults": len(found), "Resources": found})
        if request.method == "GET":
            return httpx.Response(200, json=existing)
        return httpx.Response(204)

    jane = make_person("jane.doe", external_id="x-1")
    action = action_request(actor=requester, integration=app, action_type="SYNC_IDENTITIES", person=jane)
    client = ScimClient(app, http=httpx.Client(transport=httpx.MockTransport(server)))
    outcome = action_execute(action.pk, client=client)
    assert outcome.action is not None
    assert outcome.action.state == "succeeded", outcome.action.last_error
    assert outcome.action.result["id"] == "u-1"
    assert account(app, "jane.doe").remote_id == "u-1"


def test_members_are_added_and_removed_in_chunks(
    peer: Peer, app: Integration, requester: Person, extract: Callable[[], None]
) -> None:
    people = [peer.user(f"user{i}") for i in range(5)]
    peer.group("Engineers", people[:1])
    extract()
    app.membership_chunk_size = 2
    app.save()
    engineers = group(app, "Engineers")
    add = [p["id"] for p in people[1:]]

    done = run_action(
        action_request(
            actor=requester,
            integration=app,
            action_type="MANAGE_RELATIONSHIPS",
            target_group=engineers,
            parameters={"add": add, "remove": [people[0]["id"]]},
        )
    )

    assert done.state == "succeeded", done.last_error
    assert ScimCall.objects.filter(action=done, method="PATCH").count() == 3  # 4 adds in 2 chunks, 1 removal
    on_server = peer.http.get(f"/Groups/{engineers.remote_id}").json()
    assert sorted(m["value"] for m in on_server["members"]) == sorted(add)
    engineers.refresh_from_db()
    assert engineers.member_count == 4


def test_deprovision_deactivates_then_removes_memberships(
    peer: Peer, app: Integration, requester: Person, extract: Callable[[], None]
) -> None:
    ada, bob = peer.user("ada"), peer.user("bob")
    peer.group("Engineers", [ada, bob])
    peer.group("Admins", [ada])
    extract()
    # Added in the application itself after the last extraction: the console has not seen it.
    on_call = peer.group("On-call", [ada])

    done = run_action(
        action_request(
            actor=requester, integration=app, action_type="DEPROVISION_IDENTITY", target_user=account(app, "ada")
        )
    )

    assert done.state == "succeeded", done.last_error
    calls = [(c.method, c.url.split("?")[0].rsplit("/", 1)[-1]) for c in ScimCall.objects.filter(action=done)]
    assert calls[0] == ("PATCH", ada["id"])  # deactivated first
    assert calls[1] == ("GET", "Groups")  # then the application says which groups hold the account
    assert sorted(calls[2:5]) == sorted(
        [
            ("PATCH", group(app, "Engineers").remote_id),
            ("PATCH", group(app, "Admins").remote_id),
            ("PATCH", on_call["id"]),
        ]
    )
    # then the account is read back, and each group it left
    assert calls[5:] == [("GET", ada["id"]), *(("GET", g) for g in done.result["removed_from_groups"])]
    assert done.result["verification"] == "verified"
    assert server_user(peer, "ada")["active"] is False  # type: ignore[index]
    for group_id in (group(app, "Engineers").remote_id, group(app, "Admins").remote_id, on_call["id"]):
        members = peer.http.get(f"/Groups/{group_id}").json().get("members") or []
        assert ada["id"] not in [m["value"] for m in members]
    assert sorted(done.result["removed_from_groups"]) == sorted(
        [group(app, "Engineers").remote_id, group(app, "Admins").remote_id, on_call["id"]]
    )
    assert account(app, "ada").active is False


def test_delete_is_refused_where_the_application_does_not_allow_it(
    peer: Peer, app: Integration, requester: Person, extract: Callable[[], None]
) -> None:
    peer.user("ada")
    extract()
    with pytest.raises(ActionRefused, match="does not allow hard delete"):
        action_request(actor=requester, integration=app, action_type="DELETE_IDENTITY", target_user=account(app, "ada"))


def test_delete_waits_for_another_admins_approval_then_deletes(
    peer: Peer,
    app: Integration,
    requester: Person,
    approver: Person,
    extract: Callable[[], None],
    make_person: Callable[..., Person],
) -> None:
    peer.user("ada")
    extract()
    app.supports_hard_delete = True
    app.save()
    other_admin = make_person("other-admin", roles=["admin"])  # without another approver it would be refused
    action = action_request(
        actor=approver, integration=app, action_type="DELETE_IDENTITY", target_user=account(app, "ada")
    )
    assert action.state == "pending_approval"
    assert action.expires_at is not None
    assert action_execute(action.pk).action is None  # a worker cannot take what is not approved
    with pytest.raises(ActionRefused, match="cannot approve your own request"):
        action_approve(actor=approver, action=action)
    with pytest.raises(ActionRefused, match="Only approvers"):
        action_approve(actor=requester, action=action)

    approved = action_approve(actor=other_admin, action=action, comment="leaver confirmed")
    assert approved.state == "queued"
    assert approved.decided_by == other_admin
    done = run_action(approved)

    assert done.state == "succeeded", done.last_error
    assert server_user(peer, "ada") is None
    assert account(app, "ada").removed_at is not None
    states = [e.to_state for e in ActionEvent.objects.filter(action=done)]
    assert states == ["pending_approval", "approved", "queued", "running", "succeeded"]


def test_settings_changed_after_approval_stop_the_action_with_the_reason(
    peer: Peer,
    app: Integration,
    requester: Person,
    approver: Person,
    extract: Callable[[], None],
    make_person: Callable[..., Person],
) -> None:
    peer.user("ada")
    peer.user("grace")
    extract()
    app.supports_hard_delete = True
    app.save()
    delete = action_request(
        actor=requester, integration=app, action_type="DELETE_IDENTITY", target_user=account(app, "ada")
    )
    deprovision = action_request(
        actor=requester, integration=app, action_type="DEPROVISION_IDENTITY", target_user=account(app, "grace")
    )
    delete = action_approve(actor=approver, action=delete)
    app.supports_hard_delete = False  # an admin changes their mind while it waits in the queue
    app.save()
    done = run_action(delete)
    assert done.state == "failed"
    assert "no longer allows hard delete" in done.last_error
    assert server_user(peer, "ada") is not None  # nothing was sent
    assert not ScimCall.objects.filter(action=done).exists()

    app.provisioning_enabled = False
    app.save()
    stopped = run_action(deprovision)
    assert stopped.state == "failed"
    assert "Provisioning was turned off" in stopped.last_error
    grace = server_user(peer, "grace")
    assert grace is not None
    assert grace.get("active") is not False  # not deactivated: nothing was sent
    assert not ScimCall.objects.filter(action=stopped).exists()
    app.refresh_from_db()
    assert app.consecutive_failures == 0  # the console's settings, not the application, stopped them


def test_create_entitlement_makes_the_group_once(peer: Peer, app: Integration, requester: Person) -> None:
    first = run_action(
        action_request(
            actor=requester, integration=app, action_type="CREATE_ENTITLEMENT", parameters={"display_name": "Ops"}
        )
    )
    assert first.result["operation"] == "created"
    again = run_action(
        action_request(
            actor=requester, integration=app, action_type="CREATE_ENTITLEMENT", parameters={"display_name": "Ops"}
        )
    )
    assert again.result["operation"] == "adopted"
    groups = peer.http.get("/Groups", params={"filter": 'displayName eq "Ops"'}).json()
    assert groups["totalResults"] == 1
    assert group(app, "Ops").remote_id == groups["Resources"][0]["id"]


def test_rejection_needs_a_reason_and_illegal_moves_are_refused(
    peer: Peer, app: Integration, requester: Person, approver: Person, make_person: Callable[..., Person]
) -> None:
    ApprovalPolicy.objects.create(integration=app, action_type="CREATE_ENTITLEMENT", requires_approval=True)
    action = action_request(
        actor=requester, integration=app, action_type="CREATE_ENTITLEMENT", parameters={"display_name": "Ops"}
    )
    assert action.state == "pending_approval"
    with pytest.raises(ActionRefused, match="Say why"):
        action_reject(actor=approver, action=action, comment=" ")
    rejected = action_reject(actor=approver, action=action, comment="not needed")
    assert rejected.state == "rejected"
    with pytest.raises(ActionRefused, match="Cannot approve an action that is rejected"):
        action_approve(actor=approver, action=rejected)
    assert peer.http.get("/Groups").json()["totalResults"] == 0

    ApprovalPolicy.objects.filter(integration=app).update(requires_approval=False)
    automatic = action_request(
        actor=approver, integration=app, action_type="CREATE_ENTITLEMENT", parameters={"display_name": "X"}
    )
    done = run_action(automatic)
    assert done.state == "succeeded"
    with pytest.raises(ActionRefused, match="Cannot queue an action that is succeeded"):
        action_retry(actor=approver, action=done)
    with pytest.raises(ActionRefused, match="Cannot cancel an action that is succeeded"):
        action_cancel(actor=approver, action=done)


def test_requests_for_integrations_not_enabled_for_provisioning_are_refused(
    peer: Peer, requester: Person, make_person: Callable[..., Person]
) -> None:
    off = Integration.objects.create(name="Off", base_url=peer.url, provisioning_enabled=False)
    with pytest.raises(ActionRefused, match="Provisioning is not enabled"):
        action_request(actor=requester, integration=off, action_type="SYNC_IDENTITIES", person=make_person("x"))


def test_a_transient_failure_is_retried_after_retry_after_and_a_permanent_one_fails(
    app: Integration, requester: Person, make_person: Callable[..., Person]
) -> None:
    action = action_request(
        actor=requester, integration=app, action_type="SYNC_IDENTITIES", person=make_person("jane.doe")
    )
    limited = ScimClient(
        app,
        http=httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(429, headers={"Retry-After": "30"}))),
    )
    outcome = action_execute(action.pk, client=limited)
    assert outcome.retry_in == 30
    action.refresh_from_db()
    assert action.state == "queued"
    assert action.next_attempt_at is not None
    assert action_execute(action.pk).action is None  # not before its time

    action.next_attempt_at = None
    action.save()
    refused = ScimClient(
        app, http=httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(400, json={"detail": "bad"})))
    )
    failed = action_execute(action.pk, client=refused).action
    assert failed is not None
    assert failed.state == "failed"
    assert "400" in failed.last_error
    assert action_retry(actor=requester, action=failed).state == "queued"


def test_the_call_log_keeps_no_secrets(app: Integration, requester: Person, make_person: Callable[..., Person]) -> None:
    seen: list[dict[str, Any]] = []

    def server(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.headers))
        if request.method == "GET":
            return httpx.Response(200, json={"totalResults": 0, "Resources": []})
        return httpx.Response(201, json={"id": "u-1", "userName": "jane.doe", "password": "hunter2"})

    action = action_request(
        actor=requester, integration=app, action_type="SYNC_IDENTITIES", person=make_person("jane.doe")
    )
    action_execute(action.pk, client=ScimClient(app, http=httpx.Client(transport=httpx.MockTransport(server))))
    assert seen[0]["authorization"] == "Bearer peer-token"
    logged = " ".join(f"{c.url} {c.request_body} {c.response_body}" for c in ScimCall.objects.all())
    assert "peer-token" not in logged
    assert "hunter2" not in logged
    assert "[redacted]" in logged


def test_states_are_the_documented_ones() -> None:
    assert {s.value for s in ActionState} == {
        "pending_approval",
        "approved",
        "queued",
        "running",
        "succeeded",
        "failed",
        "rejected",
        "cancelled",
    }


def test_a_retry_starts_a_fresh_set_of_attempts_and_keeps_the_history(
    peer: Peer, app: Integration, requester: Person, make_person: Callable[..., Person], settings: Any
) -> None:
    settings.ACTION_MAX_ATTEMPTS = 2
    good_url = app.base_url
    app.base_url = f"http://localhost:{portpicker.pick_unused_port()}"  # nothing listens: a transient failure
    app.save()
    action = action_request(
        actor=requester, integration=app, action_type="SYNC_IDENTITIES", person=make_person("jane.doe")
    )
    for _ in range(2):
        Action.objects.filter(pk=action.pk).update(next_attempt_at=None)
        outcome = action_execute(action.pk)
    assert outcome.action is not None
    assert outcome.action.state == "failed"
    assert "gave up after 2 attempts" in outcome.action.last_error

    retried = action_retry(actor=requester, action=outcome.action)
    assert (retried.state, retried.attempts, retried.attempts_total) == ("queued", 0, 2)
    again = action_execute(action.pk)  # still down: backs off, rather than failing at once
    assert again.retry_in is not None
    action.refresh_from_db()
    assert (action.state, action.attempts) == ("queued", 1)
    assert action.next_attempt_at is not None

    app.base_url = good_url
    app.save()
    Action.objects.filter(pk=action.pk).update(next_attempt_at=None)
    done = run_action(action)
    assert done.state == "succeeded", done.last_error
    assert (done.attempts, done.attempts_total) == (2, 4)
    assert server_user(peer, "jane.doe") is not None
    # The history stays: every attempt's calls, numbered apart, and the first failure on the timeline.
    assert sorted(set(ScimCall.objects.filter(action=action).values_list("attempt", flat=True))) == [1, 2, 3, 4]
    notes = list(ActionEvent.objects.filter(action=action).values_list("note", flat=True))
    assert any("gave up after 2 attempts" in note for note in notes)
    assert "retry requested after 2 attempts" in notes


def test_deprovision_keeps_to_the_picture_where_the_application_ignores_the_members_filter(
    requester: Person,
) -> None:
    """A fault the real server does not show: Groups answered whole, whatever the filter."""
    from integrations.models import TargetGroup, TargetMembership, TargetUser

    app = Integration.objects.create(
        name="Loose", base_url="https://loose.example.com/scim/v2", provisioning_enabled=True
    )
    ada = TargetUser.objects.create(integration=app, remote_id="u-ada", user_name="ada", content_hash="-")
    groups = [
        TargetGroup.objects.create(integration=app, remote_id=f"g-{name}", display_name=name, content_hash="-")
        for name in ("Engineers", "Sales", "Support")
    ]
    TargetMembership.objects.create(integration=app, group=groups[0], member_remote_id="u-ada", user=ada)
    sent: list[tuple[str, str]] = []

    def loose(request: httpx.Request) -> httpx.Response:
        sent.append((request.method, request.url.path))
        if request.method == "GET":
            every = [{"id": g.remote_id, "displayName": g.display_name} for g in groups]
            body = {"schemas": [], "totalResults": 3, "startIndex": 1, "itemsPerPage": 3, "Resources": every}
            return httpx.Response(200, json=body, headers={"Content-Type": "application/scim+json"})
        return httpx.Response(204)

    action = action_request(actor=requester, integration=app, action_type="DEPROVISION_IDENTITY", target_user=ada)
    client = ScimClient(app, http=httpx.Client(transport=httpx.MockTransport(loose)))
    done = action_execute(action.pk, client=client).action
    assert done is not None
    assert done.state == "succeeded", done.last_error
    patched = [path for method, path in sent if method == "PATCH"]
    assert patched == ["/scim/v2/Users/u-ada", "/scim/v2/Groups/g-Engineers"]  # not Sales, not Support
    assert done.result["removed_from_groups"] == ["g-Engineers"]
