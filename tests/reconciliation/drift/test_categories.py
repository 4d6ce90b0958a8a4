"""Each drift category, decided by the lifecycle engine's rules, from what the console stores."""

from __future__ import annotations

from collections.abc import Callable

from console.accounts.models import Person
from integrations.models import CorrelationConflict, Integration
from lifecycle.models import BirthrightMapping, Grant, LeavingScope, PolicyMode, SensitiveGroup
from provisioning.models import AccessRequest, Action, ActionState, ActionType
from reconciliation.drift import drift_compute
from reconciliation.models import DriftCategory, DriftItem, DriftRun
from tests.reconciliation.drift.conftest import account, group, policy, team

Make = Callable[..., Person]


def _items(app: Integration) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for item in DriftItem.objects.filter(integration=app):
        found.setdefault(item.category, set()).add(item.key)
    return found


def _one(app: Integration, category: str) -> DriftItem:
    return DriftItem.objects.get(integration=app, category=category)


def test_an_account_nobody_owns_is_an_orphan_with_or_without_a_policy(app: Integration, person: Make) -> None:
    ada = person("ada")
    account(app, "ada", owner=ada)
    ghost = account(app, "ghost")
    gone = account(app, "gone")
    gone.removed_at = gone.last_seen_at
    gone.save()
    run = drift_compute(app)
    assert run.status == DriftRun.Status.SUCCEEDED
    assert _items(app) == {DriftCategory.ORPHAN: {f"account:{ghost.pk}"}}
    item = _one(app, DriftCategory.ORPHAN)
    assert item.target_user_id == ghost.pk
    assert item.person_id is None
    assert "No person owns this account" in item.rule
    assert item.detail == {"user_name": "ghost", "active": True}
    assert run.counts == {**dict.fromkeys(DriftCategory.values, 0), "orphan": 1}


def test_an_active_account_of_someone_who_left_should_be_inactive_without_a_policy(
    app: Integration, person: Make
) -> None:
    ada = person("ada", active=False)
    bob = person("bob", active=False)
    kept = account(app, "ada", owner=ada)
    account(app, "bob", owner=bob, active=False)  # deprovisioned already: no drift
    drift_compute(app)
    item = _one(app, DriftCategory.SHOULD_BE_INACTIVE)
    assert item.key == f"account:{kept.pk}"
    assert item.person_id == ada.pk
    assert item.rule.startswith("Leaver: ada was deactivated; an account of someone who left")
    assert item.detail["reason"] == "owner_left"
    assert _items(app) == {DriftCategory.SHOULD_BE_INACTIVE: {item.key}}


def test_what_an_action_in_flight_will_do_is_left_out(app: Integration, person: Make) -> None:
    ada = person("ada", active=False)
    kept = account(app, "ada", owner=ada)
    Action.objects.create(
        integration=app,
        action_type=ActionType.DEPROVISION_IDENTITY,
        state=ActionState.QUEUED,
        target_user=kept,
        subject="ada",
    )
    run = drift_compute(app)
    assert not _items(app)
    assert run.left_out == {"in_flight": 1}


def test_policy_categories_need_a_policy_that_is_not_off(app: Integration, person: Make) -> None:
    person("ada")  # in scope, no account
    bob = person("bob")
    account(app, "bob", owner=bob, active=False)
    off = policy(app, PolicyMode.OFF)
    drift_compute(app)
    assert not _items(app)
    off.mode = PolicyMode.SIMULATE
    off.save()
    drift_compute(app)
    assert set(_items(app)) == {DriftCategory.MISSING, DriftCategory.SHOULD_BE_ACTIVE}


def test_someone_in_scope_without_an_account_is_missing(app: Integration, person: Make) -> None:
    ada = person("ada")
    bob = person("bob")
    person("carol", active=False)  # not in scope: not missing
    policy(app)
    Action.objects.create(
        integration=app, action_type=ActionType.SYNC_IDENTITIES, state=ActionState.RUNNING, person=bob, subject="bob"
    )
    run = drift_compute(app)
    assert _items(app) == {DriftCategory.MISSING: {f"person:{ada.pk}"}}
    item = _one(app, DriftCategory.MISSING)
    assert item.person_id == ada.pk
    assert item.target_user_id is None
    assert item.rule == "Lifecycle policy of Wiki: ada is in scope (every active person) and has no account"
    assert run.left_out == {"in_flight": 1}


def test_an_inactive_account_of_someone_active_in_scope_should_be_active(app: Integration, person: Make) -> None:
    ada = person("ada")
    user = account(app, "ada", owner=ada, active=False)
    policy(app)
    drift_compute(app)
    assert _items(app) == {DriftCategory.SHOULD_BE_ACTIVE: {f"account:{user.pk}"}}


def test_leaving_scope_follows_the_policy_and_spares_manual_links(app: Integration, person: Make) -> None:
    ada, bob, carol, dan = (person(name) for name in ("ada", "bob", "carol", "dan"))
    sales = team("Sales")
    rule = policy(app, all_active_people=False)
    rule.teams.set([sales])
    users = {
        "ada": account(app, "ada", owner=ada),
        "bob": account(app, "bob", owner=bob, source="manual"),
        "carol": account(app, "carol", owner=carol),
        "dan": account(app, "dan", owner=dan),
    }
    for covered in (ada, bob, carol):  # the policy synced their accounts once
        Action.objects.create(
            integration=app,
            action_type=ActionType.SYNC_IDENTITIES,
            state=ActionState.SUCCEEDED,
            person=covered,
            subject=covered.username,
            cause={"text": "Joiner", "policy": rule.pk},
        )
    team("Other", carol)
    drift_compute(app)
    # ada left scope: deprovisioned. bob: linked by hand. dan: never covered by the policy.
    assert _items(app) == {
        DriftCategory.SHOULD_BE_INACTIVE: {f"account:{users['ada'].pk}", f"account:{users['carol'].pk}"}
    }
    item = DriftItem.objects.get(key=f"account:{users['ada'].pk}")
    assert item.rule.startswith("Out of scope: ada is no longer covered by the lifecycle policy of Wiki")
    assert "active members of Sales" in item.rule
    assert item.detail["reason"] == "out_of_scope"

    rule.on_leaving_scope = LeavingScope.REMOVE_GROUPS
    rule.save()
    drift_compute(app)
    assert not _items(app)


def test_an_attribute_the_transformers_set_differently_is_attribute_drift(app: Integration, person: Make) -> None:
    ada = person("ada", title="Engineer")
    bob = person("bob", title="Writer")
    user = account(app, "ada", owner=ada)
    user.resource = {**user.resource, "title": "Boss", "name": {**user.resource["name"], "givenName": "Adele"}}
    user.save()
    account(app, "bob", owner=bob)
    policy(app)
    drift_compute(app)
    item = _one(app, DriftCategory.ATTRIBUTE)
    assert item.key == f"account:{user.pk}"
    assert item.detail["attributes"] == [
        {"path": "name.givenName", "application": "Adele", "wanted": "Ada"},
        {"path": "title", "application": "Boss", "wanted": "Engineer"},
    ]
    assert "differs in name.givenName, title" in item.rule
    assert _items(app) == {DriftCategory.ATTRIBUTE: {item.key}}


def test_memberships_in_managed_groups_missing_and_unexplained(app: Integration, person: Make) -> None:
    ada, bob, carol = person("ada"), person("bob"), person("carol")
    users = {p.username: account(app, p.username, owner=p) for p in (ada, bob, carol)}
    ghost = account(app, "ghost")
    engineering = group(app, "Engineering", users["bob"], users["carol"], ghost)
    vault = group(app, "Vault", users["ada"])
    group(app, "Lunch", users["ada"], users["bob"])  # no mapping names it, not sensitive: not managed
    SensitiveGroup.objects.create(group=vault)
    policy(app)
    mapping = BirthrightMapping.objects.create(integration=app, team=team("Eng team", ada, bob))
    mapping.groups.set([engineering])
    access = AccessRequest.objects.create(
        integration=app,
        target_user=users["carol"],
        target_group=engineering,
        operation="add",
        justification="on call",
        state=AccessRequest.State.APPROVED,
    )
    drift_compute(app)
    found = _items(app)
    assert found[DriftCategory.MISSING_MEMBERSHIP] == {f"membership:{engineering.pk}:id-ada"}
    assert found[DriftCategory.UNEXPLAINED_MEMBERSHIP] == {
        f"membership:{engineering.pk}:id-ghost",
        f"membership:{vault.pk}:id-ada",
    }
    missing = _one(app, DriftCategory.MISSING_MEMBERSHIP)
    assert missing.group_id == engineering.pk
    assert missing.person_id == ada.pk
    assert missing.target_user_id == users["ada"].pk
    assert missing.rule == f"Birthright: mapping {mapping.pk}: team Eng team → Engineering"
    vaulted = DriftItem.objects.get(key=f"membership:{vault.pk}:id-ada")
    assert "Vault is marked sensitive" in vaulted.rule

    # The access request ends: carol's membership is unexplained now.
    access.state = AccessRequest.State.ENDED
    access.save()
    drift_compute(app)
    assert f"membership:{engineering.pk}:id-carol" in _items(app)[DriftCategory.UNEXPLAINED_MEMBERSHIP]


def test_a_membership_whose_mapping_no_longer_grants_it_says_so(app: Integration, person: Make) -> None:
    ada = person("ada")
    user = account(app, "ada", owner=ada)
    engineering = group(app, "Engineering", user)
    mapping = BirthrightMapping.objects.create(integration=app, team=team("Eng team"))
    mapping.groups.set([engineering])
    Grant.objects.create(person=ada, group=engineering, mapping_ids=[mapping.pk])
    policy(app)
    drift_compute(app)
    item = _one(app, DriftCategory.UNEXPLAINED_MEMBERSHIP)
    assert item.rule == f"Granted by mapping {mapping.pk}: team Eng team, which no longer grants Engineering to ada"


def test_correlation_conflicts_are_counted_not_reported(app: Integration, person: Make) -> None:
    ada, bob = person("ada"), person("bob")
    torn = account(app, "a.b")  # both match it: no owner until an admin chooses
    for candidate in (ada, bob):
        CorrelationConflict.objects.create(integration=app, target_user=torn, person=candidate, rule="email")
    carol = person("carol")
    account(app, "carol", owner=carol, source="manual")
    account(app, "carol2", owner=carol, source="action", active=False)  # two accounts: left alone
    policy(app)
    run = drift_compute(app)
    assert not _items(app)
    assert run.left_out == {"accounts_in_conflict": 3, "people_in_conflict": 3}
