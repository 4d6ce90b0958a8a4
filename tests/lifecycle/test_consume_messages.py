"""Consume messages and passes: a burst sends one message while one waits for a worker, and a
pass that loses the race for a policy's cursor still takes the events left after it."""

from __future__ import annotations

from typing import Any

from console.accounts.models import IdentityEvent
from lifecycle import consumer, tasks
from lifecycle.models import LifecyclePolicy
from provisioning.models import Action, ActionType
from tests.lifecycle.conftest import push_user
from tests.scim.conftest import ScimClient


def test_a_burst_of_pushes_sends_one_message_until_a_worker_takes_it(
    scim: ScimClient,
    policy_on: LifecyclePolicy,
    monkeypatch: Any,
    django_capture_on_commit_callbacks: Any,
    settings: Any,
) -> None:
    settings.LIFECYCLE_SETTLE_SECONDS = 0  # the worker takes the message at once (settling: test_engine)
    sent: list[str] = []
    monkeypatch.setattr(tasks.lifecycle_consume_task, "apply_async", lambda **options: sent.append("consume"))

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        for i in range(5):
            push_user(scim, f"joiner{i}@example.com")
    assert len(callbacks) >= 5  # every push asked, once committed
    assert sent == ["consume"]  # the first message covers the rest

    # A worker takes it: it sees all five joiners, and the next event sends a message again.
    assert tasks.lifecycle_consume_task() == IdentityEvent.objects.count()
    assert Action.objects.filter(action_type=ActionType.SYNC_IDENTITIES, integration=policy_on.integration).count() == 5
    with django_capture_on_commit_callbacks(execute=True):
        push_user(scim, "late@example.com")
    assert sent == ["consume", "consume"]


def test_a_pass_that_loses_the_cursor_to_a_shorter_pass_takes_what_is_left(
    scim: ScimClient, policy_on: LifecyclePolicy, monkeypatch: Any
) -> None:
    """Two passes race: the winner read before the newest event committed and stops short of
    it; the loser reads the cursor again and takes that event (no other message may come)."""
    first = push_user(scim, "first@example.com")
    push_user(scim, "second@example.com")
    events = list(IdentityEvent.objects.order_by("pk"))
    real_filter = IdentityEvent.objects.filter
    raced: list[int] = []

    def filter_after_a_shorter_pass(*args: Any, **kwargs: Any) -> Any:
        if not raced:  # between this pass's read of the cursor and its update, another commits
            raced.append(events[0].pk)
            LifecyclePolicy.objects.filter(pk=policy_on.pk).update(event_cursor=events[0].pk)
        return real_filter(*args, **kwargs)

    monkeypatch.setattr(IdentityEvent.objects, "filter", filter_after_a_shorter_pass)

    assert consumer.policy_consume(policy_on.pk) == len(events) - 1

    policy_on.refresh_from_db()
    assert policy_on.event_cursor == events[-1].pk
    asked = Action.objects.filter(action_type=ActionType.SYNC_IDENTITIES).values_list("subject", flat=True)
    assert list(asked) == ["second@example.com"]  # the first was the other pass's to ask for
    assert first["userName"] == "first@example.com"
