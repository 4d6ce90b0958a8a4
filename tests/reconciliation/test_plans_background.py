"""A plan of more drift items than PLAN_BACKGROUND_AFTER is made by a worker: the request answers
at once with the plan "being made", the page says how far it is, and a failure says why."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from console.accounts.models import Person
from console.audit.models import AuditEvent
from reconciliation import plans
from reconciliation.models import Plan, PlanItem
from reconciliation.plans import plan_apply, plan_build, plan_create
from tests.reconciliation.conftest import World


@pytest.fixture
def approver(make_person: Callable[..., Person]) -> Person:
    return make_person("approver", roles=["admin"])


def test_a_plan_within_the_threshold_is_made_in_the_request(world: World, approver: Person, settings: Any) -> None:
    settings.PLAN_BACKGROUND_AFTER = 7  # the world's seven drift items: not more than it

    plan = plan_create(actor=approver, integration=world.app)

    assert plan.state == Plan.State.READY
    assert plan.items.count() == plan.planned == plan.expected == 7


def test_the_api_answers_202_with_the_plans_url_and_a_worker_makes_its_items(
    world: World,
    admin_client: Client,
    approver: Person,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.PLAN_BACKGROUND_AFTER = 3
    base = f"/api/v1/integrations/{world.app.pk}/plans/"

    with django_capture_on_commit_callbacks() as queued:
        answer = admin_client.post(base, {}, content_type="application/json")

    assert answer.status_code == 202, answer.content
    body = answer.json()
    plan = Plan.objects.get(pk=body["id"])
    assert body["state"] == "making"
    assert body["expected"] == 7
    assert body["url"].endswith(f"{base}{plan.pk}/")
    assert answer["Location"] == body["url"]
    assert "Being made by a worker: 7 drift items to plan" in body["state_text"]
    assert not plan.items.exists()  # nothing planned in the request
    assert len(queued) == 1  # the worker's task, sent once the plan is committed
    assert AuditEvent.objects.filter(verb="plan.requested", target_id=str(plan.pk)).exists()
    refused = admin_client.post(f"{base}{plan.pk}/apply/", {"categories": ["missing"]}, content_type="application/json")
    assert refused.status_code == 409
    assert "being made" in refused.json()["detail"].lower()

    plan_build(plan_id=plan.pk)  # what the task does on the worker

    plan.refresh_from_db()
    assert plan.state == Plan.State.READY
    assert plan.planned == plan.expected == 7
    assert plan.requests == sum(1 for i in plan.items.all() for r in i.requests if r["method"] != "—")
    detail = admin_client.get(f"{base}{plan.pk}/").json()
    assert detail["state"] == "ready"
    assert detail["count"] == 7
    event = AuditEvent.objects.get(verb="plan.created", target_id=str(plan.pk))
    assert event.details["background"] is True
    assert event.details["items"] == 7
    plan_build(plan_id=plan.pk)  # a second delivery changes nothing
    assert plan.items.count() == 7
    (batch,) = plan_apply(actor=approver, plan=plan, categories=["should_be_inactive"])
    assert batch.action_type == "DEPROVISION_IDENTITY"


def test_the_page_says_how_far_the_making_is_and_refreshes_once_made(
    world: World, admin_client: Client, approver: Person, settings: Any
) -> None:
    settings.PLAN_BACKGROUND_AFTER = 3
    made = admin_client.post(f"/integrations/{world.app.pk}/plans/new/", {}, follow=True)
    plan = Plan.objects.get()
    assert plan.state == Plan.State.MAKING
    page = made.content.decode()
    assert f"Plan {plan.pk} is being made by a worker (7 drift items)" in page
    assert 'data-testid="plan-state"' in page
    assert "?part=state" in page
    assert 'hx-trigger="every 1s"' in page
    assert 'id="plan-apply"' not in page  # nothing to tick yet
    url = f"/integrations/{world.app.pk}/plans/{plan.pk}/"

    Plan.objects.filter(pk=plan.pk).update(planned=2)
    part = admin_client.get(url, {"part": "state"}, headers={"HX-Request": "true"})
    assert "2 of 7 drift items planned" in part.content.decode()
    assert "HX-Refresh" not in part
    assert "<h1>" not in part.content.decode()  # only the state's region

    plan_build(plan_id=plan.pk)
    done = admin_client.get(url, {"part": "state"}, headers={"HX-Request": "true"})
    assert done["HX-Refresh"] == "true"
    whole = admin_client.get(url).content.decode()
    assert 'id="plan-apply"' in whole
    assert 'data-testid="plan-state"' not in whole
    listing = admin_client.get(f"/integrations/{world.app.pk}/plans/").content.decode()
    assert "Ready" in listing


def test_a_failure_is_recorded_on_the_plan_in_words_and_keeps_no_item(
    world: World, admin_client: Client, approver: Person, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.PLAN_BACKGROUND_AFTER = 3
    monkeypatch.setattr(plans, "BUILD_CHUNK", 2)
    plan = plan_create(actor=approver, integration=world.app)
    calls = {"n": 0}
    real = plans._planned

    def planned_then_broken(*args: Any) -> PlanItem:
        calls["n"] += 1
        if calls["n"] > 3:  # the second chunk's second item: a chunk was stored already
            raise RuntimeError("the database went away")
        return real(*args)

    monkeypatch.setattr(plans, "_planned", planned_then_broken)

    plan_build(plan_id=plan.pk)

    plan.refresh_from_db()
    assert plan.state == Plan.State.FAILED
    assert plan.error == "The plan could not be made: RuntimeError: the database went away"
    assert not plan.items.exists()  # the chunk stored before the failure is gone too
    page = admin_client.get(f"/integrations/{world.app.pk}/plans/{plan.pk}/").content.decode()
    assert "The plan could not be made: RuntimeError: the database went away" in page
    assert "?part=state" not in page  # nothing more to wait for
    detail = admin_client.get(f"/api/v1/integrations/{world.app.pk}/plans/{plan.pk}/").json()
    assert detail["state"] == "failed"
    assert detail["error"] == plan.error
    assert AuditEvent.objects.filter(verb="plan.failed", target_id=str(plan.pk)).exists()


def test_a_second_delivery_leaves_a_plan_a_worker_holds_and_takes_over_one_whose_worker_was_lost(
    world: World, approver: Person, settings: Any
) -> None:
    settings.PLAN_BACKGROUND_AFTER = 3
    plan = plan_create(actor=approver, integration=world.app)
    assert plans._build_claim(plan.pk) is not None  # a worker is making it

    plan_build(plan_id=plan.pk)  # the same task delivered again, to another worker

    plan.refresh_from_db()
    assert plan.state == Plan.State.MAKING
    assert not plan.items.exists()  # nothing made twice
    assert "Being made by a worker" in plans.plan_state_words(plan)

    lost = timezone.now() - timedelta(seconds=plans.BUILD_LEASE_SECONDS + 1)
    Plan.objects.filter(pk=plan.pk).update(building_at=lost, planned=2)  # that worker stopped part-way
    plan.refresh_from_db()
    assert "no worker has worked on it since" in plans.plan_state_words(plan)

    plan_build(plan_id=plan.pk)

    plan.refresh_from_db()
    assert plan.state == Plan.State.READY
    assert plan.building_at is None
    assert plan.items.count() == plan.planned == 7
