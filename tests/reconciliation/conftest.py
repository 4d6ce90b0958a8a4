"""Plans are tested on drift items made directly, about real accounts, groups and people: an
integration on the real SCIM server of ``tests.scim_peer``, extracted by the console."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from console.accounts.models import Person
from integrations.models import Integration, TargetGroup, TargetUser
from reconciliation.models import DriftCategory, DriftItem, DriftRun
from tests.provisioning.conftest import app, extract  # noqa: F401 - fixtures: an integration on the peer
from tests.scim_peer import Peer


def make_drift(
    integration: Integration,
    category: str,
    *,
    person: Person | None = None,
    account: TargetUser | None = None,
    group: TargetGroup | None = None,
    rule: str = "",
) -> DriftItem:
    if group is not None:
        assert account is not None
        key = f"membership:{group.pk}:{account.remote_id}"
    elif account is not None:
        key = f"account:{account.pk}"
    else:
        assert person is not None
        key = f"person:{person.pk}"
    return DriftItem.objects.create(
        integration=integration,
        category=category,
        key=key,
        person=person,
        target_user=account,
        group=group,
        rule=rule or f"rule of {category}",
    )


@dataclass
class World:
    app: Integration
    peer: Peer
    people: dict[str, Person]
    accounts: dict[str, TargetUser]
    engineering: TargetGroup
    drift: dict[DriftCategory, DriftItem]

    def server_user(self, user_name: str) -> dict[str, Any] | None:
        found = self.peer.http.get("/Users", params={"filter": f'userName eq "{user_name}"'}).json()
        resources = found.get("Resources") or []
        assert len(resources) <= 1
        return resources[0] if resources else None

    def server_members(self) -> set[str]:
        group = self.peer.http.get(f"/Groups/{self.engineering.remote_id}").json()
        ids = {m["value"] for m in group.get("members") or []}
        return {name for name, account in self.accounts.items() if account.remote_id in ids}


@pytest.fixture
def world(
    peer: Peer,
    app: Integration,  # noqa: F811
    extract: Callable[[], None],  # noqa: F811
    make_person: Callable[..., Person],
) -> World:
    """Accounts ada, bob, carol, dan (nobody's) and eve (deactivated) in the application, ada in
    Engineering (no mass-change limit by share of the accounts); people ada, bob (a leaver),
    carol, eve and erin (no account yet); one drift item of each category."""
    app.mass_change_max_percent = 100  # five accounts: one deprovision is 20 % of them
    app.save()
    made = {name: peer.user(name) for name in ("ada", "bob", "carol", "dan")}
    made["eve"] = peer.user("eve", active=False)
    peer.group("Engineering", [made["ada"]])
    extract()
    accounts = {a.user_name: a for a in TargetUser.objects.filter(integration=app)}
    people = {
        "ada": make_person("ada", roles=[], given_name="Ada", family_name="Lovelace"),
        "bob": make_person("bob", roles=[], active=False),
        "carol": make_person("carol", roles=[]),
        "eve": make_person("eve", roles=[]),
        "erin": make_person("erin", roles=[]),
    }
    for name in ("ada", "bob", "carol", "eve"):
        TargetUser.objects.filter(pk=accounts[name].pk).update(owner=people[name], owner_source="correlation")
    engineering = TargetGroup.objects.get(integration=app, display_name="Engineering")
    drift = {
        DriftCategory.MISSING: make_drift(app, DriftCategory.MISSING, person=people["erin"]),
        DriftCategory.ORPHAN: make_drift(app, DriftCategory.ORPHAN, account=accounts["dan"], rule="no person owns it"),
        DriftCategory.SHOULD_BE_INACTIVE: make_drift(
            app, DriftCategory.SHOULD_BE_INACTIVE, account=accounts["bob"], person=people["bob"], rule="bob left"
        ),
        DriftCategory.SHOULD_BE_ACTIVE: make_drift(
            app, DriftCategory.SHOULD_BE_ACTIVE, account=accounts["eve"], person=people["eve"]
        ),
        DriftCategory.ATTRIBUTE: make_drift(
            app, DriftCategory.ATTRIBUTE, account=accounts["ada"], person=people["ada"]
        ),
        DriftCategory.MISSING_MEMBERSHIP: make_drift(
            app,
            DriftCategory.MISSING_MEMBERSHIP,
            account=accounts["carol"],
            group=engineering,
            rule="mapping 4: team Sales → Engineering",
        ),
        DriftCategory.UNEXPLAINED_MEMBERSHIP: make_drift(
            app, DriftCategory.UNEXPLAINED_MEMBERSHIP, account=accounts["ada"], group=engineering
        ),
    }
    DriftRun.objects.create(integration=app, trigger=DriftRun.Trigger.ON_DEMAND)
    return World(app, peer, people, accounts, engineering, drift)
