"""Bulk actions in batches, mass-change safety, dry runs and undo, against the real server."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from rest_framework.test import APIClient

from console.accounts.models import Person
from integrations.models import Integration, TargetUser
from provisioning.batches import batch_approve, batch_reject, batch_request, batch_undo
from provisioning.errors import ActionRefused
from provisioning.models import Action, Batch, ScimCall
from provisioning.services import action_cancel
from tests.provisioning.conftest import account, group, run_action, server_user
from tests.scim_peer import Peer

pytestmark = pytest.mark.django_db


def members_of(peer: Peer, remote_id: str) -> set[str]:
    return {m["value"] for m in peer.http.get(f"/Groups/{remote_id}").json().get("members") or []}


def run_batch(batch: Batch) -> None:
    for action in batch.actions.filter(state="queued").order_by("id"):
        assert run_action(action).state == "succeeded"


def test_bulk_deprovision_then_undo_puts_everything_back(
    peer: Peer, app: Integration, extract: Callable[[], None], requester: Person
) -> None:
    people = [peer.user(name) for name in ("ada", "bob", "cy", "dee")]
    peer.group("Engineers", people[:3])
    extract()
    app.mass_change_max_accounts = 5
    app.mass_change_max_percent = 100
    app.save()
    chosen = [account(app, name) for name in ("ada", "bob", "cy")]

    batch = batch_request(actor=requester, integration=app, action_type="DEPROVISION_IDENTITY", target_users=chosen)
    assert batch.held_reason == ""
    assert batch.actions.count() == 3
    run_batch(batch)
    for name in ("ada", "bob", "cy"):
        assert server_user(peer, name)["active"] is False  # type: ignore[index]
    engineers = group(app, "Engineers").remote_id
    assert members_of(peer, engineers) == set()

    undo = batch_undo(actor=requester, batch=batch)
    assert undo.undo_of == batch
    assert undo.actions.count() == 6  # reactivate and re-add each
    run_batch(undo)
    for name in ("ada", "bob", "cy"):
        assert server_user(peer, name)["active"] is True  # type: ignore[index]
    assert members_of(peer, engineers) == {p["id"] for p in people[:3]}
    assert server_user(peer, "dee").get("active") is not False  # type: ignore[union-attr]  # untouched


def test_a_mass_deprovision_is_held_whole_and_shows_what_it_would_do(
    peer: Peer,
    app: Integration,
    extract: Callable[[], None],
    requester: Person,
    approver: Person,
) -> None:
    for i in range(10):
        peer.user(f"user{i}")
    extract()
    app.mass_change_max_accounts = 100
    app.mass_change_max_percent = 20  # 3 of 10 is 30 %
    app.save()
    chosen = [account(app, f"user{i}") for i in range(3)]

    batch = batch_request(actor=requester, integration=app, action_type="DEPROVISION_IDENTITY", target_users=chosen)

    assert "3 of 10 accounts (30 %)" in batch.held_reason
    assert set(batch.actions.values_list("state", flat=True)) == {"pending_approval"}  # though automatic by policy
    page = Client()
    page.force_login(approver)
    html = page.get(f"/actions/batches/{batch.pk}/").content.decode()
    assert "Held whole for approval" in html
    assert f"PATCH Users/{chosen[0].remote_id}" in html  # the plan of each
    with pytest.raises(ActionRefused, match="own request"):
        batch_approve(actor=requester, batch=batch)
    assert batch_approve(actor=approver, batch=batch) == 3
    run_batch(batch)
    assert not ScimCall.objects.filter(status__gte=400).exists()
    assert server_user(peer, "user0")["active"] is False  # type: ignore[index]


def test_bulk_refuses_whole_when_one_target_cannot_be_done(
    peer: Peer, app: Integration, extract: Callable[[], None], requester: Person
) -> None:
    peer.user("ada")
    peer.user("bob")
    extract()
    with pytest.raises(ActionRefused, match="does not allow hard delete"):
        batch_request(
            actor=requester,
            integration=app,
            action_type="DELETE_IDENTITY",
            target_users=[account(app, "ada"), account(app, "bob")],
        )
    assert not Action.objects.exists()
    assert not Batch.objects.exists()


def test_dry_run_through_the_api_sends_and_creates_nothing(
    peer: Peer,
    app: Integration,
    extract: Callable[[], None],
    requester: Person,
    api_client_for: Callable[[Person], APIClient],
    make_person: Callable[..., Person],
) -> None:
    ada = peer.user("ada", displayName="Ada")
    peer.group("Engineers", [ada])
    extract()
    api = api_client_for(requester)
    calls_before = len(peer.http.get("/Users").json()["Resources"])
    planned = api.post(
        "/api/v1/actions/",
        {
            "integration": app.pk,
            "action_type": "DEPROVISION_IDENTITY",
            "target_users": [account(app, "ada").pk],
            "dry_run": True,
        },
        format="json",
    ).json()
    steps = planned["plans"][0]["requests"]
    assert [s["method"] for s in steps] == ["PATCH", "PATCH"]
    assert steps[0]["body"]["Operations"] == [{"op": "replace", "path": "active", "value": False}]
    assert steps[1]["path"] == f"Groups/{group(app, 'Engineers').remote_id}"
    newcomer = make_person("newcomer", display_name="New Comer")
    sync = api.post(
        "/api/v1/actions/",
        {"integration": app.pk, "action_type": "SYNC_IDENTITIES", "person": newcomer.pk, "dry_run": True},
        format="json",
    ).json()
    assert [s["method"] for s in sync["plans"][0]["requests"]] == ["GET", "POST"]
    assert not Action.objects.exists()
    assert len(peer.http.get("/Users").json()["Resources"]) == calls_before
    assert server_user(peer, "ada").get("active") is not False  # type: ignore[union-attr]


def test_bulk_through_the_api_and_the_page(
    peer: Peer,
    app: Integration,
    extract: Callable[[], None],
    requester: Person,
    approver: Person,  # someone who could approve what waits
    api_client_for: Callable[[Person], APIClient],
) -> None:
    for name in ("ada", "bob"):
        peer.user(name)
    extract()
    api = api_client_for(requester)
    created = api.post(
        "/api/v1/actions/",
        {"integration": app.pk, "action_type": "DEPROVISION_IDENTITY", "target_users": [account(app, "ada").pk]},
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["progress"]["total"] == 1
    assert api.get(f"/api/v1/batches/{body['id']}/").json()["actions"] == body["actions"]

    page = Client()
    page.force_login(requester)
    users_tab = page.get(f"/integrations/{app.pk}/users/").content.decode()
    assert 'form="bulk-form"' in users_tab
    bob = account(app, "bob")
    plan = page.post(
        "/actions/bulk/",
        {"integration": app.pk, "action_type": "DEPROVISION_IDENTITY", "target_user": [bob.pk], "dry_run": "1"},
    ).content.decode()
    assert "Dry run: 1 \N{MULTIPLICATION SIGN} Deprovision identity in" in plan
    assert "DEPROVISION_IDENTITY in" not in plan  # the type in words, not its stored name
    assert f"PATCH Users/{bob.remote_id}" in plan
    response = page.post(
        "/actions/bulk/", {"integration": app.pk, "action_type": "DEPROVISION_IDENTITY", "target_user": [bob.pk]}
    )
    batch = Batch.objects.order_by("-id").first()
    assert batch is not None
    assert response["Location"] == f"/actions/batches/{batch.pk}/"


def test_a_batch_is_undone_once_and_a_second_undo_is_refused(
    peer: Peer,
    app: Integration,
    extract: Callable[[], None],
    requester: Person,
    api_client_for: Callable[[Person], APIClient],
) -> None:
    for name in ("ada", "bob", "cy"):
        peer.user(name)
    extract()
    app.mass_change_max_percent = 100
    app.save()
    batch = batch_request(
        actor=requester,
        integration=app,
        action_type="DEPROVISION_IDENTITY",
        target_users=[account(app, "ada"), account(app, "bob")],
    )
    run_batch(batch)
    api = api_client_for(requester)
    first = api.post(f"/api/v1/batches/{batch.pk}/undo/")
    assert first.status_code == 201, first.json()
    undo_id = first.json()["id"]

    again = api.post(f"/api/v1/batches/{batch.pk}/undo/")
    assert again.status_code == 409
    assert again.json()["detail"] == f"Batch {batch.pk} was already undone by batch {undo_id}."
    with pytest.raises(ActionRefused, match="already undone"):
        batch_undo(actor=requester, batch=batch)
    page = Client()
    page.force_login(requester)
    shown = page.post(f"/actions/batches/{batch.pk}/undo/", follow=True).content.decode()
    assert "already undone by batch" in shown
    assert Batch.objects.filter(undo_of=batch).count() == 1

    # An undo that did nothing (all of it cancelled before it ran) does not count.
    for action in Action.objects.filter(batch_id=undo_id):
        action_cancel(actor=requester, action=action)
    assert batch_undo(actor=requester, batch=batch).undo_of == batch
    assert Batch.objects.filter(undo_of=batch).count() == 2


def held_batch(requester: Person, **fields: object) -> Batch:
    """A batch of two deprovisions waiting for approval, in an application no test calls."""
    app, _ = Integration.objects.get_or_create(
        name="Quiet", defaults={"base_url": "http://127.0.0.1:9/scim/v2", "bearer_token": "t"}
    )
    batch = Batch.objects.create(
        integration=app, action_type="DEPROVISION_IDENTITY", requested_by=requester, held_reason="many", **fields
    )
    for name in ("ada", "bob"):
        user, _ = TargetUser.objects.get_or_create(
            integration=app, remote_id=name, defaults={"user_name": name, "content_hash": "h"}
        )
        Action.objects.create(
            integration=app,
            action_type="DEPROVISION_IDENTITY",
            state="pending_approval",
            requested_by=requester,
            target_user=user,
            subject=name,
            batch=batch,
        )
    return batch


def test_a_rejected_batch_shows_who_rejected_it_and_why(
    requester: Person, approver: Person, api_client_for: Callable[[Person], APIClient]
) -> None:
    batch = held_batch(requester)
    assert batch_reject(actor=approver, batch=batch, comment="Not during the audit freeze") == 2

    page = Client()
    page.force_login(requester)
    shown = page.get(f"/actions/batches/{batch.pk}/").content.decode()
    assert f"Rejected by <strong>{approver.username}</strong>" in shown
    assert "(2 actions): Not during the audit freeze" in shown
    rejection = api_client_for(requester).get(f"/api/v1/batches/{batch.pk}/").json()["rejection"]
    assert (rejection["by"], rejection["reason"], rejection["actions"]) == (
        approver.username,
        "Not during the audit freeze",
        2,
    )


def test_a_batch_nobody_rejected_shows_no_rejection(requester: Person) -> None:
    batch = held_batch(requester)
    page = Client()
    page.force_login(requester)
    assert 'data-testid="batch-rejection"' not in page.get(f"/actions/batches/{batch.pk}/").content.decode()


def test_the_undo_of_a_batch_is_titled_as_the_undo(
    requester: Person, approver: Person, api_client_for: Callable[[Person], APIClient]
) -> None:
    original = held_batch(requester)
    # An undo's type is its first inverse's (a reactivation is a sync), which is not what it is.
    undo = held_batch(requester, undo_of=original)
    undo.action_type = "SYNC_IDENTITIES"
    undo.save()

    page = Client()
    page.force_login(approver)
    shown = page.get(f"/actions/batches/{undo.pk}/").content.decode()
    assert f"<h1>Batch {undo.pk}: Undo of batch {original.pk} in Quiet</h1>" in shown
    assert f"Undo of batch {original.pk} (batch)" in page.get("/approvals/").content.decode()
    api = api_client_for(requester)
    read = api.get(f"/api/v1/batches/{undo.pk}/").json()
    assert (read["title"], read["integration_name"]) == (f"Undo of batch {original.pk}", "Quiet")
    assert str(undo) == f"batch {undo.pk}: Undo of batch {original.pk}"
