"""A batch's actions are made together: each with what a request of one writes (its timeline row,
its audit event, its cause, its message at the commit), in as many queries for 50 as for 5."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from console.accounts.models import Person
from console.audit.models import AuditEvent
from integrations.models import Integration
from provisioning.batches import batch_request
from provisioning.errors import ActionRefused
from provisioning.models import Action, ActionEvent, AttributeTransformer
from provisioning.services import Cause, action_request

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """The action ids of each task message sent."""
    from provisioning.tasks import actions_execute_task

    messages: list[list[int]] = []
    monkeypatch.setattr(actions_execute_task, "apply_async", lambda args, **options: messages.append(args[0]))
    return messages


def people(make_person: Callable[..., Person], prefix: str, count: int) -> list[Person]:
    return [make_person(f"{prefix}{i}", password=None, given_name="Given", family_name=f"F{i}") for i in range(count)]


def written(action: Action) -> dict[str, Any]:
    """What a request writes of an action, its timeline and its audit event, without keys and times."""
    event = ActionEvent.objects.get(action=action)
    audit = AuditEvent.objects.get(verb="action.requested", target_id=str(action.pk))
    return {
        "action": {
            name: getattr(action, name)
            for name in (
                "action_type",
                "state",
                "requested_by_id",
                "person_id",
                "target_user_id",
                "subject",
                "parameters",
                "cause",
                "cause_event_id",
                "priority",
                "attempts",
                "attempts_total",
                "last_error",
                "lease_token",
            )
        },
        "expires": action.expires_at is not None,
        "updated": action.updated_at is not None,
        "event": (event.from_state, event.to_state, event.actor_id, event.note),
        "audit": (
            audit.actor_id,
            audit.actor_label,
            audit.target_type,
            audit.target_label,
            {k: v for k, v in audit.details.items() if k != "integration"},
        ),
    }


def test_a_batch_writes_for_each_action_what_a_request_of_one_writes(
    app: Integration,
    requester: Person,
    make_person: Callable[..., Person],
    sent: list[list[int]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    chosen = people(make_person, "p", 3)
    causes = {p.pk: Cause(text=f"Joiner: {p.username}", policy_id=7) for p in chosen}
    with django_capture_on_commit_callbacks(execute=True):
        batch = batch_request(
            actor=requester,
            integration=app,
            action_type="SYNC_IDENTITIES",
            people=chosen,
            causes=causes,
            reason="new starters",
        )
    together = list(batch.actions.order_by("pk"))
    assert [a.person_id for a in together] == [p.pk for p in chosen]  # in the order asked
    assert sent == [[a.pk for a in together]]  # one message at the commit

    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        alone = [
            action_request(
                actor=requester,
                integration=app,
                action_type="SYNC_IDENTITIES",
                person=p,
                batch=batch,
                reason="new starters",
                cause=causes[p.pk],
            )
            for p in chosen
        ]
    assert sent == [[a.pk] for a in alone]  # outside actions_sent_together: a message each
    for made_together, made_alone in zip(together, alone, strict=True):
        made_alone.refresh_from_db()
        assert written(made_together) == written(made_alone)
    first = written(together[0])
    assert first["action"]["state"] == "queued"
    assert first["action"]["cause"] == {"text": "Joiner: p0", "policy": 7}
    assert first["event"] == ("", "queued", requester.pk, "requested")
    assert first["audit"][4] == {
        "type": "SYNC_IDENTITIES",
        "subject": "p0",
        "state": "queued",
        "reason": "new starters",
        "cause": "Joiner: p0",
    }


def test_a_held_batch_waits_whole_with_its_reason_on_each_timeline(
    app: Integration, requester: Person, approver: Person, make_person: Callable[..., Person], sent: list[list[int]]
) -> None:
    chosen = people(make_person, "h", 3)
    batch = batch_request(
        actor=requester, integration=app, action_type="SYNC_IDENTITIES", people=chosen, hold="mass change: test"
    )
    actions = list(batch.actions.all())
    assert {a.state for a in actions} == {"pending_approval"}
    assert all(a.expires_at is not None and a.expires_at > timezone.now() for a in actions)
    assert set(ActionEvent.objects.filter(action__in=actions).values_list("note", flat=True)) == {"mass change: test"}
    assert sent == []  # nothing queued, nothing sent


def test_a_batch_takes_as_many_queries_for_50_people_as_for_5(
    app: Integration, requester: Person, make_person: Callable[..., Person], sent: list[list[int]]
) -> None:
    AttributeTransformer.objects.create(
        integration=app, position=1, attribute_name="title", source="identity_attribute", value="manager"
    )
    boss = make_person("boss", password=None)
    counts = []
    for size, prefix in ((5, "s"), (50, "l")):
        chosen = people(make_person, prefix, size)
        Person.objects.filter(pk__in=[p.pk for p in chosen]).update(manager=boss)
        chosen = list(Person.objects.filter(pk__in=[p.pk for p in chosen]).order_by("pk"))  # managers not read
        with CaptureQueriesContext(connection) as queries:
            batch = batch_request(actor=requester, integration=app, action_type="SYNC_IDENTITIES", people=chosen)
        counts.append(len(queries.captured_queries))
        assert batch.actions.count() == size
        titles = {a.parameters["user"].get("title") for a in batch.actions.all()}
        assert titles == {"boss"}  # the transformer read each one's manager
    assert counts[0] == counts[1], counts


def test_a_batch_with_a_target_refused_makes_nothing_and_names_each_refused(
    app: Integration, requester: Person, make_person: Callable[..., Person]
) -> None:
    # A row to an attribute the application does not have: refused for whoever it gives a value.
    AttributeTransformer.objects.create(
        integration=app, position=1, attribute_name="badge_colour", source="identity_attribute", value="email"
    )
    chosen = [
        make_person("has", password=None, email="has@example.com"),
        make_person("without", password=None),
        make_person("also", password=None, email="also@example.com"),
    ]
    with pytest.raises(ActionRefused) as refused:
        batch_request(actor=requester, integration=app, action_type="SYNC_IDENTITIES", people=chosen)
    message = str(refused.value)
    assert message.startswith("Nothing was requested. has: 'badge_colour' is neither a core attribute")
    assert "also: 'badge_colour'" in message
    assert "without" not in message
    assert not Action.objects.exists()


def test_a_savepoint_rolled_back_takes_its_batch_and_its_messages(
    app: Integration,
    requester: Person,
    make_person: Callable[..., Person],
    sent: list[list[int]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    chosen = people(make_person, "r", 3)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        try:
            with transaction.atomic():
                batch_request(actor=requester, integration=app, action_type="SYNC_IDENTITIES", people=chosen)
                raise RuntimeError
        except RuntimeError:
            pass
    assert not Action.objects.exists()
    assert not ActionEvent.objects.exists()
    assert sent == []
