"""Why, everywhere: an automated action says what caused it (page, list, export, API), and the
person's page says, per account and per group, why the person has it."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from console.accounts.models import Person
from integrations.explain import person_accounts_explained
from integrations.models import Integration, OwnerSource, TargetGroup, TargetMembership, TargetUser
from integrations.selectors import person_accounts
from lifecycle.consumer import policy_consume
from lifecycle.engine import wanted_apply, wanted_for
from lifecycle.models import BirthrightMapping, LifecyclePolicy
from provisioning.models import AccessRequest, Action, ActionState
from tests.lifecycle.conftest import map_team, patch_op, push_group, push_user, set_active
from tests.provisioning.conftest import run_action, run_queued, server_user
from tests.scim.conftest import ScimClient
from tests.scim_peer import Peer


def _joined(
    app: Integration, scim: ScimClient, groups: dict[str, TargetGroup], policy: LifecyclePolicy
) -> tuple[Person, BirthrightMapping, Action, Action]:
    """Ada pushed in the Eng team: the policy made her account and added her to Engineering."""
    ada = push_user(scim, "ada@example.com")
    push_group(scim, "Eng team", [ada])
    mapping = map_team(app, "Eng team", groups["Engineering"])
    policy_consume(policy.pk)
    (sync,) = run_queued(app)
    person, joined = sync.person_id, sync.cause_event
    assert person is not None
    assert joined is not None
    wanted_apply(policy, wanted_for(policy, [person], {person: joined}, accounts=False))  # as the follow-up does
    (add,) = run_queued(app)
    return Person.objects.get(username="ada@example.com"), mapping, sync, add


def test_an_automated_action_says_why_on_its_page_in_the_list_the_export_and_the_api(
    peer: Peer,
    app: Integration,
    scim: ScimClient,
    groups_in_app: dict[str, TargetGroup],
    policy_on: LifecyclePolicy,
    admin_client: Client,
    admin: Person,
    api_client_for: Callable[[Person], Any],
) -> None:
    ada, mapping, sync, add = _joined(app, scim, groups_in_app, policy_on)
    assert sync.cause_event is not None

    page = admin_client.get(reverse("action_detail", args=[sync.pk])).content.decode()
    assert 'data-testid="action-requester">lifecycle automation at' in page
    assert f"Joiner: ada@example.com joined team Eng team over SCIM (identity event {sync.cause_event.pk})" in page
    assert f'href="/people/{ada.pk}/#identity-events">ada@example.com, identity event {sync.cause_event.pk}</a>' in page
    assert f'href="/integrations/{app.pk}/' in page
    assert "the lifecycle policy of Peer app</a>" in page

    page = admin_client.get(reverse("action_detail", args=[add.pk])).content.decode()
    assert "Birthright: team Eng team → Engineering (ada@example.com joined team Eng team over SCIM" in page
    assert f"ada@example.com, identity event {add.cause_event_id}</a>" in page
    assert f'#mapping-{mapping.pk}">mapping {mapping.pk}</a>' in page

    # Somebody's own request: their name, and no cause.
    manual = Action.objects.create(
        integration=app, action_type="SYNC_IDENTITIES", state="succeeded", requested_by=admin, subject="x"
    )
    page = admin_client.get(reverse("action_detail", args=[manual.pk])).content.decode()
    assert 'data-testid="action-requester">root-admin at' in page
    assert 'data-testid="action-cause"' not in page

    api = api_client_for(admin)
    body = api.get(f"/api/v1/actions/{add.pk}/").json()
    assert body["cause"] == {
        "text": add.cause["text"],
        "event": add.cause_event_id,
        "policy": policy_on.pk,
        "mappings": [mapping.pk],
    }
    assert api.get(f"/api/v1/actions/{manual.pk}/").json()["cause"] is None
    listed = {row["id"]: row for row in api.get("/api/v1/actions/").json()["results"]}
    assert listed[sync.pk]["cause"]["event"] == sync.cause_event_id

    rows = admin_client.get("/actions/").content.decode()
    assert "Why" in rows
    assert "Joiner: ada@example.com joined team Eng team" in rows
    exported = admin_client.get("/actions/?as=csv")
    found = {
        int(r["id"]): r
        for r in csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode()))  # type: ignore[attr-defined]
    }
    assert found[add.pk]["cause"] == add.cause["text"]
    assert found[manual.pk]["cause"] == ""


def test_the_persons_page_says_why_they_have_each_account_and_group(
    peer: Peer,
    app: Integration,
    scim: ScimClient,
    groups_in_app: dict[str, TargetGroup],
    policy_on: LifecyclePolicy,
    admin_client: Client,
    admin: Person,
    extract: Callable[[], None],
    api_client_for: Callable[[Person], Any],
) -> None:
    ada, mapping, sync, _ = _joined(app, scim, groups_in_app, policy_on)
    # Someone adds Ada to Sales in the application itself; the console reads it.
    account = server_user(peer, "ada@example.com")
    assert account is not None
    sales = peer.http.get("/Groups", params={"filter": 'displayName eq "Sales"'}).json()["Resources"][0]
    peer.http.patch(
        f"/Groups/{sales['id']}", json=patch_op({"op": "add", "path": "members", "value": [{"value": account["id"]}]})
    )
    extract()

    page = admin_client.get(f"/people/{ada.pk}/").content.decode()
    assert (
        f"created by the lifecycle policy of Peer app for identity event {sync.cause_event_id} (action {sync.pk})"
        in page
    )
    assert f"birthright: team Eng team → Engineering via mapping {mapping.pk}</a>" in page
    assert 'Sales <span class="muted">(membership in the application, granted by no mapping or request)' in page

    # The export says the same in words: the account's why, and each group with its why.
    exported = admin_client.get(f"/people/{ada.pk}/?as=csv&ordering=user_name")
    assert exported["Content-Type"].startswith("text/csv")
    (row,) = csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode()))  # type: ignore[attr-defined]
    assert (row["application"], row["user_name"], row["status"]) == ("Peer app", "ada@example.com", "Active")
    assert row["why"].startswith("created by the lifecycle policy of Peer app for identity event")
    assert row["groups"] == (
        f"Engineering (birthright: team Eng team → Engineering via mapping {mapping.pk}); "
        "Sales (membership in the application, granted by no mapping or request)"
    )
    assert row["last_seen"]
    assert row["actions_in_flight"] == ""

    (listed,) = api_client_for(admin).get(f"/api/v1/people/{ada.pk}/accounts/").json()
    assert listed["why"].startswith("created by the lifecycle policy of Peer app for identity event")
    assert listed["memberships"] == [
        {"group": "Engineering", "why": f"birthright: team Eng team → Engineering via mapping {mapping.pk}"},
        {"group": "Sales", "why": "membership in the application, granted by no mapping or request"},
    ]

    # Sales granted by an access request instead: the request says why.
    target = TargetUser.objects.get(integration=app, user_name="ada@example.com")
    access = AccessRequest.objects.create(
        integration=app,
        target_user=target,
        target_group=groups_in_app["Sales"],
        operation=AccessRequest.Operation.ADD,
        justification="needs the pipeline",
        state=AccessRequest.State.APPROVED,
        requested_by=admin,
    )
    page = admin_client.get(f"/people/{ada.pk}/").content.decode()
    assert f'href="/actions/access-requests/{access.pk}/">access request #{access.pk}</a>' in page

    # An account linked by a rule, and one an admin chose.
    bob = Person.objects.create(username="bob@example.com")
    peer.user("bob@example.com")
    extract()
    assert TargetUser.objects.get(integration=app, user_name="bob@example.com").owner == bob
    page = admin_client.get(f"/people/{bob.pk}/").content.decode()
    assert "linked by the rule userName: its userName is their user name" in page
    TargetUser.objects.filter(user_name="bob@example.com").update(owner_source=OwnerSource.MANUAL)
    assert "linked by an admin" in admin_client.get(f"/people/{bob.pk}/").content.decode()


def test_the_persons_accounts_are_explained_in_the_same_number_of_queries_however_many(
    app: Integration, groups_in_app: dict[str, TargetGroup], policy_on: LifecyclePolicy, admin_client: Client
) -> None:
    carol = Person.objects.create(username="carol")
    others = [Integration.objects.create(name=f"App {i}", base_url=app.base_url) for i in range(3)]

    def accounts(integrations: list[Integration], groups_each: int) -> None:
        for integration in integrations:
            user = TargetUser.objects.create(
                integration=integration,
                remote_id=f"carol-{integration.pk}",
                user_name="carol",
                owner=carol,
                owner_source=OwnerSource.ACTION,
            )
            for n in range(groups_each):
                group = TargetGroup.objects.create(
                    integration=integration, remote_id=f"g{n}-{integration.pk}", display_name=f"Group {n}"
                )
                TargetMembership.objects.create(
                    integration=integration, group=group, member_remote_id=user.remote_id, user=user
                )

    def explained() -> tuple[int, list[Any]]:
        with CaptureQueriesContext(connection) as queries:
            found = person_accounts(person_id=carol.pk)
            person_accounts_explained(carol.pk, found)
        return len(queries), found

    accounts([others[0]], 1)
    one, _ = explained()
    accounts(others[1:], 20)
    many, found = explained()
    assert many == one  # one query per kind, whatever the number of accounts and groups
    assert sum(len(a.group_rows) for a in found) == 41
    assert {why.text for a in found for _, why in a.group_rows} == {
        "membership in the application, granted by no mapping or request"
    }
    assert {a.why.text for a in found} == {"linked by an action of the console, which made or found it for them"}
    page = admin_client.get(f"/people/{carol.pk}/").content.decode()
    assert page.count("granted by no mapping or request") == 41


def test_a_held_batch_of_leavers_says_who_asked_and_why(
    peer: Peer,
    app: Integration,
    scim: ScimClient,
    groups_in_app: dict[str, TargetGroup],
    policy_on: LifecyclePolicy,
    admin_client: Client,
) -> None:
    app.mass_change_max_accounts = 1
    app.save()
    people = [push_user(scim, f"p{i}@example.com") for i in range(3)]
    policy_consume(policy_on.pk)
    run_queued(app)
    for person in people:
        set_active(scim, person, False)
    policy_consume(policy_on.pk)
    held = Action.objects.filter(integration=app, action_type="DEPROVISION_IDENTITY").order_by("pk")
    assert held.count() == 3
    batch = held[0].batch
    assert batch is not None
    assert batch.requested_by is None

    page = admin_client.get(reverse("batch_detail", args=[batch.pk])).content.decode()
    assert '<span data-testid="batch-requester">lifecycle automation</span>' in page
    assert f"Why: {held[0].cause['text']} (and 2 more, each on its action's page)." in page


def test_an_account_a_sync_found_in_the_application_reads_found_not_created(
    peer: Peer,
    app: Integration,
    admin: Person,
    admin_client: Client,
    extract: Callable[[], None],
    make_person: Callable[..., Person],
) -> None:
    from provisioning.services import action_request

    peer.user("bo", active=True)
    extract()  # read while nobody is bo: the account is nobody's
    bo = make_person("bo", roles=[])
    account = TargetUser.objects.get(integration=app, user_name="bo")
    TargetUser.objects.filter(pk=account.pk).update(owner=None, owner_source="")
    sync = run_action(action_request(actor=admin, integration=app, action_type="SYNC_IDENTITIES", person=bo))
    assert sync.state == ActionState.SUCCEEDED, sync.last_error
    assert sync.result["operation"] != "created"
    assert TargetUser.objects.get(pk=account.pk).owner_source == OwnerSource.ACTION

    page = admin_client.get(f"/people/{bo.pk}/").content.decode()
    assert f"found and linked by action {sync.pk} at the request of {admin.username}" in page
    assert f"created by action {sync.pk}" not in page
