"""Plans: the open drift as actions with their exact requests, applied item by item."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.utils import timezone

from console.accounts.models import Person
from console.audit.models import AuditEvent
from console.audit.words import target_words
from integrations.models import Integration
from provisioning.batches import batch_undo
from provisioning.execution import action_execute
from provisioning.models import Action, ActionState, Batch
from provisioning.services import action_request
from reconciliation.models import DriftCategory, DriftItem, Plan, PlanItem
from reconciliation.plans import plan_apply, plan_create
from tests.reconciliation.conftest import World, make_drift


@pytest.fixture
def approver(make_person: Callable[..., Person]) -> Person:
    make_person("second-approver", roles=["admin"])  # someone else could approve what is held
    return make_person("approver", roles=["admin"])


def _item(plan: Plan, category: str) -> PlanItem:
    return PlanItem.objects.get(plan=plan, category=category)


def _run(action: Action) -> Action:
    outcome = action_execute(action.pk)
    assert outcome.action is not None, Action.objects.filter(pk=action.pk).values("state", "next_attempt_at").first()
    return outcome.action


def test_a_plan_has_one_item_per_drift_item_with_the_requests_the_executor_would_send(
    world: World, approver: Person
) -> None:
    plan = plan_create(actor=approver, integration=world.app)
    assert plan.items.count() == 7
    types = dict(plan.items.values_list("category", "action_type"))
    assert types == {
        "missing": "SYNC_IDENTITIES",
        "orphan": "DEPROVISION_IDENTITY",  # the integration does not allow hard delete
        "should_be_inactive": "DEPROVISION_IDENTITY",
        "should_be_active": "SYNC_IDENTITIES",
        "attribute": "SYNC_IDENTITIES",
        "missing_membership": "MANAGE_RELATIONSHIPS",
        "unexplained_membership": "MANAGE_RELATIONSHIPS",
    }
    writes = lambda category: [r for r in _item(plan, category).requests if r["method"] not in ("GET", "—")]  # noqa: E731
    assert [(r["method"], r["path"]) for r in writes("missing")] == [("POST", "Users")]
    assert writes("missing")[0]["body"]["userName"] == "erin"
    bob = world.accounts["bob"].remote_id
    assert writes("should_be_inactive")[0]["method"] == "PATCH"
    assert writes("should_be_inactive")[0]["path"] == f"Users/{bob}"
    assert {"op": "replace", "path": "active", "value": False} in writes("should_be_inactive")[0]["body"]["Operations"]
    eve = writes("should_be_active")
    assert eve
    assert eve[0]["path"] == f"Users/{world.accounts['eve'].remote_id}"
    add = writes("missing_membership")
    assert [(r["method"], r["path"]) for r in add] == [("PATCH", f"Groups/{world.engineering.remote_id}")]
    assert add[0]["body"]["Operations"][0]["op"] == "add"
    assert plan.requests == sum(1 for i in plan.items.all() for r in i.requests if r["method"] != "—")
    assert AuditEvent.objects.filter(verb="plan.created", target_id=str(plan.pk)).exists()


def test_two_ticked_items_request_exactly_their_actions_and_nothing_else(world: World, approver: Person) -> None:
    plan = plan_create(actor=approver, integration=world.app)
    bob, carol = _item(plan, "should_be_inactive"), _item(plan, "missing_membership")
    batches = plan_apply(actor=approver, plan=plan, item_ids=[bob.pk, carol.pk])
    assert sorted(b.action_type for b in batches) == ["DEPROVISION_IDENTITY", "MANAGE_RELATIONSHIPS"]
    assert Action.objects.count() == 2
    bob.refresh_from_db()
    carol.refresh_from_db()
    assert bob.action is not None
    assert carol.action is not None
    assert bob.action.batch in batches
    assert carol.action.batch in batches
    assert bob.action.cause["text"] == f"Plan {plan.pk}, should be inactive: bob left"
    assert bob.action.cause["plan"] == plan.pk
    assert "mapping 4: team Sales → Engineering" in carol.action.cause["text"]
    for action in Action.objects.all():
        assert _run(action).state == ActionState.SUCCEEDED
    assert world.server_user("bob")["active"] is False  # type: ignore[index]
    assert world.server_members() == {"ada", "carol"}  # carol added, ada not removed
    assert world.server_user("erin") is None  # the missing account was not ticked
    # What the workers sent is what the plan showed (the writes, in order).
    base = world.app.base_url.rstrip("/") + "/"
    sent = [(c.method, c.url.removeprefix(base)) for c in bob.action.calls.order_by("id") if c.method != "GET"]
    planned = [(r["method"], r["path"]) for r in bob.requests if r["method"] not in ("GET", "—")]
    assert sent == planned
    event = AuditEvent.objects.get(verb="plan.applied", target_id=str(plan.pk))
    assert sorted(event.details["items"]) == sorted([bob.pk, carol.pk])
    # Applied items stay applied: applying them again is refused, saying so.
    with pytest.raises(Exception, match="applied"):
        plan_apply(actor=approver, plan=plan, item_ids=[bob.pk])


def test_a_plans_batch_is_undone_as_any_batch(world: World, approver: Person) -> None:
    plan = plan_create(actor=approver, integration=world.app, categories=["should_be_inactive"])
    (batch,) = plan_apply(actor=approver, plan=plan, categories=["should_be_inactive"])
    for action in batch.actions.all():
        _run(action)
    undo = batch_undo(actor=approver, batch=batch)
    for action in undo.actions.all():
        _run(action)
    assert world.server_user("bob")["active"] is True  # type: ignore[index]


def test_past_the_mass_change_limit_the_plan_is_held_whole_and_nothing_is_sent(
    world: World, approver: Person, admin_client: Client
) -> None:
    world.app.mass_change_max_accounts = 1
    world.app.save()
    make_drift(world.app, DriftCategory.SHOULD_BE_INACTIVE, account=world.accounts["carol"])
    plan = plan_create(actor=approver, integration=world.app, categories=["should_be_inactive", "missing"])
    page = admin_client.get(f"/integrations/{world.app.pk}/plans/{plan.pk}/")
    assert "would be held whole for approval before anything is sent" in page.content.decode()
    batches = plan_apply(actor=approver, plan=plan, categories=["should_be_inactive", "missing"])
    assert len(batches) == 2
    assert all("more than the limit of 1" in b.held_reason for b in batches)
    assert set(Action.objects.values_list("state", flat=True)) == {ActionState.PENDING_APPROVAL}
    assert world.server_user("bob").get("active") is not False  # type: ignore[union-attr]
    assert world.server_user("erin") is None


def test_a_category_tick_never_deletes_an_orphan(world: World, approver: Person, admin_client: Client) -> None:
    world.app.supports_hard_delete = True
    world.app.save()
    plan = plan_create(actor=approver, integration=world.app, categories=["orphan"])
    orphan = _item(plan, "orphan")
    assert orphan.action_type == "DELETE_IDENTITY"
    url = f"/api/v1/integrations/{world.app.pk}/plans/{plan.pk}/apply/"
    refused = admin_client.post(url, {"categories": ["orphan"]}, content_type="application/json")
    assert refused.status_code == 400
    assert "categories" in refused.json()["fields"]
    page = admin_client.post(
        f"/integrations/{world.app.pk}/plans/{plan.pk}/apply/", {"category": "orphan", "confirm": "done"}
    )
    assert page.status_code == 302
    assert not Action.objects.exists()
    ticked = admin_client.post(url, {"items": [orphan.pk]}, content_type="application/json")
    assert ticked.status_code == 201, ticked.content
    (action,) = Action.objects.all()
    assert action.action_type == "DELETE_IDENTITY"
    assert action.state == ActionState.PENDING_APPROVAL  # a delete waits for another approver
    assert world.server_user("dan") is not None


def test_a_stale_item_says_so_and_is_not_sent(world: World, approver: Person, admin_client: Client) -> None:
    plan = plan_create(actor=approver, integration=world.app, categories=["missing", "attribute"])
    world.drift[DriftCategory.MISSING].delete()  # resolved since
    missing = _item(plan, "missing")
    detail = admin_client.get(f"/api/v1/integrations/{world.app.pk}/plans/{plan.pk}/").json()
    states = {i["category"]: i["state"] for i in detail["results"]}
    assert states["missing"].startswith("stale")
    assert states["attribute"] == "open"
    page = admin_client.get(f"/integrations/{world.app.pk}/plans/{plan.pk}/").content.decode()
    assert "stale: the drift was resolved since the plan was made" in page
    url = f"/api/v1/integrations/{world.app.pk}/plans/{plan.pk}/apply/"
    refused = admin_client.post(url, {"items": [missing.pk]}, content_type="application/json")
    assert refused.status_code == 400
    assert "stale" in refused.json()["detail"]
    by_category = admin_client.post(url, {"categories": ["missing", "attribute"]}, content_type="application/json")
    assert by_category.status_code == 201
    assert list(Action.objects.values_list("subject", flat=True)) == ["ada"]  # not erin's


def test_the_api_makes_lists_and_shows_plans_and_refuses_bad_input(world: World, admin_client: Client) -> None:
    base = f"/api/v1/integrations/{world.app.pk}/plans/"
    bad = admin_client.post(base, {"categories": ["nope"]}, content_type="application/json")
    assert bad.status_code == 400
    assert "nope" in bad.json()["fields"]["categories"][0]
    made = admin_client.post(base, {"categories": ["missing_membership"]}, content_type="application/json")
    assert made.status_code == 201
    body = made.json()
    assert [i["category"] for i in body["results"]] == ["missing_membership"]
    assert body["results"][0]["requests"][-1]["method"] == "PATCH"
    assert "requests/s" in body["duration"]["text"]
    listed = admin_client.get(base).json()
    assert [p["id"] for p in listed["results"]] == [body["id"]]
    apply = f"{base}{body['id']}/apply/"
    assert admin_client.post(apply, {}, content_type="application/json").status_code == 400
    assert admin_client.post(apply, {"items": ["x"]}, content_type="application/json").status_code == 400
    assert admin_client.post(apply, {"items": [999999]}, content_type="application/json").json()["fields"]["items"]
    applied = admin_client.post(apply, {"items": [body["results"][0]["id"]]}, content_type="application/json")
    assert applied.status_code == 201
    (batch,) = applied.json()
    assert batch["action_type"] == "MANAGE_RELATIONSHIPS"
    assert batch["actions"] == 1
    assert Batch.objects.filter(pk=batch["id"]).exists()


def test_a_plans_items_are_paged_by_category_with_the_plans_summary_on_each_page(
    world: World, admin_client: Client, approver: Person
) -> None:
    plan = plan_create(actor=approver, integration=world.app)
    url = f"/api/v1/integrations/{world.app.pk}/plans/{plan.pk}/"
    expected = list(plan.items.order_by("category", "id").values_list("id", flat=True))
    seen: list[int] = []
    body = admin_client.get(url, {"page_size": 3}).json()
    assert body["previous"] is None
    while True:
        assert body["id"] == plan.pk
        assert body["count"] == 7
        assert body["counts"] == dict.fromkeys(DriftCategory.values, 1)
        assert "requests/s" in body["duration"]["text"]
        assert len(body["results"]) <= 3
        seen += [item["id"] for item in body["results"]]
        if body["next"] is None:
            break
        body = admin_client.get(body["next"]).json()
    assert seen == expected
    back = admin_client.get(body["previous"]).json()
    assert [item["id"] for item in back["results"]] == expected[3:6]

    only = admin_client.get(url, {"category": "orphan"}).json()
    assert [item["category"] for item in only["results"]] == ["orphan"]
    assert only["count"] == 1
    assert only["results"][0]["state"] == "open"
    wrong = admin_client.get(url, {"category": "nope"})
    assert wrong.status_code == 400
    assert "category" in wrong.json()["fields"]
    assert admin_client.get(url, {"cursor": "x"}).status_code == 400


def test_only_integration_managers_make_plans_and_only_approvers_apply(
    world: World, make_person: Callable[..., Person], api_client_for: Callable[[Person], object], approver: Person
) -> None:
    operator = api_client_for(make_person("op", roles=["operator"]))
    viewer = api_client_for(make_person("viewer", roles=["viewer"]))
    base = f"/api/v1/integrations/{world.app.pk}/plans/"
    assert operator.post(base, {}, format="json").status_code == 403  # type: ignore[attr-defined]
    plan = plan_create(actor=approver, integration=world.app)
    assert viewer.get(f"{base}{plan.pk}/").status_code == 200  # type: ignore[attr-defined]
    item = _item(plan, "missing").pk
    refused = operator.post(f"{base}{plan.pk}/apply/", {"items": [item]}, format="json")  # type: ignore[attr-defined]
    assert refused.status_code == 403
    assert not Action.objects.exists()


def test_the_plan_page_lists_items_by_category_with_their_requests_as_json(world: World, admin_client: Client) -> None:
    made = admin_client.post(f"/integrations/{world.app.pk}/plans/new/", {"category": ["missing", "orphan"]})
    assert made.status_code == 302
    page = admin_client.get(made["Location"]).content.decode()
    assert "Missing account" in page
    assert "Orphan account" in page
    assert "POST Users" in page
    assert '  "userName": "erin",\n' in page  # the body as indented JSON
    assert "never an orphan's delete" in page
    assert "requests/s" in page
    listing = admin_client.get(f"/integrations/{world.app.pk}/plans/").content.decode()
    assert "Plan " in listing
    assert "Make a plan" in listing


def test_the_plan_page_reads_a_few_queries_however_many_items(
    world: World,
    approver: Person,
    admin_client: Client,
    django_assert_max_num_queries: Callable,
) -> None:
    for name in ("bob", "dan", "eve"):
        make_drift(world.app, DriftCategory.MISSING_MEMBERSHIP, account=world.accounts[name], group=world.engineering)
    plan = plan_create(actor=approver, integration=world.app)
    assert plan.items.count() == 10
    plan_apply(actor=approver, plan=plan, categories=["missing_membership"])
    with django_assert_max_num_queries(
        25
    ):  # the plan, its items, open drift, limits, the page and its tabs: none per item
        page = admin_client.get(f"/integrations/{world.app.pk}/plans/{plan.pk}/")
    assert page.status_code == 200


def test_a_big_category_shows_its_first_items_and_its_tick_applies_them_all(
    world: World, approver: Person, admin_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("reconciliation.plan_views.ROWS_SHOWN", 1)
    for name in ("bob", "dan"):
        make_drift(world.app, DriftCategory.MISSING_MEMBERSHIP, account=world.accounts[name], group=world.engineering)
    plan = plan_create(actor=approver, integration=world.app, categories=["missing_membership"])
    page = admin_client.get(f"/integrations/{world.app.pk}/plans/{plan.pk}/").content.decode()
    assert "3 in all: the first 1 are shown" in page
    applied = admin_client.post(
        f"/integrations/{world.app.pk}/plans/{plan.pk}/apply/", {"category": "missing_membership", "confirm": "done"}
    )
    assert applied.status_code == 302
    assert Action.objects.count() == 3


def test_an_item_an_action_in_flight_already_does_says_so_and_is_not_sent_twice(
    world: World, approver: Person, admin_client: Client
) -> None:
    plan = plan_create(actor=approver, integration=world.app, categories=["should_be_inactive", "missing"])
    leaver = action_request(  # lifecycle automation's deprovision of bob, waiting for approval
        actor=None,
        integration=world.app,
        action_type="DEPROVISION_IDENTITY",
        target_user=world.accounts["bob"],
        hold="held for the test",
    )
    detail = admin_client.get(f"/api/v1/integrations/{world.app.pk}/plans/{plan.pk}/").json()
    states = {i["category"]: i["state"] for i in detail["results"]}
    assert states == {"should_be_inactive": "already being done: an action in flight does it", "missing": "open"}
    url = f"/api/v1/integrations/{world.app.pk}/plans/{plan.pk}/apply/"
    bob = _item(plan, "should_be_inactive").pk
    assert admin_client.post(url, {"items": [bob]}, content_type="application/json").status_code == 400
    applied = admin_client.post(url, {"categories": ["should_be_inactive", "missing"]}, content_type="application/json")
    assert applied.status_code == 201
    assert list(Action.objects.exclude(pk=leaver.pk).values_list("subject", flat=True)) == ["erin"]


def test_every_plan_endpoint_answers_404_once_the_integration_is_deleted(
    world: World, admin_client: Client, approver: Person
) -> None:
    plan = plan_create(actor=approver, integration=world.app)
    base = f"/api/v1/integrations/{world.app.pk}/plans/"
    assert admin_client.get(f"{base}{plan.pk}/").status_code == 200
    Integration.objects.filter(pk=world.app.pk).update(archived_at=timezone.now())

    assert admin_client.get(base).status_code == 404
    assert admin_client.post(base, {}, content_type="application/json").status_code == 404
    assert admin_client.get(f"{base}{plan.pk}/").status_code == 404
    applied = admin_client.post(f"{base}{plan.pk}/apply/", {"categories": ["missing"]}, content_type="application/json")
    assert applied.status_code == 404
    assert not Action.objects.exists()
    for path in ("drift/", "drift/runs/"):
        assert admin_client.get(f"/api/v1/integrations/{world.app.pk}/{path}").status_code == 404


def test_an_applied_items_action_page_links_its_plan(world: World, approver: Person) -> None:
    plan = plan_create(actor=approver, integration=world.app, categories=["should_be_inactive"])
    (batch,) = plan_apply(actor=approver, plan=plan, categories=["should_be_inactive"])
    client = Client()
    client.force_login(approver)
    page = client.get(f"/actions/{batch.actions.get().pk}/").content.decode()
    assert f'<a href="/integrations/{world.app.pk}/plans/{plan.pk}/">plan {plan.pk}</a>' in page
    batch_page = client.get(f"/actions/batches/{batch.pk}/").content.decode()
    plan_link = f'href="/integrations/{world.app.pk}/plans/{plan.pk}/" data-testid="batch-plan">plan {plan.pk}</a>'
    assert plan_link in batch_page
    assert '<span aria-current="page">Batch ' in batch_page  # Actions > Batch N, as an action's page


def test_the_plans_page_offers_the_open_categories_and_says_what_to_do_when_empty(
    world: World, admin_client: Client, make_person: Callable[..., Person]
) -> None:
    url = f"/integrations/{world.app.pk}/plans/"
    DriftItem.objects.filter(category=DriftCategory.ORPHAN).delete()
    page = admin_client.get(url).content.decode()
    assert "Missing account (1)" in page  # as on the Drift tab: each open category with its count
    assert 'value="orphan"' not in page  # no open orphan: not offered
    assert "Make one with Make a plan above" in page  # the empty table says what to do
    # The filter reads in words: who made the plan, not a yes/no/unknown of a field.
    assert ">Anyone</option>" in page
    assert "Unknown" not in page
    plan_create(actor=None, integration=world.app, categories=["missing"], automatic=True)
    person = admin_client.get(url, {"automatic": "false"}).content.decode()
    system = admin_client.get(url, {"automatic": "true"}).content.decode()
    assert "No plan matches" in person
    assert "No plan matches" not in system
    DriftItem.objects.filter(integration=world.app).delete()
    nothing = admin_client.get(url).content.decode()
    assert 'data-testid="make-plan-nothing"' in nothing
    assert "Make a plan</button>" not in nothing
    viewer = Client()
    viewer.force_login(make_person("vera", roles=["viewer"]))
    seen = viewer.get(url).content.decode()
    assert "Make a plan</button>" not in seen
    assert "An integration manager makes one" not in seen  # one plan exists: the table lists it
    assert viewer.post(f"{url}new/").status_code == 403


def test_the_audit_log_names_a_plan_once(world: World, approver: Person, admin_client: Client) -> None:
    plan = plan_create(actor=approver, integration=world.app)
    event = AuditEvent.objects.get(verb="plan.created", target_id=str(plan.pk))
    assert target_words(event.target_type, event.target_id, event.target_label) == f"Plan {plan.pk}"
    page = admin_client.get("/audit/").content.decode()
    assert f"Plan {plan.pk}<" in page
    assert "Plan plan" not in page
