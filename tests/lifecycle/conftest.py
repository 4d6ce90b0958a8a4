"""Lifecycle automation is tested with people pushed to the console's own SCIM server, and
accounts and groups in the real SCIM server of ``tests.scim_peer``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from console.accounts.models import Person, Team
from integrations.models import Integration, TargetGroup
from lifecycle.models import BirthrightMapping, LifecyclePolicy, PolicyMode
from tests.provisioning.conftest import app, extract  # noqa: F401 - fixtures: an integration on the peer
from tests.scim.conftest import (  # noqa: F401 - fixtures: a SCIM client holding a provisioner's key
    ScimClient,
    patch_op,
    provisioner,
    scim,
    scim_enabled,
)
from tests.scim_peer import Peer


def push_user(client: ScimClient, user_name: str, **attributes: Any) -> dict[str, Any]:
    """An identity provider pushes a person, as Okta does."""
    body = {
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        ],
        "userName": user_name,
        "name": {"givenName": user_name.split("@")[0].title(), "familyName": "Example"},
        "emails": [{"value": user_name, "type": "work", "primary": True}],
        "active": True,
        **attributes,
    }
    response = client.post("Users", body)
    assert response.status_code == 201, response.content
    return dict(response.json_body)


def push_group(client: ScimClient, name: str, members: list[dict[str, Any]]) -> dict[str, Any]:
    body = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": name,
        "members": [{"value": m["id"]} for m in members],
    }
    response = client.post("Groups", body)
    assert response.status_code == 201, response.content
    return dict(response.json_body)


def set_active(client: ScimClient, user: dict[str, Any], active: bool) -> None:
    response = client.patch(f"Users/{user['id']}", patch_op({"op": "replace", "path": "active", "value": active}))
    assert response.status_code == 200, response.content


@pytest.fixture
def groups_in_app(peer: Peer, app: Integration, extract: Callable[[], None]) -> dict[str, TargetGroup]:  # noqa: F811
    """The application's groups Engineering and Sales, read by the console."""
    for name in ("Engineering", "Sales"):
        peer.group(name, [])
    extract()
    return {g.display_name: g for g in TargetGroup.objects.filter(integration=app)}


@pytest.fixture
def policy_on(app: Integration) -> LifecyclePolicy:  # noqa: F811
    return LifecyclePolicy.objects.create(integration=app, mode=PolicyMode.ON, all_active_people=True)


def map_team(
    integration: Integration, team_name: str, *groups: TargetGroup, actor: Person | None = None
) -> BirthrightMapping:
    team = Team.objects.get(name=team_name)
    mapping = BirthrightMapping.objects.create(integration=integration, team=team, created_by=actor)
    mapping.groups.set(groups)
    return mapping
