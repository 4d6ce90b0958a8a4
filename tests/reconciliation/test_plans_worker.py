"""A plan applied through the API, carried out by a real Celery worker against the real SCIM
server: exactly the ticked items' requests reach the application.

The drift is the real computation's, made by the worker after the extraction: a simulating
policy over team Eng (ada, carol) whose mapping grants Engineering, so carol lacks a
membership, and bob, who left, still has an active account."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from console.accounts.models import Person, Team, TeamMembership
from lifecycle.models import BirthrightMapping, LifecyclePolicy, PolicyMode
from provisioning.models import Action, ActionState, ScimCall
from reconciliation.models import DriftCategory, DriftItem, DriftRun, PlanItem
from tests.conftest import WorkerProcess
from tests.reconciliation.conftest import World, make_drift

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_two_ticked_items_send_exactly_their_requests(
    world: World, make_person: Callable[..., Person], start_worker: Callable[..., WorkerProcess]
) -> None:
    make_person("second-approver", roles=["admin"])
    client = Client()
    client.force_login(make_person("approver", roles=["admin"]))
    eng = Team.objects.create(name="Eng")
    TeamMembership.objects.bulk_create([TeamMembership(team=eng, person=world.people[n]) for n in ("ada", "carol")])
    policy = LifecyclePolicy.objects.create(integration=world.app, mode=PolicyMode.SIMULATE)
    policy.teams.add(eng)
    BirthrightMapping.objects.create(integration=world.app, team=eng).groups.add(world.engineering)
    DriftItem.objects.all().delete()  # only what the computation finds
    worker = start_worker("plans-worker", concurrency=1)
    deadline = time.monotonic() + 30  # the computation the extraction queued
    while not DriftRun.objects.filter(trigger=DriftRun.Trigger.EXTRACTION, finished_at__isnull=False).exists():
        assert time.monotonic() < deadline, worker.output()
        time.sleep(0.25)
    base = f"/api/v1/integrations/{world.app.pk}/plans/"
    plan = client.post(base, {}, content_type="application/json").json()
    ids = {(i["category"], i["subject"]): i["id"] for i in plan["results"]}
    ticked = [ids[("should_be_inactive", "bob")], ids[("missing_membership", "carol: add to Engineering")]]
    assert len(plan["results"]) > len(ticked)
    applied = client.post(f"{base}{plan['id']}/apply/", {"items": ticked}, content_type="application/json")
    assert applied.status_code == 201, applied.content
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if set(Action.objects.values_list("state", flat=True)) == {ActionState.SUCCEEDED}:
            break
        time.sleep(0.25)
    else:
        states = list(Action.objects.values_list("subject", "state", "last_error"))
        raise AssertionError(f"the actions did not succeed: {states}\n{worker.output()}")
    assert Action.objects.count() == 2
    assert world.server_user("bob")["active"] is False  # type: ignore[index]
    assert world.server_members() == {"ada", "carol"}
    assert world.server_user("erin") is None
    assert world.server_user("eve").get("active") is False  # type: ignore[union-attr]
    assert world.server_user("dan").get("active") is not False  # type: ignore[union-attr]
    # Every write the workers sent is one the ticked items' plans showed, and nothing else.
    prefix = world.app.base_url.rstrip("/") + "/"
    sent = sorted((c.method, c.url.removeprefix(prefix)) for c in ScimCall.objects.exclude(method="GET").order_by("id"))
    planned = sorted(
        (r["method"], r["path"])
        for item in PlanItem.objects.filter(pk__in=ticked)
        for r in item.requests
        if r["method"] not in ("GET", "—")
    )
    assert sent == planned
    assert {c.action_id for c in ScimCall.objects.all()} == set(
        PlanItem.objects.filter(pk__in=ticked).values_list("action_id", flat=True)
    )


def test_a_large_plan_is_made_by_the_worker_while_the_api_answers_at_once(
    world: World, make_person: Callable[..., Person], start_worker: Callable[..., WorkerProcess], settings: Any
) -> None:
    settings.PLAN_BACKGROUND_AFTER = 2  # this process decides; the worker only makes the items
    client = Client()
    client.force_login(make_person("approver", roles=["admin"]))
    worker = start_worker("plans-background-worker", concurrency=1)
    deadline = time.monotonic() + 30  # the computation the extraction queued, which replaces the drift
    while not DriftRun.objects.filter(trigger=DriftRun.Trigger.EXTRACTION, finished_at__isnull=False).exists():
        assert time.monotonic() < deadline, worker.output()
        time.sleep(0.25)
    DriftItem.objects.all().delete()
    make_drift(world.app, DriftCategory.MISSING, person=world.people["erin"])
    make_drift(world.app, DriftCategory.SHOULD_BE_INACTIVE, account=world.accounts["bob"], person=world.people["bob"])
    make_drift(world.app, DriftCategory.MISSING_MEMBERSHIP, account=world.accounts["carol"], group=world.engineering)

    answer = client.post(f"/api/v1/integrations/{world.app.pk}/plans/", {}, content_type="application/json")

    assert answer.status_code == 202, answer.content
    url = answer["Location"]
    assert answer.json()["state"] == "making"
    deadline = time.monotonic() + 30
    while (detail := client.get(url).json())["state"] == "making":
        assert time.monotonic() < deadline, worker.output()
        time.sleep(0.25)
    assert detail["state"] == "ready", detail
    assert detail["count"] == 3
    assert detail["planned"] == detail["expected"] == 3
    assert sorted(i["subject"] for i in detail["results"]) == ["bob", "carol: add to Engineering", "erin"]
    assert all(i["requests"] for i in detail["results"])
    page = client.get(f"/integrations/{world.app.pk}/plans/{detail['id']}/").content.decode()
    assert 'id="plan-apply"' in page
