"""A burst of identity events sends one consume message while one waits for a worker."""

from __future__ import annotations

from typing import Any

from console.accounts.models import IdentityEvent
from lifecycle import tasks
from lifecycle.models import LifecyclePolicy
from provisioning.models import Action, ActionType
from tests.lifecycle.conftest import push_user
from tests.scim.conftest import ScimClient


def test_a_burst_of_pushes_sends_one_message_until_a_worker_takes_it(
    scim: ScimClient, policy_on: LifecyclePolicy, monkeypatch: Any, django_capture_on_commit_callbacks: Any
) -> None:
    sent: list[str] = []
    monkeypatch.setattr(tasks.lifecycle_consume_task, "delay", lambda: sent.append("consume"))

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
