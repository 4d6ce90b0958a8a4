"""Each drift category, decided by the lifecycle engine's rules, from what the console stores."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from console.accounts.models import Person
from integrations.models import CorrelationConflict, ExtensionAttribute, Integration
from lifecycle.models import BirthrightMapping, Grant, LeavingScope, PolicyMode, SensitiveGroup
from provisioning.action_types.sync_identity import changed_operations
from provisioning.models import AccessRequest, Action, ActionState, ActionType, AttributeTransformer
from reconciliation.drift import _as_wanted, drift_compute
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


def test_attribute_drift_compares_what_the_transformers_set_however_the_resource_holds_it(
    app: Integration, person: Make
) -> None:
    """The resources as stored (on PostgreSQL read as text and decoded by the computation): a
    ``null`` is a ``null``, an absent attribute absent, an extension compared part by part, and
    what the transformers do not set is never drift."""
    acme = "urn:acme:params:scim:schemas:extension:acme:1.0:User"
    ExtensionAttribute.objects.create(
        integration=app, normalized_name="acme_costcenter", scim_path=f"{acme}:costCenter", schema_urn=acme
    )
    AttributeTransformer.objects.create(
        integration=app, position=1, attribute_name="acme_costcenter", source="identity_attribute", value="cost_center"
    )
    AttributeTransformer.objects.create(
        integration=app, position=2, attribute_name="middle_name", source="static", value="Q"
    )
    ada = person("ada", title="Engineer", cost_center="CC-1")
    bob = person("bob", title="Writer", cost_center="CC-2")
    carol = person("carol", cost_center="CC-3")
    users = {p.username: account(app, p.username, owner=p) for p in (ada, bob, carol)}
    users["ada"].resource = {**users["ada"].resource, "title": None, "userName": None, "nickName": "x"}
    users["ada"].save()
    users["bob"].resource = {
        **users["bob"].resource,
        acme: {"costCenter": "CC-9", "other": 1},
        "groups": [{"value": "g1"}],
    }
    users["bob"].save()
    carol_resource = dict(users["carol"].resource)
    del carol_resource["userName"]
    users["carol"].resource = carol_resource
    users["carol"].save()
    policy(app)
    drift_compute(app)
    found = {item.target_user_id: item.detail["attributes"] for item in DriftItem.objects.filter(integration=app)}
    assert found == {
        users["ada"].pk: [
            {"path": "userName", "application": None, "wanted": "ada"},
            {"path": "title", "application": None, "wanted": "Engineer"},
        ],
        users["bob"].pk: [{"path": f"{acme}:costCenter", "application": "CC-9", "wanted": "CC-2"}],
        users["carol"].pk: [{"path": "userName", "application": None, "wanted": "carol"}],
    }


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


def test_the_shortcut_for_an_account_as_wanted_agrees_with_the_syncs_comparison() -> None:
    """``_as_wanted`` says an account agrees only where the sync would change nothing."""
    wanted: dict[str, Any] = {
        "userName": "ada",
        "active": True,
        "name": {"givenName": "Ada", "familyName": "Example"},
        "emails": [{"value": "ada@example.com", "type": "work", "primary": True}],
        "urn:acme:User": {"costCenter": "CC-1"},
    }
    resources = [
        dict(wanted),
        {**wanted, "id": "x", "meta": {"version": "1"}, "nickName": "a"},
        {**wanted, "userName": "ADA"},
        {**wanted, "name": {**wanted["name"], "middleName": "Q"}},
        {**wanted, "emails": [{"value": "ADA@example.com", "type": "work", "primary": True}]},
        {**wanted, "urn:acme:User": {"costCenter": "CC-1", "badge": 3}},
        {**wanted, "active": 1},
        {**wanted, "title": None},
        {key: value for key, value in wanted.items() if key != "name"},
        {**wanted, "name": None},
        {**wanted, "urn:acme:User": {"costCenter": "CC-2"}},
    ]
    for resource in resources:
        if _as_wanted(resource, wanted):
            assert changed_operations(resource, wanted) == [], resource
    assert _as_wanted(resources[0], wanted)
    assert _as_wanted(resources[1], wanted)
    assert not _as_wanted(resources[2], wanted)  # the sync's comparison decides (no change: case)
    assert not _as_wanted({"userName": 1}, {"userName": 1})  # not a string: left to the sync's comparison
    assert not _as_wanted({"emails": [{"value": 1}]}, {"emails": [{"value": 1}]})
