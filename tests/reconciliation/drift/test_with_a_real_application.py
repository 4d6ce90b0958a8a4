"""Drift against the real SCIM server: what is done in the application itself behind the
console's back is reported by the drift computation that follows the next extraction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from console.accounts.models import Person, Team
from integrations.models import ExtractionRun, Integration, TargetGroup, TargetUser
from lifecycle.consumer import policy_consume
from lifecycle.engine import wanted_apply, wanted_for
from lifecycle.models import LifecyclePolicy
from provisioning.models import Action, ActionState, ActionType
from reconciliation.models import DriftCategory, DriftItem, DriftRun
from tests.lifecycle.conftest import (  # noqa: F401 - fixtures
    app,
    extract,
    groups_in_app,
    map_team,
    patch_op,
    policy_on,
    provisioner,
    push_group,
    push_user,
    scim,
    scim_enabled,
    set_active,
)
from tests.provisioning.conftest import run_queued, server_user
from tests.scim.conftest import ScimClient
from tests.scim_peer import Peer


def _settle(policy: LifecyclePolicy, app: Integration) -> None:  # noqa: F811
    """A consumer pass, its actions run, the joiners' groups added, as the workers do."""
    policy_consume(policy.pk)
    syncs = run_queued(app)
    people = [a.person_id for a in syncs if a.action_type == ActionType.SYNC_IDENTITIES and a.person_id]
    wanted_apply(policy, wanted_for(policy, people, accounts=False))
    run_queued(app)


def _by_category(app: Integration) -> dict[str, set[str]]:  # noqa: F811
    found: dict[str, set[str]] = {}
    for item in DriftItem.objects.filter(integration=app).select_related("target_user"):
        found.setdefault(item.category, set()).add(item.target_user.user_name if item.target_user else item.key)
    return found


def test_changes_made_in_the_application_are_reported_after_the_next_extraction(
    peer: Peer,
    app: Integration,  # noqa: F811
    scim: ScimClient,  # noqa: F811
    groups_in_app: dict[str, TargetGroup],  # noqa: F811
    policy_on: LifecyclePolicy,  # noqa: F811
    extract: Callable[[], None],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from reconciliation.tasks import drift_compute_task

    # The worker's task, run where the extraction's commit sends it.
    monkeypatch.setattr(drift_compute_task, "delay", lambda **kwargs: drift_compute_task(**kwargs))

    def extract_and_compute() -> DriftRun:
        with django_capture_on_commit_callbacks(execute=True):
            extract()
        run = DriftRun.objects.filter(integration=app).latest("pk")
        assert run.extraction_run == ExtractionRun.objects.filter(integration=app).latest("pk")
        assert run.trigger == DriftRun.Trigger.EXTRACTION
        assert run.status == DriftRun.Status.SUCCEEDED, run.error
        return run

    ada = push_user(scim, "ada@example.com", title="Engineer")
    bob = push_user(scim, "bob@example.com")
    carol = push_user(scim, "carol@example.com")
    push_group(scim, "Eng team", [ada])
    push_group(scim, "Staff", [ada, bob, carol])
    policy_on.all_active_people = False  # the staff: not the console's own admins
    policy_on.save()
    policy_on.teams.set([Team.objects.get(name="Staff")])
    map_team(app, "Eng team", groups_in_app["Engineering"])
    _settle(policy_on, app)
    # Carol leaves and is deprovisioned.
    set_active(scim, carol, False)
    _settle(policy_on, app)
    assert server_user(peer, "carol@example.com")["active"] is False  # type: ignore[index]

    # The console made the application what its policy wants: no drift.
    run = extract_and_compute()
    assert _by_category(app) == {}, DriftItem.objects.filter(integration=app).values_list("category", "rule")
    assert run.counts == dict.fromkeys(DriftCategory.values, 0)

    # Behind the console's back, in the application itself:
    peer.user("intruder@example.com")  # an account nobody owns
    bob_account = server_user(peer, "bob@example.com")
    engineering = peer.http.get("/Groups", params={"filter": 'displayName eq "Engineering"'}).json()["Resources"][0]
    response = peer.http.patch(  # a member the mapping does not grant
        f"/Groups/{engineering['id']}",
        json=patch_op({"op": "add", "path": "members", "value": [{"value": bob_account["id"]}]}),  # type: ignore[index]
    )
    assert response.status_code in (200, 204), response.text
    carol_account = server_user(peer, "carol@example.com")
    for user, path, value in ((carol_account, "active", True), (server_user(peer, "ada@example.com"), "title", "Boss")):
        response = peer.http.patch(
            f"/Users/{user['id']}",  # type: ignore[index]
            json=patch_op({"op": "replace", "path": path, "value": value}),
        )
        assert response.status_code in (200, 204), response.text

    run = extract_and_compute()
    assert _by_category(app) == {
        DriftCategory.ORPHAN: {"intruder@example.com"},
        DriftCategory.UNEXPLAINED_MEMBERSHIP: {"bob@example.com"},
        DriftCategory.SHOULD_BE_INACTIVE: {"carol@example.com"},
        DriftCategory.ATTRIBUTE: {"ada@example.com"},
    }
    assert run.counts == {
        **dict.fromkeys(DriftCategory.values, 0),
        "orphan": 1,
        "unexplained_membership": 1,
        "should_be_inactive": 1,
        "attribute": 1,
    }
    title = DriftItem.objects.get(integration=app, category=DriftCategory.ATTRIBUTE)
    assert title.person == Person.objects.get(username="ada@example.com")
    assert title.detail["attributes"] == [{"path": "title", "application": "Boss", "wanted": "Engineer"}]
    member = DriftItem.objects.get(integration=app, category=DriftCategory.UNEXPLAINED_MEMBERSHIP)
    assert member.group == groups_in_app["Engineering"]
    assert member.target_user == TargetUser.objects.get(integration=app, user_name="bob@example.com")
    leaver = DriftItem.objects.get(integration=app, category=DriftCategory.SHOULD_BE_INACTIVE)
    assert leaver.rule.startswith("Leaver: carol@example.com was deactivated")


def test_a_helpdesk_reactivation_is_deactivated_again_by_auto_remediation(
    peer: Peer,
    app: Integration,  # noqa: F811
    scim: ScimClient,  # noqa: F811
    groups_in_app: dict[str, TargetGroup],  # noqa: F811
    policy_on: LifecyclePolicy,  # noqa: F811
    extract: Callable[[], None],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
    make_person: Callable[..., Person],
) -> None:
    """The whole chain: extraction → drift → auto-remediation's plan → the action → the application."""
    from reconciliation.auto import auto_remediation_set
    from reconciliation.models import Plan
    from reconciliation.tasks import drift_compute_task

    monkeypatch.setattr(drift_compute_task, "delay", lambda **kwargs: drift_compute_task(**kwargs))
    app.mass_change_max_percent = 100  # two accounts: one deprovision is half of them
    app.save()
    carol = push_user(scim, "carol@example.com")
    dave = push_user(scim, "dave@example.com", title="Engineer")
    push_group(scim, "Staff", [carol, dave])
    policy_on.all_active_people = False
    policy_on.save()
    policy_on.teams.set([Team.objects.get(name="Staff")])
    _settle(policy_on, app)
    set_active(scim, carol, False)
    _settle(policy_on, app)
    auto_remediation_set(
        actor=make_person("chief", roles=["admin"]), policy=policy_on, categories=["should_be_inactive"]
    )
    carol_account = server_user(peer, "carol@example.com")
    assert carol_account["active"] is False  # type: ignore[index]
    # The helpdesk turns carol's account back on in the application, and a title drifts too.
    for path, value in (("active", True), ("title", "Helpdesk's guess")):
        response = peer.http.patch(
            f"/Users/{carol_account['id']}",  # type: ignore[index]
            json=patch_op({"op": "replace", "path": path, "value": value}),
        )
        assert response.status_code in (200, 204), response.text
    dave_account = server_user(peer, "dave@example.com")
    response = peer.http.patch(
        f"/Users/{dave_account['id']}",  # type: ignore[index]
        json=patch_op({"op": "replace", "path": "title", "value": "Not what the console sends"}),
    )
    assert response.status_code in (200, 204), response.text

    with django_capture_on_commit_callbacks(execute=True):
        extract()
    assert set(_by_category(app)) == {DriftCategory.SHOULD_BE_INACTIVE, DriftCategory.ATTRIBUTE}
    plan = Plan.objects.get(integration=app)
    assert plan.automatic
    assert plan.created_by is None
    (deprovision,) = Action.objects.filter(integration=app, state=ActionState.QUEUED)
    assert deprovision.action_type == ActionType.DEPROVISION_IDENTITY
    assert deprovision.target_user.user_name == "carol@example.com"  # type: ignore[union-attr]
    assert deprovision.cause["text"].startswith(f"Plan {plan.pk}, ")
    run_queued(app)
    assert server_user(peer, "carol@example.com")["active"] is False  # type: ignore[index]
    # Attribute drift was not opted in: reported, not fixed.
    assert server_user(peer, "dave@example.com")["title"] == "Not what the console sends"  # type: ignore[index]
    with django_capture_on_commit_callbacks(execute=True):
        extract()
    assert _by_category(app) == {DriftCategory.ATTRIBUTE: {"dave@example.com"}}
