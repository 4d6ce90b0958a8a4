"""Auto-remediation: opted in per category in the lifecycle policy, applied by the system after
each drift computation while the policy is on; orphans never."""

from __future__ import annotations

import re
from collections.abc import Callable

from django.test import Client

from console.accounts.models import Person
from console.audit.models import AuditEvent
from lifecycle.models import LifecyclePolicy, PolicyMode
from provisioning.models import Action
from provisioning.services import action_request
from reconciliation.auto import auto_remediation_set
from reconciliation.models import AutoRemediation, DriftRun, Plan
from reconciliation.signals import drift_computed
from tests.reconciliation.conftest import World


def _computed(world: World) -> None:
    run = DriftRun.objects.create(integration=world.app, trigger=DriftRun.Trigger.EXTRACTION)
    drift_computed.send(sender=world.app.__class__, drift_run=run)


def test_only_the_opted_in_categories_are_applied_by_the_system(world: World, admin: Person) -> None:
    policy = LifecyclePolicy.objects.create(integration=world.app, mode=PolicyMode.ON, all_active_people=True)
    auto_remediation_set(actor=admin, policy=policy, categories=["should_be_inactive", "missing_membership"])
    _computed(world)
    plan = Plan.objects.get()
    assert plan.automatic
    assert plan.created_by is None
    assert sorted(plan.categories) == ["missing_membership", "should_be_inactive"]
    actions = Action.objects.order_by("action_type")
    assert [(a.action_type, a.subject) for a in actions] == [
        ("DEPROVISION_IDENTITY", "bob"),
        ("MANAGE_RELATIONSHIPS", "Engineering (+1)"),
    ]
    assert all(a.requested_by is None and a.batch is not None for a in actions)
    assert all(a.cause["text"].startswith(f"Plan {plan.pk}, ") for a in actions)
    applied = AuditEvent.objects.get(verb="plan.applied", target_id=str(plan.pk))
    assert applied.actor is None
    assert applied.details["by"] == "the system"


def test_nothing_is_applied_while_the_policy_is_not_on_or_nothing_is_opted_in(world: World, admin: Person) -> None:
    policy = LifecyclePolicy.objects.create(integration=world.app, mode=PolicyMode.SIMULATE, all_active_people=True)
    auto_remediation_set(actor=admin, policy=policy, categories=["should_be_inactive"])
    _computed(world)
    policy.mode = PolicyMode.ON
    policy.save()
    auto_remediation_set(actor=admin, policy=policy, categories=[])
    _computed(world)
    assert not Plan.objects.exists()
    assert not Action.objects.exists()


def test_auto_remediation_goes_through_the_mass_change_limit(world: World, admin: Person) -> None:
    world.app.mass_change_max_accounts = 0
    world.app.save()
    policy = LifecyclePolicy.objects.create(integration=world.app, mode=PolicyMode.ON, all_active_people=True)
    auto_remediation_set(actor=admin, policy=policy, categories=["should_be_inactive"])
    _computed(world)
    (action,) = Action.objects.all()
    assert action.state == "pending_approval"
    assert action.batch is not None
    assert "mass change" in action.batch.held_reason
    _computed(world)  # the drift is still there, its action still waits: not asked for (nor planned) again
    assert Action.objects.count() == 1
    assert Plan.objects.count() == 1


def test_the_api_shows_and_sets_it_and_refuses_orphans(
    world: World, admin_client: Client, make_person: Callable[..., Person], api_client_for: Callable[..., object]
) -> None:
    policy = LifecyclePolicy.objects.create(integration=world.app, mode=PolicyMode.ON, all_active_people=True)
    url = f"/api/v1/lifecycle-policies/{policy.pk}/auto-remediation/"
    shown = admin_client.get(url).json()
    assert shown["categories"] == []
    assert shown["active"] is False
    assert "orphan" not in shown["eligible"]
    refused = admin_client.put(url, {"categories": ["orphan"]}, content_type="application/json")
    assert refused.status_code == 400
    assert "never resolved automatically" in refused.json()["fields"]["categories"][0]
    bad = admin_client.put(url, {"categories": ["nope"]}, content_type="application/json")
    assert bad.status_code == 400
    assert "categories" in bad.json()["fields"]
    assert admin_client.put(url, {}, content_type="application/json").status_code == 400
    saved = admin_client.put(url, {"categories": ["attribute", "missing"]}, content_type="application/json").json()
    assert saved["categories"] == ["missing", "attribute"]
    assert saved["active"] is True
    assert AuditEvent.objects.filter(verb="auto_remediation.changed").count() == 1
    operator = api_client_for(make_person("op", roles=["operator"]))
    assert operator.put(url, {"categories": []}, format="json").status_code == 403  # type: ignore[attr-defined]
    assert AutoRemediation.objects.get().categories == ["missing", "attribute"]


def test_the_lifecycle_tab_shows_and_edits_it(world: World, admin_client: Client) -> None:
    page = admin_client.get(f"/integrations/{world.app.pk}/lifecycle/").content.decode()
    assert 'data-testid="auto-remediation"' in page
    assert "Save the lifecycle policy first." in page
    LifecyclePolicy.objects.create(integration=world.app, mode=PolicyMode.ON, all_active_people=True)
    saved = admin_client.post(f"/integrations/{world.app.pk}/auto-remediation/", {"category": ["should_be_active"]})
    assert saved.status_code == 302
    page = admin_client.get(f"/integrations/{world.app.pk}/lifecycle/").content.decode()
    assert "on for should be active" in page
    assert 'value="orphan"' not in page.split('data-testid="auto-remediation"')[1]
    refused = admin_client.post(f"/integrations/{world.app.pk}/auto-remediation/", {"category": ["orphan"]})
    assert refused.status_code == 302
    assert AutoRemediation.objects.get().categories == ["should_be_active"]


def test_while_the_policy_is_on_saving_asks_the_consoles_one_confirmation(world: World, admin_client: Client) -> None:
    url = f"/integrations/{world.app.pk}/auto-remediation/"
    policy = LifecyclePolicy.objects.create(integration=world.app, mode=PolicyMode.SIMULATE, all_active_people=True)
    card = (
        admin_client.get(f"/integrations/{world.app.pk}/lifecycle/")
        .content.decode()
        .split('data-testid="auto-remediation"')[1]
    )
    assert "data-confirm=" not in card.split("</form>")[0]  # simulating: nothing is applied, nothing to confirm
    LifecyclePolicy.objects.filter(pk=policy.pk).update(mode=PolicyMode.ON)
    card = (
        admin_client.get(f"/integrations/{world.app.pk}/lifecycle/")
        .content.decode()
        .split('data-testid="auto-remediation"')[1]
    )
    form = card.split("</form>")[0]
    assert 'data-confirm="Saves the categories ticked' in form
    assert 'name="confirm" value="ask"' in form
    # Without the script, the form's confirm=ask answers the confirmation page and saves nothing.
    hidden = dict(re.findall(r'<input type="hidden" name="(confirm_\w+)" value="([^"]*)"', form))
    asked = admin_client.post(url, {"category": ["should_be_active"], "confirm": "ask", **hidden})
    assert asked.status_code == 200
    assert 'data-testid="confirm-text">Saves the categories ticked' in asked.content.decode()
    assert not AutoRemediation.objects.exists()
    done = admin_client.post(url, {"category": ["should_be_active"], "confirm": "done", "reason": "fix re-hires"})
    assert done.status_code == 302
    assert AutoRemediation.objects.get().categories == ["should_be_active"]
    assert AuditEvent.objects.filter(details__reason="fix re-hires").exists()


def test_drift_an_action_in_flight_already_resolves_is_not_asked_for_again(world: World, admin: Person) -> None:
    policy = LifecyclePolicy.objects.create(integration=world.app, mode=PolicyMode.ON, all_active_people=True)
    auto_remediation_set(actor=admin, policy=policy, categories=["should_be_inactive", "missing"])
    leaver = action_request(  # lifecycle automation's deprovision of bob, waiting for approval
        actor=None,
        integration=world.app,
        action_type="DEPROVISION_IDENTITY",
        target_user=world.accounts["bob"],
        hold="held for the test",
    )
    _computed(world)
    assert list(Action.objects.exclude(pk=leaver.pk).values_list("action_type", "subject")) == [
        ("SYNC_IDENTITIES", "erin")
    ]


def test_drift_nothing_could_be_requested_for_leaves_no_plan_behind(world: World, admin: Person) -> None:
    policy = LifecyclePolicy.objects.create(integration=world.app, mode=PolicyMode.ON, all_active_people=True)
    auto_remediation_set(actor=admin, policy=policy, categories=["missing"])
    world.app.provisioning_enabled = False  # every action would be refused
    world.app.save()
    _computed(world)
    _computed(world)
    assert not Plan.objects.exists()
    assert not Action.objects.exists()
