"""Applications that bend SCIM, in front of the real server: no action ever writes to an
account that is not its subject's, and each dialect gets the form it accepts, learned once."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from django.db import transaction

from console.accounts.models import Person
from integrations import dialect
from integrations.discovery import connection_test
from integrations.extraction import extraction_run_execute
from integrations.models import ExtractionRun, Integration, TargetGroup, TargetUser
from integrations.scim_client import ScimClient
from provisioning.execution import action_execute, actions_execute
from provisioning.models import Action, ScimCall
from provisioning.services import action_approve, action_request, actions_sent_together
from tests.scim_fronts import Bent
from tests.scim_peer import PEER_TOKEN, Peer

pytestmark = pytest.mark.django_db

ENDPOINT_OF = {"Users": "/Users", "Groups": "/Groups"}


@pytest.fixture
def seeded(bent: Bent) -> dict[str, Any]:
    """Accounts and groups that come before the subjects' in every unfiltered answer."""
    server = Peer(bent.url)
    alice = server.user("alice", displayName="Alice A", title="Engineer", externalId="emp-1", active=True)
    bob = server.user("bob", displayName="Bob B", title="Designer", externalId="emp-2", active=True)
    carol = server.user("carol", displayName="Carol C", externalId="emp-3", active=True)
    admins = server.group("Admins", [alice, bob])
    engineers = server.group("Engineers", [bob])
    bent.names(alice, bob, carol)
    bent.writes.clear()
    return {"alice": alice, "bob": bob, "carol": carol, "Admins": admins, "Engineers": engineers, "server": server}


@pytest.fixture
def bent_app(bent: Bent, db: None) -> Integration:
    return Integration.objects.create(
        name="Bent app",
        base_url=bent.url,
        bearer_token=PEER_TOKEN,
        provisioning_enabled=True,
        supports_hard_delete=True,
    )


def extract(app: Integration) -> ExtractionRun:
    run = ExtractionRun.objects.create(integration=app, trigger="manual")
    done = extraction_run_execute(run_id=run.pk)
    assert done is not None
    assert done.status == "succeeded", done.error
    app.refresh_from_db()
    return done


def perform(approver: Person, requester: Person, app: Integration, action_type: str, **subject: Any) -> Action:
    action = action_request(actor=requester, integration=app, action_type=action_type, **subject)
    if action.state == "pending_approval":
        action = action_approve(actor=approver, action=action)
    outcome = action_execute(action.pk)
    assert outcome.action is not None
    app.refresh_from_db()  # what the action learned of the application's dialect
    return outcome.action


def on_server(server: Peer, user: dict[str, Any]) -> dict[str, Any]:
    return dict(server.http.get(f"/Users/{user['id']}").json())


@pytest.mark.parametrize("bend", ["ignore_filter", "filter_unsupported"])
def test_no_action_writes_to_an_account_that_is_not_its_subjects(
    bend: str,
    bent: Bent,
    seeded: dict[str, Any],
    bent_app: Integration,
    requester: Person,
    approver: Person,
    make_person: Callable[..., Person],
) -> None:
    setattr(bent, bend, True)
    server = seeded["server"]
    alice_before = on_server(server, seeded["alice"])
    if bend == "filter_unsupported":  # the connection test reads what its ServiceProviderConfig says
        assert connection_test(integration=bent_app).ok
        bent_app.refresh_from_db()
        assert bent_app.capabilities["filter"] is False
        # ...and the profile the page and the API show says what the console does instead.
        row = next(r for r in dialect.rows(bent_app) if r["key"] == "filter")
        assert (row["state"], row["source"]) == ("Refused", "The application's ServiceProviderConfig")
        assert row["console_does"].startswith("Finds accounts in its own picture")

    # A joiner with no account: created, never "found" as the first account of the list.
    dave = make_person("dave", given_name="Dave", display_name="Dave D", email="dave@example.com")
    done = perform(approver, requester, bent_app, "SYNC_IDENTITIES", person=dave)
    assert done.state == "succeeded", done.last_error
    assert done.result["operation"] == "created"
    assert [(w.method, w.path) for w in bent.writes] == [("POST", "/Users")]
    if bend == "filter_unsupported":  # said so: no filter is even sent
        assert not ScimCall.objects.filter(action=done, url__contains="filter=").exists()
    else:  # learned from the answer: the next look-ups do not trust a filter
        assert dialect.refused(bent_app, "filter")

    # An existing account, not the first of the list: only its own account is changed.
    bent.writes.clear()
    bob = make_person("bob", given_name="Bob", display_name="Robert B", external_id="emp-2")
    done = perform(approver, requester, bent_app, "SYNC_IDENTITIES", person=bob)
    assert done.state == "succeeded", done.last_error
    assert done.result["id"] == seeded["bob"]["id"]
    assert {w.path for w in bent.writes} == {f"/Users/{seeded['bob']['id']}"}
    assert on_server(server, seeded["bob"])["displayName"] == "Robert B"

    # A group by name: a new one is created, never the first group of the list adopted.
    bent.writes.clear()
    done = perform(approver, requester, bent_app, "CREATE_ENTITLEMENT", parameters={"display_name": "Sales"})
    assert done.state == "succeeded", done.last_error
    assert done.result["operation"] == "created"
    assert [(w.method, w.path) for w in bent.writes] == [("POST", "/Groups")]
    # ...and an existing one that is not first is adopted, with nothing written.
    bent.writes.clear()
    done = perform(approver, requester, bent_app, "CREATE_ENTITLEMENT", parameters={"display_name": "engineers"})
    assert done.state == "succeeded", done.last_error
    assert (done.result["operation"], done.result["id"]) == ("adopted", seeded["Engineers"]["id"])
    assert bent.writes == []

    extract(bent_app)
    engineers = TargetGroup.objects.get(integration=bent_app, remote_id=seeded["Engineers"]["id"])
    carol = TargetUser.objects.get(integration=bent_app, remote_id=seeded["carol"]["id"])
    bob_account = TargetUser.objects.get(integration=bent_app, remote_id=seeded["bob"]["id"])

    bent.writes.clear()
    done = perform(
        approver,
        requester,
        bent_app,
        "MANAGE_RELATIONSHIPS",
        target_group=engineers,
        parameters={"add": [carol.remote_id], "remove": [bob_account.remote_id]},
    )
    assert done.state == "succeeded", done.last_error
    assert {w.path for w in bent.writes} == {f"/Groups/{engineers.remote_id}"}

    # A leaver: their account and the groups that hold them, nothing else.
    bent.writes.clear()
    done = perform(approver, requester, bent_app, "DEPROVISION_IDENTITY", target_user=bob_account)
    assert done.state == "succeeded", done.last_error
    assert {w.path for w in bent.writes} == {f"/Users/{bob_account.remote_id}", f"/Groups/{seeded['Admins']['id']}"}
    assert on_server(server, seeded["bob"])["active"] is False

    bent.writes.clear()
    done = perform(approver, requester, bent_app, "DELETE_IDENTITY", target_user=bob_account)
    assert done.state == "succeeded", done.last_error
    assert [(w.method, w.path) for w in bent.writes] == [("DELETE", f"/Users/{bob_account.remote_id}")]

    # Alice, first in every unfiltered answer, was never touched.
    assert on_server(server, seeded["alice"]) == alice_before


@pytest.mark.parametrize("bend", ["ignore_filter", "filter_unsupported"])
def test_a_409_adopts_the_subjects_account_never_the_first_of_the_list(
    bend: str,
    bent: Bent,
    seeded: dict[str, Any],
    bent_app: Integration,
    requester: Person,
    approver: Person,
    make_person: Callable[..., Person],
) -> None:
    """Another client makes the account (and the group) between the look-up and the POST."""
    setattr(bent, bend, True)
    server = seeded["server"]
    alice_before = on_server(server, seeded["alice"])
    if bend == "filter_unsupported":
        assert connection_test(integration=bent_app).ok
    bent.race_on_post = True
    dave = make_person("dave", given_name="Dave", display_name="Dave D", email="dave@example.com")

    done = perform(approver, requester, bent_app, "SYNC_IDENTITIES", person=dave)

    assert done.state == "succeeded", done.last_error
    made_meanwhile = bent.raced[0]
    assert made_meanwhile["userName"] == "dave"
    assert done.result["id"] == made_meanwhile["id"]  # adopted: the account that is dave's
    assert ScimCall.objects.filter(action=done, method="POST", status=409).count() == 1
    assert [(w.method, w.path) for w in bent.writes] == [
        ("POST", "/Users"),
        ("PATCH", f"/Users/{made_meanwhile['id']}"),
    ]
    assert on_server(server, made_meanwhile)["displayName"] == "Dave D"
    assert server.http.get("/Users").json()["totalResults"] == 4  # alice, bob, carol and dave, once

    bent.writes.clear()
    bent.race_on_post = True
    done = perform(approver, requester, bent_app, "CREATE_ENTITLEMENT", parameters={"display_name": "Sales"})

    assert done.state == "succeeded", done.last_error
    assert (done.result["operation"], done.result["id"]) == ("adopted", bent.raced[1]["id"])
    assert bent.writes == []  # the POST was refused with 409, and nothing else was sent
    assert TargetGroup.objects.get(integration=bent_app, remote_id=bent.raced[1]["id"]).display_name == "Sales"
    assert on_server(server, seeded["alice"]) == alice_before


@pytest.mark.parametrize("bend", ["ignore_filter", "filter_unsupported"])
def test_syncs_claimed_together_write_only_their_own_accounts(
    bend: str,
    bent: Bent,
    seeded: dict[str, Any],
    bent_app: Integration,
    requester: Person,
    make_person: Callable[..., Person],
) -> None:
    setattr(bent, bend, True)
    server = seeded["server"]
    alice_before = on_server(server, seeded["alice"])
    if bend == "filter_unsupported":
        assert connection_test(integration=bent_app).ok
    people = [
        make_person("bob", given_name="Bob", display_name="Robert B", external_id="emp-2"),
        make_person("CAROL", given_name="Carol", display_name="Caroline C"),  # found by userName, whatever its case
        make_person("dave", given_name="Dave", display_name="Dave D"),
        make_person("erin", given_name="Erin", display_name="Erin E", external_id="emp-9"),
    ]
    with transaction.atomic(), actions_sent_together():
        actions = [
            action_request(actor=requester, integration=bent_app, action_type="SYNC_IDENTITIES", person=person)
            for person in people
        ]

    outcomes = actions_execute([a.pk for a in actions])

    done = {o.action.person_id: o.action for o in outcomes if o.action is not None}
    assert all(a.state == "succeeded" for a in done.values()), [a.last_error for a in done.values()]
    bob, carol, dave, erin = (done[p.pk] for p in people)
    assert (bob.result["operation"], bob.result["id"]) == ("updated", seeded["bob"]["id"])
    assert (carol.result["operation"], carol.result["id"]) == ("updated", seeded["carol"]["id"])
    assert dave.result["operation"] == erin.result["operation"] == "created"
    assert sorted((w.method, w.path) for w in bent.writes) == sorted(
        [
            ("PATCH", f"/Users/{seeded['bob']['id']}"),
            ("PATCH", f"/Users/{seeded['carol']['id']}"),
            ("POST", "/Users"),
            ("POST", "/Users"),
        ]
    )
    assert on_server(server, seeded["bob"])["displayName"] == "Robert B"
    assert on_server(server, seeded["carol"])["displayName"] == "Caroline C"
    assert on_server(server, seeded["alice"]) == alice_before
    bent_app.refresh_from_db()
    if bend == "ignore_filter":  # the combined look-up's answer held accounts of nobody's: not trusted, and learned
        assert dialect.refused(bent_app, "filter_or")
    else:  # said so: not even asked
        assert not ScimCall.objects.filter(action__in=actions, url__contains="filter=").exists()


def test_a_success_whose_answer_still_lists_the_member_or_shows_inactive_is_a_failure(
    bent: Bent,
    seeded: dict[str, Any],
    bent_app: Integration,
    requester: Person,
    approver: Person,
    make_person: Callable[..., Person],
) -> None:
    """200 to each PATCH, with the resource as it was: the change was not made."""
    server = seeded["server"]
    server.http.patch(
        f"/Users/{seeded['carol']['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": False}],
        },
    )
    extract(bent_app)
    bent.patch_answers_unchanged = True
    engineers = TargetGroup.objects.get(integration=bent_app, remote_id=seeded["Engineers"]["id"])

    removal = perform(
        approver,
        requester,
        bent_app,
        "MANAGE_RELATIONSHIPS",
        target_group=engineers,
        parameters={"remove": [seeded["bob"]["id"]]},
    )

    assert removal.state == "failed"
    assert "still lists 1 of the members" in removal.last_error
    assert engineers.memberships.filter(member_remote_id=seeded["bob"]["id"]).exists()  # the picture unchanged

    rehire = perform(approver, requester, bent_app, "SYNC_IDENTITIES", person=make_person("carol", external_id="emp-3"))

    assert rehire.state == "failed"
    assert "active is still False" in rehire.last_error
    assert on_server(server, seeded["carol"])["active"] is False


def test_an_undone_deprovision_reactivates_that_account_not_one_that_took_its_name(
    bent: Bent,
    seeded: dict[str, Any],
    bent_app: Integration,
    requester: Person,
    approver: Person,
) -> None:
    server = seeded["server"]
    extract(bent_app)
    bob_account = TargetUser.objects.get(integration=bent_app, remote_id=seeded["bob"]["id"])
    done = perform(approver, requester, bent_app, "DEPROVISION_IDENTITY", target_user=bob_account)
    assert done.state == "succeeded", done.last_error
    # Meanwhile the application renamed bob's account, and someone else's account took the name.
    server.http.patch(
        f"/Users/{seeded['bob']['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "userName", "value": "bob.old"}],
        },
    )
    other = server.user("bob", externalId="emp-77", active=False)
    bent.writes.clear()

    undo = perform(
        approver, requester, bent_app, "SYNC_IDENTITIES", target_user=bob_account, parameters={"user": {"active": True}}
    )

    assert undo.state == "succeeded", undo.last_error
    assert (undo.result["operation"], undo.result["id"]) == ("reactivated", seeded["bob"]["id"])
    assert {w.path for w in bent.writes} == {f"/Users/{seeded['bob']['id']}"}
    assert on_server(server, seeded["bob"])["active"] is True
    assert on_server(server, other)["active"] is False  # the account that took the name is not bob's


def test_two_accounts_that_match_are_refused_not_guessed(
    bent: Bent,
    bent_app: Integration,
    requester: Person,
    approver: Person,
    make_person: Callable[..., Person],
) -> None:
    """Two accounts with one externalId (an application that does not keep it unique)."""
    server = Peer(bent.url)
    server.user("erin.one", externalId="emp-9")
    server.user("erin.two", externalId="emp-9")
    bent.ignore_filter = True
    bent.writes.clear()
    erin = make_person("erin", external_id="emp-9")

    done = perform(approver, requester, bent_app, "SYNC_IDENTITIES", person=erin)

    assert done.state == "failed"
    assert "2 accounts in the application have externalId" in done.last_error
    assert "will not choose" in done.last_error
    assert bent.writes == []


def test_member_removal_falls_back_to_a_value_list_and_remembers_it(
    bent: Bent,
    seeded: dict[str, Any],
    bent_app: Integration,
    requester: Person,
    approver: Person,
) -> None:
    bent.refuse_filter_path_remove = True
    extract(bent_app)
    admins = TargetGroup.objects.get(integration=bent_app, remote_id=seeded["Admins"]["id"])
    alice = TargetUser.objects.get(integration=bent_app, remote_id=seeded["alice"]["id"])

    done = perform(
        approver,
        requester,
        bent_app,
        "MANAGE_RELATIONSHIPS",
        target_group=admins,
        parameters={"remove": [alice.remote_id]},
    )

    assert done.state == "succeeded", done.last_error
    members = seeded["server"].http.get(f"/Groups/{admins.remote_id}").json().get("members") or []
    assert alice.remote_id not in {m["value"] for m in members}
    assert len(bent.refused) == 1  # the filter path, once
    bent_app.refresh_from_db()
    assert dialect.refused(bent_app, "patch_filter_path_remove")
    # The next removal goes straight to the value list: no second refusal.
    bob = TargetUser.objects.get(integration=bent_app, remote_id=seeded["bob"]["id"])
    done = perform(approver, requester, bent_app, "DEPROVISION_IDENTITY", target_user=bob)
    assert done.state == "succeeded", done.last_error
    assert len(bent.refused) == 1
    assert all('"path": "members"' in body for body in _patch_bodies(done, "/Groups/"))


def _patch_bodies(action: Action, path_part: str) -> list[str]:
    return list(
        ScimCall.objects.filter(action=action, method="PATCH", url__contains=path_part).values_list(
            "request_body", flat=True
        )
    )


def test_a_refused_replace_is_written_whole_by_put_and_a_rehire_reactivates_first(
    bent: Bent,
    seeded: dict[str, Any],
    bent_app: Integration,
    requester: Person,
    approver: Person,
    make_person: Callable[..., Person],
) -> None:
    server = seeded["server"]
    server.http.patch(
        f"/Users/{seeded['carol']['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": False}],
        },
    )
    bent.refuse_replace_of = {"displayName"}
    bent.writes.clear()
    carol = make_person("carol", display_name="Caroline C", external_id="emp-3")

    done = perform(approver, requester, bent_app, "SYNC_IDENTITIES", person=carol)

    assert done.state == "succeeded", done.last_error
    assert done.result["operation"] == "reactivated"
    now = on_server(server, seeded["carol"])
    assert now["active"] is True
    assert now["displayName"] == "Caroline C"
    # active went on its own first, then the refused replace, then the whole resource by PUT
    calls = list(ScimCall.objects.filter(action=done).order_by("at", "pk").values_list("method", "status"))
    writes = [(method, status) for method, status in calls if method != "GET"]
    assert [method for method, _ in writes] == ["PATCH", "PATCH", "PUT"]
    assert writes[1][1] == 501
    bent_app.refresh_from_db()
    assert dialect.refused(bent_app, "patch_replace")
    assert bent.written_to("PATCH")[0] == f"/Users/{seeded['carol']['id']}"
    (put,) = [w for w in bent.writes if w.method == "PUT"]
    read = ScimCall.objects.filter(action=done, method="GET", url__endswith=f"/Users/{seeded['carol']['id']}")
    versions = [json.loads(body)["meta"]["version"] for body in read.values_list("response_body", flat=True)]
    assert put.if_match in versions  # the version it read, so a change made meanwhile is not overwritten


def test_a_put_whose_version_changed_meanwhile_is_read_again_and_keeps_the_other_change(
    bent: Bent,
    seeded: dict[str, Any],
    bent_app: Integration,
    requester: Person,
    approver: Person,
    make_person: Callable[..., Person],
) -> None:
    server = seeded["server"]
    bent.refuse_replace_of = {"title"}
    bent.change_before_put = {"nickName": "Cee"}  # another client, between the console's read and its PUT
    carol = make_person("carol", given_name="Carol", display_name="Carol C", external_id="emp-3", title="Manager")

    done = perform(approver, requester, bent_app, "SYNC_IDENTITIES", person=carol)

    assert done.state == "succeeded", done.last_error
    puts = [w for w in bent.writes if w.method == "PUT"]
    assert len(puts) == 2  # the first answered 412: its version was stale
    assert puts[0].if_match
    assert puts[1].if_match
    assert puts[0].if_match != puts[1].if_match
    assert ScimCall.objects.filter(action=done, method="PUT", status=412).count() == 1
    now = on_server(server, seeded["carol"])
    assert (now["title"], now["nickName"]) == ("Manager", "Cee")  # both changes stand


def test_paging_without_count_when_count_is_refused(bent: Bent, seeded: dict[str, Any], bent_app: Integration) -> None:
    bent.refuse_count = True

    run = extract(bent_app)

    assert TargetUser.objects.filter(integration=bent_app).count() == 3
    assert TargetGroup.objects.filter(integration=bent_app).count() == 2
    assert dialect.refused(bent_app, "count")
    assert run.error == ""
    # Learned once: the next extraction sends no count at all.
    before = len(bent.refused)
    extract(bent_app)
    assert len(bent.refused) == before


def test_groups_that_hold_user_names_are_learned_and_spoken(
    bent: Bent,
    seeded: dict[str, Any],
    bent_app: Integration,
    requester: Person,
    approver: Person,
) -> None:
    bent.names_as_members = True

    extract(bent_app)

    assert dialect.value(bent_app, "member_reference") == "userName"
    admins = TargetGroup.objects.get(integration=bent_app, remote_id=seeded["Admins"]["id"])
    linked = admins.memberships.values_list("user__user_name", flat=True)
    assert set(linked) == {"alice", "bob"}  # each member linked to its account by name
    carol = TargetUser.objects.get(integration=bent_app, user_name="carol")
    done = perform(
        approver,
        requester,
        bent_app,
        "MANAGE_RELATIONSHIPS",
        target_group=admins,
        parameters={"add": [carol.remote_id]},
    )
    assert done.state == "succeeded", done.last_error
    assert '"value": "carol"' in _patch_bodies(done, "/Groups/")[0]
    members = seeded["server"].http.get(f"/Groups/{admins.remote_id}").json()["members"]
    assert {m["value"] for m in members} == {"alice", "bob", "carol"}  # as the application shows them


def test_groups_that_hold_names_get_each_account_by_its_name_now_not_as_last_extracted(
    bent: Bent,
    seeded: dict[str, Any],
    bent_app: Integration,
    requester: Person,
    approver: Person,
) -> None:
    """bob's account was renamed since the extraction, and another account took the name "bob":
    taking bob's account out of its groups must not take the other one out."""
    bent.names_as_members = True
    server = seeded["server"]
    extract(bent_app)
    bob_account = TargetUser.objects.get(integration=bent_app, remote_id=seeded["bob"]["id"])
    server.http.patch(
        f"/Users/{seeded['bob']['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "userName", "value": "bob.old"}],
        },
    )
    other = server.user("bob", externalId="emp-77", active=True)
    bent.names({**seeded["bob"], "userName": "bob.old"}, other)
    server.http.patch(
        f"/Groups/{seeded['Engineers']['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": "bob"}]}],
        },
    )
    members = {m["value"] for m in server.http.get(f"/Groups/{seeded['Engineers']['id']}").json()["members"]}
    assert members == {"bob.old", "bob"}

    done = perform(approver, requester, bent_app, "DEPROVISION_IDENTITY", target_user=bob_account)

    assert done.state == "succeeded", done.last_error
    members = {m["value"] for m in server.http.get(f"/Groups/{seeded['Engineers']['id']}").json()["members"]}
    assert members == {"bob"}  # the other account keeps its membership
    admins = server.http.get(f"/Groups/{seeded['Admins']['id']}").json()
    assert {m["value"] for m in admins["members"]} == {"alice"}
    assert set(done.result["removed_from_groups"]) == {seeded["Admins"]["id"], seeded["Engineers"]["id"]}
    assert all('value eq \\"bob.old\\"' in body for body in _patch_bodies(done, "/Groups/"))  # by its name now


def test_a_success_whose_answer_shows_the_change_not_made_is_a_failure(
    bent_app: Integration, requester: Person, approver: Person
) -> None:
    """A fault a real server cannot be made to show: 200, and the account still active."""
    account = TargetUser.objects.create(integration=bent_app, remote_id="u-1", user_name="frank", content_hash="x")

    def server(request: httpx.Request) -> httpx.Response:
        if request.method == "PATCH" and "/Users/" in request.url.path:
            return httpx.Response(200, json={"id": "u-1", "userName": "frank", "active": True})
        return httpx.Response(200, json={"totalResults": 0, "Resources": []})

    action = action_request(
        actor=requester, integration=bent_app, action_type="DEPROVISION_IDENTITY", target_user=account
    )
    if action.state == "pending_approval":
        action = action_approve(actor=approver, action=action)
    outcome = action_execute(
        action.pk, client=ScimClient(bent_app, http=httpx.Client(transport=httpx.MockTransport(server)))
    )

    assert outcome.action is not None
    assert outcome.action.state == "failed"
    assert "still True" in outcome.action.last_error


def test_a_connection_test_reads_an_application_that_refuses_count(
    bent: Bent, seeded: dict[str, Any], bent_app: Integration
) -> None:
    bent.refuse_count = True

    result = connection_test(integration=bent_app)

    assert result.ok, result.error
    bent_app.refresh_from_db()
    assert dialect.refused(bent_app, "count")


@pytest.mark.parametrize("ignore_filter", [False, True])
def test_an_account_of_the_same_name_tied_to_another_external_id_is_not_taken_over(
    bent: Bent,
    bent_app: Integration,
    requester: Person,
    approver: Person,
    make_person: Callable[..., Person],
    ignore_filter: bool,
) -> None:
    """The name matches, but another identity provider tied the account to someone else."""
    server = Peer(bent.url)
    theirs = server.user("frank", externalId="other-idp-7", title="Theirs")
    bent.ignore_filter = ignore_filter
    bent.writes.clear()
    frank = make_person("frank", external_id="okta-1", title="Mine")

    done = perform(approver, requester, bent_app, "SYNC_IDENTITIES", person=frank)

    assert done.state == "failed"
    assert "has externalId other-idp-7, not this person's okta-1" in done.last_error
    assert bent.writes == []
    assert on_server(server, theirs)["title"] == "Theirs"
    # Without an externalId of its own, the account of that name is theirs, as before.
    server.http.patch(
        f"/Users/{theirs['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "remove", "path": "externalId"}],
        },
    )
    again = perform(approver, requester, bent_app, "SYNC_IDENTITIES", person=frank)
    assert again.state == "succeeded", again.last_error
    assert on_server(server, theirs)["title"] == "Mine"
