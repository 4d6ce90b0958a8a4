"""The dry run of each action type is its real executor: the plan shown is what the worker sends.

Each test plans an action against the console's picture (an extraction of the real SCIM
server), then lets a worker run it against that server, and compares the worker's call
log with the plan: method, path (with its query) and body, in order. The full dry run
(every request, reads included) must equal the full log too, and planning must write
nothing to the database.

Ids the application assigns: a dry run's POST is answered with the placeholder id
``NEW_ID``, which is never the server's. No executor names a resource it created in a later
request, so no request of these plans holds it, and the comparison is exact; were one to,
it would show the placeholder where the worker sends the server's id.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from console.accounts.models import Person
from integrations import dialect
from integrations.extraction import extraction_run_execute
from integrations.models import ExtractionRun, Integration
from provisioning.action_types import action_type_of
from provisioning.dry_run import PlannedRequest, rehearse
from provisioning.models import Action, ScimCall
from provisioning.planning import plan_for_action
from provisioning.services import action_request
from tests.provisioning.conftest import account, group, run_action
from tests.scim_fronts import Bent
from tests.scim_peer import PEER_TOKEN, Peer

pytestmark = pytest.mark.django_db

Request = tuple[str, str, Any]  # method, path with its query, body


def _planned(steps: list[PlannedRequest]) -> list[Request]:
    return [(step.method, step.path, step.body) for step in steps if step.method != "—"]


def _sent(app: Integration, action: Action) -> list[Request]:
    """What the worker sent, from its call log, in the form of a plan."""
    base = app.base_url.rstrip("/") + "/"
    sent = []
    for call in ScimCall.objects.filter(action=action).order_by("id"):
        path, _, query = call.url.removeprefix(base).partition("?")
        if query:
            path += "?" + "&".join(f"{key}={value}" for key, value in parse_qsl(query, keep_blank_values=True))
        sent.append((call.method, path, json.loads(call.request_body) if call.request_body else None))
    return sent


def _reads_before_writes(requests: list[Request]) -> list[Request]:
    reads = []
    for request in requests:
        if request[0] != "GET":
            break
        reads.append(request)
    return reads


def _writes(requests: list[Request]) -> list[Request]:
    return [request for request in requests if request[0] != "GET"]


def plan_then_run(app: Integration, action: Action, *, shows_look_ups: bool) -> list[PlannedRequest]:
    """Plan the action, then run it; the plan (and the whole dry run) must be what the worker sent."""
    before = ScimCall.objects.count()
    with CaptureQueriesContext(connection) as queries:
        steps = plan_for_action(action)
        rehearsal = rehearse(app, action.action_type, action.parameters, action_type_of(action.action_type).execute)
    written = [
        q["sql"] for q in queries.captured_queries if q["sql"].split()[0].upper() in ("INSERT", "UPDATE", "DELETE")
    ]
    assert written == []  # the picture, the dialect profile, the call log: all as they were
    assert ScimCall.objects.count() == before
    assert not rehearsal.stopped

    done = run_action(action)
    assert done.state == "succeeded", done.last_error

    sent = _sent(app, done)
    assert _planned(rehearsal.requests) == sent  # every request, reads included
    shown = [*_reads_before_writes(sent), *_writes(sent)] if shows_look_ups else _writes(sent)
    assert _planned(steps) == shown
    return steps


def test_a_sync_that_creates_the_account(
    peer: Peer, app: Integration, extract: Callable[[], None], requester: Person, make_person: Callable[..., Person]
) -> None:
    extract()
    jane = make_person("jane.doe", given_name="Jane", family_name="Doe", email="jane@example.com")
    action = action_request(actor=requester, integration=app, action_type="SYNC_IDENTITIES", person=jane)

    steps = plan_then_run(app, action, shows_look_ups=True)

    assert [(s.method, s.note) for s in steps] == [("GET", ""), ("POST", "no account yet")]


def test_a_sync_that_reactivates_and_updates_the_account(
    peer: Peer, app: Integration, extract: Callable[[], None], requester: Person, make_person: Callable[..., Person]
) -> None:
    remote_id = peer.user("Jane.Doe", active=False, externalId="emp-7", displayName="Jane D")["id"]
    extract()
    jane = make_person("jane.doe", external_id="emp-7", display_name="Jane Doe")
    action = action_request(actor=requester, integration=app, action_type="SYNC_IDENTITIES", person=jane)

    steps = plan_then_run(app, action, shows_look_ups=True)

    assert [(s.method, s.path, s.label) for s in steps[1:]] == [
        ("PATCH", f"Users/{remote_id}", "Jane.Doe"),  # active on its own first
        ("PATCH", f"Users/{remote_id}", "Jane.Doe"),  # then what differs
    ]


def test_a_sync_of_an_account_up_to_date_sends_no_write(
    peer: Peer, app: Integration, extract: Callable[[], None], requester: Person, make_person: Callable[..., Person]
) -> None:
    jane = make_person("jane.doe")
    action = action_request(actor=requester, integration=app, action_type="SYNC_IDENTITIES", person=jane)
    peer.user("jane.doe", **{k: v for k, v in action.parameters["user"].items() if k != "userName"})
    extract()

    steps = plan_then_run(app, action, shows_look_ups=True)

    assert [(s.method, s.note) for s in steps][-1] == ("—", "already up to date")


def test_a_membership_change_in_chunks(
    peer: Peer, app: Integration, extract: Callable[[], None], requester: Person
) -> None:
    ada, bob, cy = (peer.user(name) for name in ("ada", "bob", "cy"))
    peer.group("Engineers", [ada])
    extract()
    app.membership_chunk_size = 1
    app.save()
    action = action_request(
        actor=requester,
        integration=app,
        action_type="MANAGE_RELATIONSHIPS",
        target_group=group(app, "Engineers"),
        parameters={"add": [bob["id"], cy["id"]], "remove": [ada["id"]]},
    )

    steps = plan_then_run(app, action, shows_look_ups=False)

    assert [s.label for s in steps] == ["Engineers: add bob", "Engineers: add cy", "Engineers: remove ada"]


def test_a_deprovision_deactivates_and_leaves_every_group(
    peer: Peer, app: Integration, extract: Callable[[], None], requester: Person
) -> None:
    ada = peer.user("ada")
    peer.group("Engineers", [ada])
    peer.group("Admins", [ada])
    extract()
    action = action_request(
        actor=requester, integration=app, action_type="DEPROVISION_IDENTITY", target_user=account(app, "ada")
    )

    steps = plan_then_run(app, action, shows_look_ups=False)

    assert steps[0].label == "ada"
    assert sorted(s.label for s in steps[1:]) == ["Admins: remove ada", "Engineers: remove ada"]


def test_a_delete(deletable: Integration, requester: Person, approver: Person) -> None:
    from provisioning.services import action_approve

    action = action_request(
        actor=requester, integration=deletable, action_type="DELETE_IDENTITY", target_user=account(deletable, "ada")
    )
    action = action_approve(actor=approver, action=action)

    steps = plan_then_run(deletable, action, shows_look_ups=False)

    assert [(s.method, s.label) for s in steps] == [("DELETE", "ada")]


def test_a_group_created(peer: Peer, app: Integration, extract: Callable[[], None], requester: Person) -> None:
    extract()
    action = action_request(
        actor=requester, integration=app, action_type="CREATE_ENTITLEMENT", parameters={"display_name": "Auditors"}
    )

    steps = plan_then_run(app, action, shows_look_ups=True)

    assert [s.method for s in steps] == ["GET", "POST"]


def test_a_group_that_exists_is_adopted(
    peer: Peer, app: Integration, extract: Callable[[], None], requester: Person
) -> None:
    peer.group("Auditors", [])
    extract()
    action = action_request(
        actor=requester, integration=app, action_type="CREATE_ENTITLEMENT", parameters={"display_name": "auditors"}
    )

    steps = plan_then_run(app, action, shows_look_ups=True)

    assert [(s.method, s.note) for s in steps] == [("GET", ""), ("—", "the group exists: it is adopted")]


def test_an_application_with_a_dialect_of_its_own_is_planned_in_its_forms(
    bent: Bent, requester: Person, make_person: Callable[..., Person]
) -> None:
    """PUT instead of PATCH replace, removal by a value list: the forms its profile learned."""
    bent.refuse_replace_of = {"active", "displayName"}
    bent.refuse_filter_path_remove = True
    server = Peer(bent.url)
    ada = server.user("ada", displayName="Ada")
    server.group("Engineers", [ada])
    app = Integration.objects.create(
        name="Bent app", base_url=bent.url, bearer_token=PEER_TOKEN, provisioning_enabled=True
    )
    extracted = extraction_run_execute(run_id=ExtractionRun.objects.create(integration=app, trigger="manual").pk)
    assert extracted is not None
    assert extracted.status == "succeeded", extracted.error
    dialect.learn(app, "patch_replace", False)
    dialect.learn(app, "patch_filter_path_remove", False)
    action = action_request(
        actor=requester, integration=app, action_type="DEPROVISION_IDENTITY", target_user=account(app, "ada")
    )

    steps = plan_then_run(app, action, shows_look_ups=False)

    assert [s.method for s in steps] == ["PUT", "PATCH"]
    assert steps[1].body is not None
    assert steps[1].body["Operations"][0]["path"] == "members"
    assert not bent.refused  # the worker, too, went straight to the forms the application takes


def test_a_plan_says_where_the_worker_would_stop(
    deletable: Integration,
    requester: Person,
    approver: Person,  # someone who could approve the delete
) -> None:
    action = action_request(
        actor=requester, integration=deletable, action_type="DELETE_IDENTITY", target_user=account(deletable, "ada")
    )
    deletable.supports_hard_delete = False
    deletable.save()

    steps = plan_for_action(action)

    assert [(s.method, s.note) for s in steps] == [
        ("—", f"it would stop here: {deletable.name} no longer allows hard delete: deprovision the account instead.")
    ]
