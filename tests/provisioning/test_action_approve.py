"""Approving queues in the same transaction: the message goes at its commit, and an action
whose message was lost (approved, or queued, with no worker claim) is queued again by recovery."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from console.accounts.models import Person
from integrations.models import Integration
from provisioning import services
from provisioning.execution import actions_recover
from provisioning.models import Action, ActionEvent, ApprovalPolicy
from provisioning.services import action_approve, action_request
from provisioning.tasks import actions_execute_task
from tests.conftest import WorkerProcess
from tests.provisioning.conftest import server_user
from tests.provisioning.test_workers import wait_for
from tests.scim_peer import PEER_TOKEN, Peer


def pending_sync(integration: Integration, requester: Person, person: Person) -> Action:
    ApprovalPolicy.objects.update_or_create(
        integration=integration, action_type="SYNC_IDENTITIES", defaults={"requires_approval": True}
    )
    action = action_request(actor=requester, integration=integration, action_type="SYNC_IDENTITIES", person=person)
    assert action.state == "pending_approval"
    return action


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """The task messages sent, instead of sending them."""
    messages: list[tuple[Any, ...]] = []
    monkeypatch.setattr(actions_execute_task, "apply_async", lambda args, **options: messages.append(args))
    return messages


def _message_lost(action: Action) -> None:
    """As if its task message never reached a worker: nobody has claimed it for longer than a lease."""
    Action.objects.filter(pk=action.pk).update(updated_at=timezone.now() - timedelta(hours=1))


@pytest.mark.django_db
def test_an_approval_is_queued_and_sent_only_when_its_transaction_commits(
    app: Integration,
    requester: Person,
    approver: Person,
    make_person: Callable[..., Person],
    sent: list[tuple[Any, ...]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    action = pending_sync(app, requester, make_person("jane.doe"))
    with django_capture_on_commit_callbacks(execute=True):
        action_approve(actor=approver, action=action)
        assert sent == []  # not before the commit
    assert Action.objects.get(pk=action.pk).state == "queued"
    assert sent == [([action.pk],)]


@pytest.mark.django_db
def test_a_failure_after_the_approval_is_written_leaves_the_action_waiting_and_sends_nothing(
    app: Integration,
    requester: Person,
    approver: Person,
    make_person: Callable[..., Person],
    sent: list[tuple[Any, ...]],
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    action = pending_sync(app, requester, make_person("jane.doe"))
    record = services.audit_record

    def crash_when_queueing(**kwargs: Any) -> None:
        if kwargs["verb"] == "action.queued":  # the approval is written by now
            raise RuntimeError("the process died")
        record(**kwargs)

    monkeypatch.setattr(services, "audit_record", crash_when_queueing)
    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(RuntimeError):
        action_approve(actor=approver, action=action)
    action.refresh_from_db()
    assert action.state == "pending_approval"
    assert action.decided_by is None
    assert not ActionEvent.objects.filter(action=action, to_state="approved").exists()
    assert callbacks == []
    assert sent == []


@pytest.mark.django_db
def test_recovery_queues_an_action_left_approved_only_once_it_is_past_the_lease(
    app: Integration,
    requester: Person,
    approver: Person,
    make_person: Callable[..., Person],
    sent: list[tuple[Any, ...]],
) -> None:
    action = pending_sync(app, requester, make_person("jane.doe"))
    Action.objects.filter(pk=action.pk).update(state="approved")  # by a process that died before queueing
    assert actions_recover() == 0  # it may still be on its way
    _message_lost(action)
    assert actions_recover() == 1
    action.refresh_from_db()
    assert action.state == "queued"
    assert ActionEvent.objects.filter(action=action).last().note == "queued by recovery after approval"  # type: ignore[union-attr]


@pytest.mark.worker
def test_actions_whose_messages_were_lost_are_queued_again_by_recovery_and_run_by_a_real_worker(
    peer: Peer,
    start_worker: Callable[..., WorkerProcess],
    make_person: Callable[..., Person],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = Integration.objects.create(
        name="Peer app", base_url=peer.url, bearer_token=PEER_TOKEN, provisioning_enabled=True
    )
    requester = make_person("requester", roles=["operator"])
    approver = make_person("approver", roles=["admin"])
    left_approved = pending_sync(app, requester, make_person("ada"))
    Action.objects.filter(pk=left_approved.pk).update(state="approved")  # a crash between two old commits
    queued = pending_sync(app, requester, make_person("bob"))
    with monkeypatch.context() as lost:  # the broker drops the approval's message
        lost.setattr(actions_execute_task, "apply_async", lambda *args, **options: None)
        action_approve(actor=approver, action=queued)
    assert Action.objects.get(pk=queued.pk).state == "queued"
    _message_lost(left_approved)
    _message_lost(queued)

    start_worker("recovery", concurrency=1)
    assert actions_recover() == 2  # what beat does every minute
    done = {"succeeded", "failed"}
    wait_for(
        lambda: set(Action.objects.filter(pk__in=[left_approved.pk, queued.pk]).values_list("state", flat=True)) <= done
    )
    for action in (left_approved, queued):
        action.refresh_from_db()
        assert action.state == "succeeded", action.last_error
    assert server_user(peer, "ada") is not None
    assert server_user(peer, "bob") is not None
