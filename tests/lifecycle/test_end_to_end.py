"""Lifecycle automation end to end, with real parts only.

An Okta-like client pushes people and a group to the console's own /scim/v2; a real Celery
worker consumes the identity events (sent on commit) and carries out what two policies ask
for, in two real scim2-server applications. Nothing here runs a task in-process: every
account, membership and deactivation is read back from the applications themselves.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import transaction
from scim2_server.memory import InMemoryStorage
from scim2_server.testserver.application import BearerTokenApplication

from console.accounts.models import IdentityEvent, Person, Team
from integrations.extraction import extraction_run_execute
from integrations.models import ExtractionRun, Integration, TargetGroup
from lifecycle.models import BirthrightMapping, LifecyclePolicy, PolicyMode
from provisioning.models import Action, ActionState, ActionType, Revocation
from tests.conftest import WorkerProcess
from tests.lifecycle.conftest import patch_op, push_group, push_user, set_active
from tests.scim.conftest import ScimClient
from tests.scim_fronts import Bent, bent_front
from tests.scim_peer import ENTERPRISE, PEER_TOKEN, Peer, _serve

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

TIMEOUT = 30


@pytest.fixture
def second(scim2_server_service: Any) -> Iterator[Bent]:
    """A second scim2-server, with storage of its own, behind a front that can bend it."""
    app = BearerTokenApplication(
        InMemoryStorage(), scim2_server_service.provider, scim2_server_service, bearer_tokens=[PEER_TOKEN]
    )
    state = Bent()
    for port in _serve(bent_front(app, state)):
        state.url = f"http://localhost:{port}"
        yield state


def _extract(integration: Integration) -> None:
    run = ExtractionRun.objects.create(integration=integration, trigger="manual")
    done = extraction_run_execute(run_id=run.pk)
    assert done is not None
    assert done.status == "succeeded", done.error


def _application(name: str, server: Peer, groups: tuple[str, ...]) -> dict[str, TargetGroup]:
    """An integration on ``server`` with these groups, read by the console, and its policy on."""
    for group in groups:
        server.group(group, [])
    integration = Integration.objects.create(
        name=name, base_url=server.url, bearer_token=PEER_TOKEN, provisioning_enabled=True
    )
    _extract(integration)
    LifecyclePolicy.objects.create(integration=integration, mode=PolicyMode.ON, all_active_people=True)
    return {g.display_name: g for g in TargetGroup.objects.filter(integration=integration)}


def _map(*groups: TargetGroup, team: str = "", department: str = "") -> BirthrightMapping:
    conditions = [{"attribute": "department", "operator": "equals", "values": [department]}] if department else []
    mapping = BirthrightMapping.objects.create(
        integration=groups[0].integration,
        team=Team.objects.get(name=team) if team else None,
        conditions=conditions,
    )
    mapping.groups.set(groups)
    return mapping


def _wait(what: str, condition: Callable[[], bool], worker: WorkerProcess, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    actions = "\n".join(
        f"{a.pk} {a.integration.name} {a.action_type} {a.subject} {a.state} {a.last_error} {a.cause.get('text')}"
        f" person={a.person_id} event={a.cause_event_id}"
        for a in Action.objects.select_related("integration").order_by("pk")
    )
    actions += "\nevents:\n" + "\n".join(
        f"{e.pk} {e.person_id} {e.kind} {e.changes} {e.occurred_at}" for e in IdentityEvent.objects.order_by("pk")
    )
    raise AssertionError(f"timed out waiting for {what}\nactions:\n{actions}\n{worker.output()}")


def _account(server: Peer, user_name: str) -> dict[str, Any] | None:
    found = server.http.get("/Users", params={"filter": f'userName eq "{user_name}"'}).json()
    resources = found.get("Resources") or []
    assert len(resources) <= 1, f"{len(resources)} accounts named {user_name}"
    return resources[0] if resources else None


def _active(server: Peer, user_name: str) -> bool | None:
    account = _account(server, user_name)
    return None if account is None else bool(account.get("active"))


def _groups_of(server: Peer, user_name: str) -> set[str]:
    account = _account(server, user_name)
    if account is None:
        return set()
    groups = server.http.get("/Groups").json().get("Resources") or []
    return {g["displayName"] for g in groups if any(m["value"] == account["id"] for m in g.get("members") or [])}


def _team_add(scim: ScimClient, team: dict[str, Any], *users: dict[str, Any]) -> None:
    response = scim.patch(
        f"Groups/{team['id']}",
        patch_op({"op": "add", "path": "members", "value": [{"value": u["id"]} for u in users]}),
    )
    assert response.status_code in (200, 204), response.content


def _set_department(scim: ScimClient, user: dict[str, Any], department: str) -> None:
    response = scim.patch(
        f"Users/{user['id']}", patch_op({"op": "replace", "path": f"{ENTERPRISE}:department", "value": department})
    )
    assert response.status_code == 200, response.content


def _deprovisions(integration: Integration, user_name: str) -> Any:
    return Action.objects.filter(
        integration=integration, action_type=ActionType.DEPROVISION_IDENTITY, subject=user_name
    ).order_by("pk")


def test_joiner_mover_leaver_rehire_and_a_held_burst_through_a_real_worker(
    peer: Peer,
    second: Bent,
    scim: ScimClient,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    one, two = peer, Peer(second.url)
    groups_one = _application("First app", one, ("Engineering", "Research", "Sales"))
    groups_two = _application("Second app", two, ("Engineering",))
    eng = push_group(scim, "Eng team", [])
    _map(groups_one["Engineering"], team="Eng team")
    _map(groups_two["Engineering"], team="Eng team")
    _map(groups_one["Research"], department="Research")
    _map(groups_one["Sales"], department="Sales")
    worker = start_worker("lifecycle-e2e", concurrency=2)

    # Joiner: pushed by the identity provider, then put in the team; accounts and groups follow.
    ada = push_user(scim, "ada@example.com", **{ENTERPRISE: {"department": "Research"}})
    _team_add(scim, eng, ada)
    _wait(
        "ada's accounts and birthright groups",
        lambda: (
            _groups_of(one, "ada@example.com") == {"Engineering", "Research"}
            and _groups_of(two, "ada@example.com") == {"Engineering"}
        ),
        worker,
    )
    assert _active(one, "ada@example.com") is True
    assert _active(two, "ada@example.com") is True
    person = Person.objects.get(username="ada@example.com")
    sync = Action.objects.filter(integration__name="First app", person=person, action_type="SYNC_IDENTITIES").first()
    assert sync is not None
    assert sync.cause_event is not None
    assert sync.cause["text"].startswith("Joiner: ada@example.com joined")
    assert f"over SCIM (identity event {sync.cause_event.pk})" in sync.cause["text"]

    # Mover: a department change moves ada from Research to Sales, where a condition maps them.
    _set_department(scim, ada, "Sales")
    _wait(
        "ada moved from Research to Sales",
        lambda: _groups_of(one, "ada@example.com") == {"Engineering", "Sales"},
        worker,
    )
    assert _groups_of(two, "ada@example.com") == {"Engineering"}  # no department mapping there

    # Leaver: deactivated over SCIM, deprovisioned in both, each deprovision read back and verified.
    set_active(scim, ada, False)
    _wait(
        "ada deprovisioned in both applications",
        lambda: Revocation.objects.filter(person=person, outcome=Revocation.Outcome.VERIFIED).count() == 2,
        worker,
    )
    assert _active(one, "ada@example.com") is False
    assert _active(two, "ada@example.com") is False
    assert _groups_of(one, "ada@example.com") == set()
    assert _groups_of(two, "ada@example.com") == set()
    for record in Revocation.objects.filter(person=person).select_related("action", "action__cause_event"):
        assert record.action.state == ActionState.SUCCEEDED
        assert record.action.cause["text"].startswith("Leaver: ada@example.com was deactivated over SCIM")
        assert record.measured_from == Revocation.MeasuredFrom.IDENTITY_EVENT  # from the deactivation at Okta
        assert record.requested_at == record.action.cause_event.occurred_at  # type: ignore[union-attr]

    # Re-hire: the same accounts, made active again, with their groups back.
    set_active(scim, ada, True)
    _wait(
        "ada reactivated with their groups",
        lambda: (
            _active(one, "ada@example.com") is True
            and _active(two, "ada@example.com") is True
            and _groups_of(one, "ada@example.com") == {"Engineering", "Sales"}
            and _groups_of(two, "ada@example.com") == {"Engineering"}
        ),
        worker,
    )
    for server in (one, two):
        found = server.http.get("/Users", params={"filter": 'userName eq "ada@example.com"'}).json()
        assert found["totalResults"] == 1  # the same account, not a second one

    # A burst: five leavers in one push, past each application's mass-change limit of 3.
    Integration.objects.filter(name__in=["First app", "Second app"]).update(mass_change_max_accounts=3)
    burst = [push_user(scim, f"p{i}@example.com") for i in range(5)]
    _wait(
        "the five joiners' accounts",
        lambda: all(_active(s, f"p{i}@example.com") for s in (one, two) for i in range(5)),
        worker,
    )
    with transaction.atomic():  # one push: the five deactivations commit together
        for user in burst:
            set_active(scim, user, False)
    burst_names = [f"p{i}@example.com" for i in range(5)]

    def held() -> bool:
        found = Action.objects.filter(action_type=ActionType.DEPROVISION_IDENTITY, subject__in=burst_names)
        return found.filter(state=ActionState.PENDING_APPROVAL).count() == 10

    _wait("the burst held for approval", held, worker)
    for integration in Integration.objects.filter(name__in=["First app", "Second app"]):
        actions = Action.objects.filter(
            integration=integration, action_type=ActionType.DEPROVISION_IDENTITY, subject__in=burst_names
        )
        assert actions.count() == 5
        assert actions.values("batch").distinct().count() == 1  # one batch, held whole
        batch = actions.first().batch  # type: ignore[union-attr]
        assert batch is not None
        assert "mass change" in batch.held_reason
    time.sleep(1)  # nothing reaches the applications while the batch waits
    assert all(_active(s, name) for s in (one, two) for name in burst_names)


def test_an_application_that_answers_200_to_the_deactivation_fails_the_deprovision(
    peer: Peer,
    second: Bent,
    scim: ScimClient,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    one, two = peer, Peer(second.url)
    _application("First app", one, ("Engineering",))
    _application("Second app", two, ("Engineering",))
    worker = start_worker("lifecycle-e2e-fault", concurrency=2)
    ada = push_user(scim, "ada@example.com")
    _wait(
        "ada's accounts",
        lambda: _active(one, "ada@example.com") is True and _active(two, "ada@example.com") is True,
        worker,
    )
    person = Person.objects.get(username="ada@example.com")

    second.patch_does_nothing = True  # the second application now answers 200 to a PATCH and changes nothing
    set_active(scim, ada, False)

    def both_read_back() -> bool:
        return Revocation.objects.filter(person=person).count() == 2 and not any(
            a.state in (ActionState.QUEUED, ActionState.RUNNING)
            for a in Action.objects.filter(person=person, action_type=ActionType.DEPROVISION_IDENTITY)
        )

    _wait("both deprovisions read back", both_read_back, worker)
    first = Revocation.objects.get(person=person, integration__name="First app")
    assert first.outcome == Revocation.Outcome.VERIFIED
    caught = Revocation.objects.select_related("action").get(person=person, integration__name="Second app")
    assert caught.outcome == Revocation.Outcome.MISMATCH
    assert caught.reason == "the application answered success but still shows ada@example.com active"
    assert caught.action.state == ActionState.FAILED
    assert caught.action.last_error == caught.reason
    assert [w.method for w in second.refused] == ["PATCH"]  # answered 200, never reached the server
    assert _active(one, "ada@example.com") is False
    assert _active(two, "ada@example.com") is True  # the application still shows it: caught, not assumed
