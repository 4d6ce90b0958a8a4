"""Joiner, mover, leaver and re-hire, one step at a time, against the real SCIM server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from console.accounts.models import Person, Team
from integrations.models import Integration, TargetGroup
from lifecycle.consumer import policy_consume
from lifecycle.engine import wanted_apply, wanted_for
from lifecycle.models import Grant, LifecyclePolicy, PlannedChange, PolicyMode
from provisioning.models import Action, ActionState, ActionType
from tests.lifecycle.conftest import map_team, patch_op, push_group, push_user, set_active
from tests.provisioning.conftest import run_action, run_queued, server_user
from tests.scim.conftest import ScimClient
from tests.scim_peer import Peer


def _follow_up(policy: LifecyclePolicy, syncs: list[Action]) -> None:
    """What the worker's success sends: the joiners' groups."""
    people = [a.person_id for a in syncs if a.action_type == ActionType.SYNC_IDENTITIES and a.person_id is not None]
    wanted_apply(policy, wanted_for(policy, people, accounts=False))


def _members(peer: Peer, group_name: str) -> set[str]:
    found = peer.http.get("/Groups", params={"filter": f'displayName eq "{group_name}"'}).json()["Resources"][0]
    ids = {m["value"] for m in found.get("members") or []}
    return {peer.http.get(f"/Users/{pk}").json()["userName"] for pk in ids}


def test_joiner_mover_leaver_and_rehire_follow_the_identity_provider(
    peer: Peer,
    app: Integration,
    scim: ScimClient,
    groups_in_app: dict[str, TargetGroup],
    policy_on: LifecyclePolicy,
) -> None:
    ada = push_user(scim, "ada@example.com")
    engineering = push_group(scim, "Eng team", [ada])
    push_group(scim, "Sales team", [])
    eng_mapping = map_team(app, "Eng team", groups_in_app["Engineering"])
    map_team(app, "Sales team", groups_in_app["Sales"])

    # Joiner: an account, then (once it exists) the birthright group.
    assert policy_consume(policy_on.pk) >= 2
    sync = Action.objects.get(integration=app, action_type=ActionType.SYNC_IDENTITIES)
    assert sync.cause["policy"] == policy_on.pk
    assert sync.cause_event_id is not None
    assert sync.cause["text"].startswith("Joiner: ada@example.com")
    _follow_up(policy_on, run_queued(app))
    add = Action.objects.get(integration=app, action_type=ActionType.MANAGE_RELATIONSHIPS)
    assert add.cause["mappings"] == [eng_mapping.pk]
    assert "team Eng team → Engineering" in add.cause["text"]
    run_queued(app)
    assert server_user(peer, "ada@example.com")["active"] is True  # type: ignore[index]
    assert _members(peer, "Engineering") == {"ada@example.com"}
    assert Grant.objects.filter(person__username="ada@example.com").count() == 1

    # Nothing left to do: consuming again asks for nothing.
    before = Action.objects.count()
    assert policy_consume(policy_on.pk) == 0
    assert not wanted_for(policy_on, [Person.objects.get(username="ada@example.com").pk])
    assert Action.objects.count() == before

    # Mover: from the engineering team to the sales team.
    sales = Team.objects.get(name="Sales team")
    scim.patch(f"Groups/{engineering['id']}", patch_op({"op": "remove", "path": f'members[value eq "{ada["id"]}"]'}))
    scim.patch(f"Groups/{sales.scim_id}", patch_op({"op": "add", "path": "members", "value": [{"value": ada["id"]}]}))
    policy_consume(policy_on.pk)
    run_queued(app)
    assert _members(peer, "Engineering") == set()
    assert _members(peer, "Sales") == {"ada@example.com"}

    # Leaver: deactivated over SCIM, deprovisioned ahead of other work.
    set_active(scim, ada, False)
    policy_consume(policy_on.pk)
    deprovision = Action.objects.get(integration=app, action_type=ActionType.DEPROVISION_IDENTITY)
    assert deprovision.cause["text"].startswith("Leaver: ada@example.com was deactivated over SCIM")
    run_queued(app)
    assert server_user(peer, "ada@example.com")["active"] is False  # type: ignore[index]
    assert _members(peer, "Sales") == set()

    # Re-hire: the same account, made active again, and the groups back.
    set_active(scim, ada, True)
    policy_consume(policy_on.pk)
    rehire = Action.objects.filter(integration=app, action_type=ActionType.SYNC_IDENTITIES).latest("pk")
    assert rehire.cause["text"].startswith("Re-hire: ada@example.com was reactivated")
    _follow_up(policy_on, run_queued(app))
    run_queued(app)
    assert server_user(peer, "ada@example.com")["active"] is True  # type: ignore[index]
    assert _members(peer, "Sales") == {"ada@example.com"}
    found = peer.http.get("/Users", params={"filter": 'userName eq "ada@example.com"'}).json()
    assert found["totalResults"] == 1  # the same account, not a second one


def test_memberships_no_mapping_granted_are_left_alone(
    peer: Peer,
    app: Integration,
    scim: ScimClient,
    groups_in_app: dict[str, TargetGroup],
    policy_on: LifecyclePolicy,
    extract: Callable[[], None],
) -> None:
    ada = push_user(scim, "ada@example.com")
    eng = push_group(scim, "Eng team", [ada])
    map_team(app, "Eng team", groups_in_app["Engineering"])
    policy_consume(policy_on.pk)
    _follow_up(policy_on, run_queued(app))
    run_queued(app)
    # Someone adds Ada to Sales in the application itself; the console reads it.
    account = server_user(peer, "ada@example.com")
    sales = peer.http.get("/Groups", params={"filter": 'displayName eq "Sales"'}).json()["Resources"][0]
    peer.http.patch(
        f"/Groups/{sales['id']}",
        json=patch_op({"op": "add", "path": "members", "value": [{"value": account["id"]}]}),  # type: ignore[index]
    )
    extract()
    # Leaving the team removes what the mapping granted, and only that.
    scim.patch(f"Groups/{eng['id']}", patch_op({"op": "remove", "path": f'members[value eq "{ada["id"]}"]'}))
    policy_consume(policy_on.pk)
    run_queued(app)
    assert _members(peer, "Engineering") == set()
    assert _members(peer, "Sales") == {"ada@example.com"}


def test_a_simulating_policy_records_its_plan_and_sends_nothing(
    peer: Peer, app: Integration, scim: ScimClient, groups_in_app: dict[str, TargetGroup]
) -> None:
    policy = LifecyclePolicy.objects.create(integration=app, mode=PolicyMode.SIMULATE, all_active_people=True)
    push_user(scim, "ada@example.com")
    assert policy_consume(policy.pk) >= 1
    assert not Action.objects.filter(integration=app).exists()
    planned = PlannedChange.objects.get(policy=policy)
    assert planned.action_type == ActionType.SYNC_IDENTITIES
    assert planned.subject == "ada@example.com"
    assert planned.cause.startswith("Joiner: ada@example.com joined over SCIM")
    assert server_user(peer, "ada@example.com") is None


def test_a_burst_of_leavers_past_the_threshold_is_held_whole(
    peer: Peer, app: Integration, scim: ScimClient, groups_in_app: dict[str, TargetGroup], policy_on: LifecyclePolicy
) -> None:
    app.mass_change_max_accounts = 3
    app.save()
    people = [push_user(scim, f"p{i}@example.com") for i in range(5)]
    policy_consume(policy_on.pk)
    run_queued(app)
    for person in people:
        set_active(scim, person, False)
    policy_consume(policy_on.pk)
    deprovisions = Action.objects.filter(integration=app, action_type=ActionType.DEPROVISION_IDENTITY)
    assert deprovisions.count() == 5
    assert {a.state for a in deprovisions} == {ActionState.PENDING_APPROVAL}
    batch = deprovisions.first().batch  # type: ignore[union-attr]
    assert batch is not None
    assert "mass change" in batch.held_reason
    assert all(a.batch_id == batch.pk for a in deprovisions)
    assert all(server_user(peer, f"p{i}@example.com")["active"] for i in range(5))  # type: ignore[index]


def test_a_killed_pass_leaves_the_cursor_and_asks_for_nothing(
    app: Integration,
    scim: ScimClient,
    groups_in_app: dict[str, TargetGroup],
    policy_on: LifecyclePolicy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    push_user(scim, "ada@example.com")
    import lifecycle.consumer

    def crash(*args: Any, **kwargs: Any) -> None:
        raise SystemExit("worker killed")

    monkeypatch.setattr(lifecycle.consumer, "wanted_apply", crash)
    with pytest.raises(SystemExit):
        policy_consume(policy_on.pk)
    policy_on.refresh_from_db()
    assert policy_on.event_cursor == 0
    assert not Action.objects.filter(integration=app).exists()
    monkeypatch.undo()
    policy_consume(policy_on.pk)
    policy_consume(policy_on.pk)
    assert Action.objects.filter(integration=app, action_type=ActionType.SYNC_IDENTITIES).count() == 1


def test_a_review_plans_for_everyone_in_scope_and_starts_after_the_newest_event(
    peer: Peer, app: Integration, scim: ScimClient, groups_in_app: dict[str, TargetGroup]
) -> None:
    from lifecycle.consumer import policy_review

    for name in ("ada", "bob"):
        push_user(scim, f"{name}@example.com")
    policy = LifecyclePolicy.objects.create(integration=app, mode=PolicyMode.SIMULATE, all_active_people=True)
    counts = policy_review(policy)
    # ada, bob and the local admin: everyone active but the provisioner's service identity
    assert counts["syncs"] == 3
    planned = PlannedChange.objects.get(policy=policy, subject="ada@example.com")
    assert planned.cause == (
        "Joiner: ada@example.com (the policy was applied to everyone it concerns); "
        "the lifecycle policy of Peer app creates the account"
    )
    assert set(PlannedChange.objects.filter(policy=policy).values_list("subject", flat=True)) == {
        "ada@example.com",
        "bob@example.com",
        "root-admin",
    }
    assert policy_consume(policy.pk) == 0  # the events before the review are covered by it
    policy.mode = PolicyMode.ON
    policy.save()
    policy_review(policy)
    assert Action.objects.filter(integration=app, action_type=ActionType.SYNC_IDENTITIES).count() == 3
    policy_review(policy)  # again: nothing more
    assert Action.objects.filter(integration=app).count() == 3


def test_an_attribute_change_syncs_only_what_the_transformers_use(
    peer: Peer, app: Integration, scim: ScimClient, groups_in_app: dict[str, TargetGroup], policy_on: LifecyclePolicy
) -> None:
    ada = push_user(scim, "ada@example.com", title="Engineer")
    policy_consume(policy_on.pk)
    run_queued(app)
    syncs = Action.objects.filter(integration=app, action_type=ActionType.SYNC_IDENTITIES)
    # The cost center is in no attribute the integration is sent: nothing to do.
    enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    scim.patch(f"Users/{ada['id']}", patch_op({"op": "replace", "path": f"{enterprise}:costCenter", "value": "42"}))
    policy_consume(policy_on.pk)
    assert syncs.count() == 1
    # The title is: the account follows.
    scim.patch(f"Users/{ada['id']}", patch_op({"op": "replace", "path": "title", "value": "Manager"}))
    policy_consume(policy_on.pk)
    assert syncs.count() == 2
    mover = syncs.latest("pk")
    assert mover.cause["text"].startswith("Mover: ada@example.com changed over SCIM")
    assert run_action(mover).state == ActionState.SUCCEEDED
    assert server_user(peer, "ada@example.com")["title"] == "Manager"  # type: ignore[index]


def test_leavers_that_arrive_in_several_passes_count_together_against_the_threshold(
    peer: Peer, app: Integration, scim: ScimClient, groups_in_app: dict[str, TargetGroup], policy_on: LifecyclePolicy
) -> None:
    app.mass_change_max_accounts = 3
    app.mass_change_max_percent = 100
    app.save()
    people = [push_user(scim, f"p{i}@example.com") for i in range(5)]
    policy_consume(policy_on.pk)
    run_queued(app)
    for person in people[:2]:
        set_active(scim, person, False)
    policy_consume(policy_on.pk)
    first = Action.objects.filter(integration=app, action_type=ActionType.DEPROVISION_IDENTITY)
    assert {a.state for a in first} == {ActionState.QUEUED}  # two: under the limit
    for person in people[2:]:
        set_active(scim, person, False)
    policy_consume(policy_on.pk)
    later = Action.objects.filter(integration=app, action_type=ActionType.DEPROVISION_IDENTITY).exclude(
        pk__in=[a.pk for a in first]
    )
    assert later.count() == 3
    assert {a.state for a in later} == {ActionState.PENDING_APPROVAL}
    batch = later.first().batch  # type: ignore[union-attr]
    assert batch is not None
    assert "counting the 2 leavers deprovisioned in the last 10 minutes" in batch.held_reason


def test_the_consumer_waits_for_a_burst_to_settle(scim: ScimClient, policy_on: LifecyclePolicy, settings: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from console.accounts.models import IdentityEvent
    from lifecycle.consumer import burst_settling

    settings.LIFECYCLE_SETTLE_SECONDS = 2.0
    assert burst_settling() == 0  # nothing to do
    push_user(scim, "ada@example.com")
    assert 0 < burst_settling() <= 2.0  # an event just came: wait for more
    IdentityEvent.objects.update(occurred_at=timezone.now() - timedelta(seconds=3))
    assert burst_settling() == 0  # quiet for longer than the settling time
    settings.LIFECYCLE_SETTLE_SECONDS = 60.0
    assert burst_settling() > 0
    settings.LIFECYCLE_SETTLE_MAX_SECONDS = 2.0
    assert burst_settling() == 0  # never longer than the most after the first event


def test_a_follow_up_leaves_a_leaver_to_the_consumer_and_their_deactivation(
    peer: Peer, app: Integration, scim: ScimClient, groups_in_app: dict[str, TargetGroup], policy_on: LifecyclePolicy
) -> None:
    """A sync's follow-up that runs after the person was deactivated asks for nothing: the
    deprovision is the consumer's, caused by the deactivation (not by the event the sync followed)."""
    ada = push_user(scim, "ada@example.com")
    policy_consume(policy_on.pk)
    (sync,) = run_queued(app)
    set_active(scim, ada, False)

    person, joined = sync.person_id, sync.cause_event
    assert person is not None
    assert joined is not None
    assert not wanted_for(policy_on, [person], {person: joined}, accounts=False)
    policy_consume(policy_on.pk)
    deprovision = Action.objects.get(integration=app, action_type=ActionType.DEPROVISION_IDENTITY)
    assert deprovision.cause_event is not None
    assert deprovision.cause_event.kind == "deactivated"
    assert deprovision.cause["text"].startswith("Leaver: ada@example.com was deactivated over SCIM")


def test_a_follow_up_where_no_mapping_or_grant_could_change_a_group_reads_no_picture(
    app: Integration, scim: ScimClient, policy_on: LifecyclePolicy, django_assert_max_num_queries: Any
) -> None:
    """Accounts only (no mapping, no grant): a joiner's follow-up costs two small queries, not a
    picture of everyone in it; once a mapping exists it reads the picture again."""
    ada = push_user(scim, "ada@example.com")
    policy_consume(policy_on.pk)
    (sync,) = run_queued(app)
    assert sync.person_id is not None
    with django_assert_max_num_queries(2):
        assert not wanted_for(policy_on, [sync.person_id], accounts=False)
    group = TargetGroup.objects.create(integration=app, remote_id="g-1", display_name="Everyone", content_hash="-")
    Team.objects.create(name="Staff")
    map_team(app, "Staff", group)
    Person.objects.get(pk=sync.person_id).teams.add(Team.objects.get(name="Staff"))
    wanted = wanted_for(policy_on, [sync.person_id], accounts=False)
    assert list(wanted.adds) == [group.pk]
    assert ada["userName"] == "ada@example.com"


def test_a_sync_s_success_sends_the_follow_up_only_where_a_group_could_follow(
    app: Integration,
    scim: ScimClient,
    policy_on: LifecyclePolicy,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """No mapping in effect and no grant: the worker that ran the sync sends no message that
    would find nothing to do. With a mapping it sends the follow-up, with the joiner in it."""
    from lifecycle.receivers import on_actions_succeeded
    from lifecycle.tasks import lifecycle_follow_up_task

    sent: list[tuple[Any, ...]] = []
    monkeypatch.setattr(lifecycle_follow_up_task, "delay", lambda *args: sent.append(args))
    push_user(scim, "ada@example.com")
    policy_consume(policy_on.pk)
    (sync,) = run_queued(app)
    with django_capture_on_commit_callbacks(execute=True):
        on_actions_succeeded(sender=Action, actions=[sync])
    assert sent == []

    group = TargetGroup.objects.create(integration=app, remote_id="g-1", display_name="Everyone", content_hash="-")
    Team.objects.create(name="Staff")
    map_team(app, "Staff", group)
    with django_capture_on_commit_callbacks(execute=True):
        on_actions_succeeded(sender=Action, actions=[sync])
    assert sent == [(policy_on.pk, [sync.person_id], [sync.cause_event_id])]


def test_leavers_held_for_approval_wait_even_when_nobody_could_approve_yet(
    peer: Peer, app: Integration, scim: ScimClient, groups_in_app: dict[str, TargetGroup], policy_on: LifecyclePolicy
) -> None:
    """A person asking is told at once; automation is not refused: the leavers' deprovisions
    wait for an approver rather than being lost."""
    app.mass_change_max_accounts = 1
    app.save()
    people = [push_user(scim, f"p{i}@example.com") for i in range(3)]
    policy_consume(policy_on.pk)
    run_queued(app)
    Person.objects.filter(username="root-admin").update(is_active=False)  # no approver left
    for person in people:
        set_active(scim, person, False)
    policy_consume(policy_on.pk)
    held = Action.objects.filter(integration=app, action_type=ActionType.DEPROVISION_IDENTITY)
    assert held.count() == 3
    assert {a.state for a in held} == {ActionState.PENDING_APPROVAL}


def test_the_consumer_waits_for_an_event_whose_id_came_before_it_committed(
    app: Integration, scim: ScimClient, groups_in_app: dict[str, TargetGroup], policy_on: LifecyclePolicy
) -> None:
    """Ids are handed out before commit: event 2 can be readable while event 1 is not yet."""

    from console.accounts.models import IdentityEvent

    push_user(scim, "zed@example.com")
    LifecyclePolicy.objects.filter(pk=policy_on.pk).update(event_cursor=IdentityEvent.objects.get().pk)  # a review's
    push_user(scim, "ada@example.com")
    push_user(scim, "bob@example.com")
    first, _ = IdentityEvent.objects.filter(person__username__in=["ada@example.com", "bob@example.com"]).order_by("pk")
    held_back = IdentityEvent.objects.get(pk=first.pk)
    held_back.delete()  # as if its transaction had not committed yet

    assert policy_consume(policy_on.pk) == 0  # a gap younger than the margin: wait
    policy_on.refresh_from_db()
    assert policy_on.event_cursor == first.pk - 1

    held_back.pk = first.pk  # (delete() forgot it)
    held_back.save(force_insert=True)  # it commits
    assert policy_consume(policy_on.pk) == 2
    assert set(Action.objects.values_list("subject", flat=True)) == {"ada@example.com", "bob@example.com"}


def test_a_gap_older_than_the_margin_is_an_id_never_committed(
    app: Integration, scim: ScimClient, groups_in_app: dict[str, TargetGroup], policy_on: LifecyclePolicy
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from console.accounts.models import IdentityEvent

    push_user(scim, "zed@example.com")
    LifecyclePolicy.objects.filter(pk=policy_on.pk).update(event_cursor=IdentityEvent.objects.get().pk)  # a review's
    push_user(scim, "ada@example.com")
    push_user(scim, "bob@example.com")
    first, second = IdentityEvent.objects.filter(person__username__in=["ada@example.com", "bob@example.com"]).order_by(
        "pk"
    )
    first.delete()  # rolled back
    IdentityEvent.objects.filter(pk=second.pk).update(occurred_at=timezone.now() - timedelta(seconds=30))
    assert policy_consume(policy_on.pk) == 1
    assert list(Action.objects.values_list("subject", flat=True)) == ["bob@example.com"]


def test_a_pass_reads_its_joiners_once_and_asks_for_them_in_order(
    app: Integration, scim: ScimClient, policy_on: LifecyclePolicy
) -> None:
    """The people the picture read are those the syncs are asked for: not read again, and the
    batch's actions in the order of their user names, as before."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for name in ("cy", "ada", "bo"):
        push_user(scim, f"{name}@example.com")
    table = Person._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        assert policy_consume(policy_on.pk) == 3
    whole = [q["sql"] for q in queries.captured_queries if f'"{table}"."password"' in q["sql"]]  # rows read whole
    assert len(whole) == 1, whole
    syncs = Action.objects.filter(integration=app, action_type=ActionType.SYNC_IDENTITIES).order_by("pk")
    assert [a.subject for a in syncs] == ["ada@example.com", "bo@example.com", "cy@example.com"]
