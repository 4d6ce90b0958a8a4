"""Provisioning is tested against the real SCIM server of ``tests.scim_peer``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from console.accounts.models import Person
from integrations.extraction import extraction_run_execute
from integrations.models import ExtractionRun, Integration, TargetGroup, TargetUser
from provisioning.execution import action_execute
from provisioning.models import Action, ActionState
from tests.scim_peer import PEER_TOKEN, Peer


@pytest.fixture
def app(peer: Peer, db: None) -> Integration:
    """A provisioning-enabled integration on the peer."""
    return Integration.objects.create(
        name="Peer app", base_url=peer.url, bearer_token=PEER_TOKEN, provisioning_enabled=True
    )


@pytest.fixture
def extract(app: Integration) -> Callable[[], None]:
    def run() -> None:
        extraction = ExtractionRun.objects.create(integration=app, trigger="manual")
        done = extraction_run_execute(run_id=extraction.pk)
        assert done is not None
        assert done.status == "succeeded", done.error

    return run


@pytest.fixture
def deletable(peer: Peer, app: Integration, extract: Callable[[], None]) -> Integration:
    """The peer app with two accounts (ada, bob) extracted, allowing hard deletes."""
    for name in ("ada", "bob"):
        peer.user(name)
    extract()
    app.supports_hard_delete = True
    app.save()
    return app


@pytest.fixture
def requester(make_person: Callable[..., Person]) -> Person:
    return make_person("requester", roles=["operator"])


@pytest.fixture
def approver(make_person: Callable[..., Person]) -> Person:
    return make_person("approver", roles=["admin"])


def run_action(action: Action) -> Action:
    """One attempt, as a worker makes it."""
    outcome = action_execute(action.pk)
    assert outcome.action is not None, "the action was not claimable"
    return outcome.action


def run_queued(app: Integration) -> list[Action]:
    """Every queued action of ``app``, in order, each made once as a worker makes it; each must succeed."""
    ran = []
    for action in Action.objects.filter(integration=app, state=ActionState.QUEUED).order_by("pk"):
        done = run_action(action)
        assert done.state == ActionState.SUCCEEDED, done.last_error
        ran.append(done)
    return ran


def account(app: Integration, user_name: str) -> TargetUser:
    return TargetUser.objects.get(integration=app, user_name=user_name)


def group(app: Integration, name: str) -> TargetGroup:
    return TargetGroup.objects.get(integration=app, display_name=name)


def server_user(peer: Peer, user_name: str) -> dict[str, Any] | None:
    found = peer.http.get("/Users", params={"filter": f'userName eq "{user_name}"'}).json()
    resources = found.get("Resources") or []
    assert len(resources) <= 1, f"{len(resources)} accounts named {user_name}"
    return resources[0] if resources else None
