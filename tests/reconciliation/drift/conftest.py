"""Drift is computed from what the console stores: accounts, people, policies, mappings, actions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from console.accounts.models import Person, Team, TeamMembership
from integrations.models import Integration, TargetGroup, TargetMembership, TargetUser
from lifecycle.models import LifecyclePolicy, PolicyMode
from provisioning.transformers import payload_for


@pytest.fixture
def app(db: None) -> Integration:
    return Integration.objects.create(
        name="Wiki", base_url="https://wiki.example/scim/v2", bearer_token="t", provisioning_enabled=True
    )


@pytest.fixture
def person(make_person: Callable[..., Person]) -> Callable[..., Person]:
    """A person with no console role (the people automation follows)."""

    def make(username: str, **fields: Any) -> Person:
        fields.setdefault("given_name", username.title())
        fields.setdefault("family_name", "Example")
        fields.setdefault("email", f"{username}@example.com")
        return make_person(username, roles=(), password=None, **fields)

    return make


def account(
    app: Integration,
    user_name: str,
    *,
    owner: Person | None = None,
    active: bool = True,
    source: str = "userName",
    resource: dict[str, Any] | None = None,
) -> TargetUser:
    """An account as extraction stores it; owned accounts read as their owner's payload (no drift)."""
    if resource is None:
        resource = {**payload_for(owner, app), "id": f"id-{user_name}"} if owner is not None else {}
    resource["active"] = active
    return TargetUser.objects.create(
        integration=app,
        remote_id=f"id-{user_name}",
        user_name=user_name,
        active=active,
        owner=owner,
        owner_source=source if owner is not None else "",
        resource=resource,
        content_hash="h",
    )


def group(app: Integration, name: str, *members: TargetUser) -> TargetGroup:
    made = TargetGroup.objects.create(integration=app, remote_id=f"g-{name}", display_name=name, content_hash="h")
    for member in members:
        TargetMembership.objects.create(integration=app, group=made, member_remote_id=member.remote_id, user=member)
    return made


def team(name: str, *people: Person) -> Team:
    made = Team.objects.create(name=name)
    for member in people:
        TeamMembership.objects.create(team=made, person=member)
    return made


def policy(app: Integration, mode: str = PolicyMode.ON, **fields: Any) -> LifecyclePolicy:
    fields.setdefault("all_active_people", True)
    return LifecyclePolicy.objects.create(integration=app, mode=mode, **fields)
