"""Accounts tied to people: the rules after each extraction from a real SCIM server, conflicts,
actions, an admin's choice, and where people see it (pages and API)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from console.accounts.models import Person
from console.audit.models import AuditEvent
from integrations.correlation import integration_correlate, target_user_owner_set
from integrations.extraction import extraction_run_execute
from integrations.models import AccountChange, CorrelationConflict, ExtractionRun, Integration, TargetUser
from provisioning.action_types import action_type_of
from provisioning.dry_run import rehearse
from provisioning.services import action_request
from tests.integrations.conftest import INTEGRATION_FORM, Peer
from tests.provisioning.conftest import run_action

pytestmark = pytest.mark.django_db


def extract(integration: Integration) -> None:
    run = ExtractionRun.objects.create(integration=integration, trigger="manual")
    done = extraction_run_execute(run_id=run.pk)
    assert done is not None
    assert done.status == "succeeded", done.error


def owners(integration: Integration) -> dict[str, tuple[str | None, str]]:
    return {
        u.user_name: (u.owner.username if u.owner else None, u.owner_source)
        for u in TargetUser.objects.filter(integration=integration).select_related("owner")
    }


def test_extraction_links_accounts_by_each_rule_in_order(
    peer: Peer, make_integration: Callable[..., Integration], make_person: Callable[..., Person]
) -> None:
    make_person("ada.l", external_id="E-1", email="someone@else.example")
    make_person("bob")
    make_person("carol.x", email="Carol@Example.com")
    make_person("dan")
    peer.user("ada-account", externalId="E-1", emails=[{"value": "carol@example.com", "primary": True}])
    peer.user("BOB")  # userName, case aside
    peer.user("c.x", emails=[{"value": "carol@example.COM", "primary": True}])
    peer.user("stranger")
    integration = make_integration(peer.url)

    extract(integration)

    assert owners(integration) == {
        # externalId comes first: ada's email would point at carol, but the account is ada's
        "ada-account": ("ada.l", "externalId"),
        "BOB": ("bob", "userName"),
        "c.x": ("carol.x", "email"),
        "stranger": (None, ""),
    }
    assert not CorrelationConflict.objects.exists()
    linked = TargetUser.objects.get(user_name="BOB")
    assert linked.owner_linked_at is not None


def test_rules_switched_off_are_not_used(
    peer: Peer, make_integration: Callable[..., Integration], make_person: Callable[..., Person]
) -> None:
    make_person("bob", email="bob@example.com")
    peer.user("bob")
    peer.user("robert", emails=[{"value": "bob@example.com", "primary": True}])
    integration = make_integration(peer.url, correlation_rules=["email"])

    extract(integration)

    assert owners(integration) == {"bob": (None, ""), "robert": ("bob", "email")}
    integration.correlation_rules = []
    integration.save()
    extract(integration)
    assert owners(integration) == {"bob": (None, ""), "robert": (None, "")}  # the rules' links go with them


def test_two_people_for_one_account_is_a_conflict_that_links_nothing(
    peer: Peer,
    make_integration: Callable[..., Integration],
    make_person: Callable[..., Person],
    admin_client: Client,
) -> None:
    make_person("twin.a", email="shared@example.com")
    make_person("twin.b", email="SHARED@example.com")
    peer.user("shared", emails=[{"value": "shared@example.com", "primary": True}])
    integration = make_integration(peer.url)

    extract(integration)

    assert owners(integration) == {"shared": (None, "")}
    conflicts = CorrelationConflict.objects.filter(integration=integration)
    assert sorted(conflicts.values_list("person__username", "rule")) == [("twin.a", "email"), ("twin.b", "email")]
    overview = admin_client.get(reverse("integration_detail", args=[integration.pk])).content.decode()
    assert 'data-testid="conflicts"' in overview
    assert "twin.a" in overview
    assert "twin.b" in overview
    assert "Make twin.a the owner" in overview
    users = admin_client.get(reverse("integration_users", args=[integration.pk])).content.decode()
    assert "1 account in conflict" in users


def test_one_person_for_two_accounts_is_a_conflict_an_admin_resolves(
    peer: Peer,
    make_integration: Callable[..., Integration],
    make_person: Callable[..., Person],
    admin: Person,
    admin_client: Client,
) -> None:
    eve = make_person("eve", email="eve@example.com")
    peer.user("eve")
    peer.user("eve-admin", emails=[{"value": "eve@example.com", "primary": True}])
    integration = make_integration(peer.url)

    extract(integration)

    assert owners(integration) == {"eve": (None, ""), "eve-admin": (None, "")}
    assert CorrelationConflict.objects.filter(integration=integration).count() == 2
    chosen = TargetUser.objects.get(user_name="eve-admin")
    response = admin_client.post(
        reverse("target_user_owner", args=[integration.pk, chosen.pk]), {"person": eve.pk, "back": "conflicts"}
    )
    assert response.status_code == 302
    assert owners(integration)["eve-admin"] == ("eve", "manual")
    event = AuditEvent.objects.get(verb="target_user.owner_set")
    assert event.actor_id == admin.pk
    assert event.details["after"]["owner"] == "eve"

    extract(integration)  # eve's account here is settled: the other one is nobody's, and no conflict

    assert owners(integration) == {"eve": (None, ""), "eve-admin": ("eve", "manual")}
    assert not CorrelationConflict.objects.filter(integration=integration).exists()


def test_a_manual_link_survives_the_next_extraction(
    peer: Peer, make_integration: Callable[..., Integration], make_person: Callable[..., Person], admin: Person
) -> None:
    make_person("frank")
    grace = make_person("grace")
    peer.user("frank")
    integration = make_integration(peer.url)
    extract(integration)
    assert owners(integration)["frank"] == ("frank", "userName")

    target_user_owner_set(user=TargetUser.objects.get(user_name="frank"), person_id=grace.pk, actor=admin)
    extract(integration)

    assert owners(integration)["frank"] == ("grace", "manual")


def test_an_account_removed_from_the_application_keeps_its_owner(
    peer: Peer, make_integration: Callable[..., Integration], make_person: Callable[..., Person]
) -> None:
    make_person("gus")
    gone = peer.user("gus")
    integration = make_integration(peer.url)
    extract(integration)
    peer.http.delete(f"/Users/{gone['id']}").raise_for_status()

    extract(integration)

    account = TargetUser.objects.get(user_name="gus")
    assert account.removed_at is not None
    assert owners(integration) == {"gus": ("gus", "userName")}  # the person's page shows it as removed


def test_a_sync_for_a_person_links_the_account_it_creates(
    peer: Peer, make_integration: Callable[..., Integration], make_person: Callable[..., Person]
) -> None:
    requester = make_person("requester", roles=["operator"])
    # Nothing the rules could match: the link is the action's.
    hana = make_person("hana.k", email="hana@example.com", external_id="H-9")
    integration = make_integration(peer.url, provisioning_enabled=True, correlation_rules=[])

    sync = action_request(actor=requester, integration=integration, action_type="SYNC_IDENTITIES", person=hana)
    done = run_action(sync)

    assert done.state == "succeeded", done.last_error
    assert owners(integration) == {"hana.k": ("hana.k", "action")}
    extract(integration)  # the rules (none here) never undo it
    assert owners(integration) == {"hana.k": ("hana.k", "action")}


def test_a_dry_run_of_a_sync_links_nothing_and_the_run_links_the_account_it_finds(
    peer: Peer, make_integration: Callable[..., Integration], make_person: Callable[..., Person]
) -> None:
    requester = make_person("requester", roles=["operator"])
    peer.user("ken", externalId="K-1")
    ken = make_person("ken", external_id="K-1")
    integration = make_integration(peer.url, provisioning_enabled=True, correlation_rules=[])
    extract(integration)
    sync = action_request(actor=requester, integration=integration, action_type="SYNC_IDENTITIES", person=ken)

    rehearsal = rehearse(integration, sync.action_type, sync.parameters, action_type_of(sync.action_type).execute)

    assert not rehearsal.stopped
    assert owners(integration) == {"ken": (None, "")}
    assert run_action(sync).result["id"] == TargetUser.objects.get(user_name="ken").remote_id  # found, not made
    assert owners(integration) == {"ken": ("ken", "action")}


def test_the_person_page_and_the_api_show_the_accounts(
    peer: Peer,
    make_integration: Callable[..., Integration],
    make_person: Callable[..., Person],
    api_client_for: Callable[[Person], object],
) -> None:
    ivy = make_person("ivy", email="ivy@example.com")
    ivy_account = peer.user("ivy", active=False)
    peer.group("Designers", [ivy_account])
    integration = make_integration(peer.url, name="Figma", provisioning_enabled=True)
    extract(integration)
    account = TargetUser.objects.get(user_name="ivy")
    requester = make_person("requester", roles=["operator"])
    waiting = action_request(actor=requester, integration=integration, action_type="SYNC_IDENTITIES", person=ivy)
    viewer = make_person("vera", roles=["viewer"])
    nobody = make_person("nobody", roles=[])

    client = Client()
    client.force_login(viewer)
    page = client.get(reverse("person_detail", args=[ivy.pk])).content.decode()

    assert 'data-testid="person-accounts"' in page
    assert reverse("integration_detail", args=[integration.pk]) in page
    assert "Figma" in page
    assert reverse("target_user_detail", args=[integration.pk, account.pk]) in page
    assert "inactive" in page
    assert "Designers" in page
    assert "membership in the application" in page
    assert reverse("action_detail", args=[waiting.pk]) in page  # queued, for ivy in Figma
    account_page = client.get(reverse("target_user_detail", args=[integration.pk, account.pk])).content.decode()
    assert reverse("person_detail", args=[ivy.pk]) in account_page
    assert "its userName is their user name" in account_page

    api = api_client_for(viewer)
    body = api.get(f"/api/v1/people/{ivy.pk}/accounts/").json()  # type: ignore[attr-defined]
    assert [(a["integration"]["name"], a["user_name"], a["status"], a["groups"]) for a in body] == [
        ("Figma", "ivy", "inactive", ["Designers"])
    ]
    assert body[0]["owner"] == {"id": ivy.pk, "username": "ivy"}
    assert body[0]["owner_source"] == "userName"
    users = api.get(f"/api/v1/integrations/{integration.pk}/users/").json()["results"]  # type: ignore[attr-defined]
    assert users[0]["owner"] == {"id": ivy.pk, "username": "ivy"}
    assert api.get("/api/v1/people/999999/accounts/").status_code == 404  # type: ignore[attr-defined]

    refused = api_client_for(nobody)
    assert refused.get(f"/api/v1/people/{ivy.pk}/accounts/").status_code == 403  # type: ignore[attr-defined]
    client.force_login(nobody)
    assert client.get(reverse("person_detail", args=[ivy.pk])).status_code == 403


def test_an_account_without_owner_says_so_and_a_viewer_cannot_choose_one(
    peer: Peer, make_integration: Callable[..., Integration], make_person: Callable[..., Person]
) -> None:
    peer.user("orphan")
    integration = make_integration(peer.url)
    extract(integration)
    account = TargetUser.objects.get(user_name="orphan")
    viewer = make_person("vera", roles=["viewer"])
    client = Client()
    client.force_login(viewer)

    page = client.get(reverse("target_user_detail", args=[integration.pk, account.pk])).content.decode()

    assert "No owner." in page
    assert "Set owner" not in page
    refused = client.post(reverse("target_user_owner", args=[integration.pk, account.pk]), {"person": viewer.pk})
    assert refused.status_code == 403
    assert TargetUser.objects.get(pk=account.pk).owner_id is None


def test_rules_are_set_on_the_form_and_the_api(
    admin_client: Client, admin: Person, api_client_for: Callable[[Person], object]
) -> None:
    created = admin_client.post(reverse("integration_create"), INTEGRATION_FORM)  # the rules left out: all of them
    assert created.status_code == 302
    integration = Integration.objects.get(name="Jira")
    assert integration.correlation_rules == ["externalId", "userName", "email"]
    edit = admin_client.get(reverse("integration_edit", args=[integration.pk])).content.decode()
    assert "primary email (case aside)" in edit
    assert "correlation_rules_shown" in edit

    saved = admin_client.post(
        reverse("integration_edit", args=[integration.pk]),
        {**INTEGRATION_FORM, "correlation_rules": ["email", "externalId"], "correlation_rules_shown": "1"},
    )
    assert saved.status_code == 302
    integration.refresh_from_db()
    assert integration.correlation_rules == ["externalId", "email"]
    admin_client.post(
        reverse("integration_edit", args=[integration.pk]), {**INTEGRATION_FORM, "correlation_rules_shown": "1"}
    )
    integration.refresh_from_db()
    assert integration.correlation_rules == []  # every box unticked: switched off

    api = api_client_for(admin)
    url = f"/api/v1/integrations/{integration.pk}/"
    wrong = api.patch(url, {"correlation_rules": ["employeeNumber"]}, format="json")  # type: ignore[attr-defined]
    assert wrong.status_code == 400
    assert "correlation_rules" in wrong.json()["fields"]
    right = api.patch(url, {"correlation_rules": ["userName"]}, format="json")  # type: ignore[attr-defined]
    assert right.status_code == 200
    assert right.json()["correlation_rules"] == ["userName"]


def test_correlation_of_20k_accounts_is_set_based(make_person: Callable[..., Person], db: None) -> None:
    """20,000 accounts and 20,000 people: a handful of statements, whatever the number of accounts."""
    integration = Integration.objects.create(name="Big", base_url="https://big.example.com/scim/v2")
    Person.objects.bulk_create(
        [Person(username=f"user{i:05}", email=f"user{i:05}@example.com", external_id=f"X{i}") for i in range(20_000)]
    )
    TargetUser.objects.bulk_create(
        [
            TargetUser(
                integration=integration,
                remote_id=str(i),
                user_name=f"acct{i:05}" if i % 3 else f"USER{i:05}",
                email=f"User{i:05}@Example.com" if i % 3 == 1 else "",
                external_id=f"X{i}" if i % 3 == 2 else "",
                content_hash="h",
            )
            for i in range(20_000)
        ],
        batch_size=2000,
    )

    started = time.monotonic()
    with CaptureQueriesContext(connection) as queries:
        first = integration_correlate(integration=integration)
    first_seconds = time.monotonic() - started
    started = time.monotonic()
    again = integration_correlate(integration=integration)
    again_seconds = time.monotonic() - started

    assert first.linked == 20_000
    assert first.conflicts == 0
    assert (again.linked, again.unlinked) == (0, 0)  # nothing changed: nothing written
    assert len(queries) < 60, len(queries)
    assert AccountChange.objects.filter(integration=integration).count() == 20_000  # each first owner, kept
    logging.getLogger(__name__).warning(
        "correlation of 20,000 accounts: %.2f s first, %.2f s again", first_seconds, again_seconds
    )
    assert first_seconds < 10


def test_the_dashboard_names_leavers_who_still_hold_an_active_account(
    peer: Peer,
    make_integration: Callable[..., Integration],
    make_person: Callable[..., Person],
    admin_client: Client,
) -> None:
    leaver = make_person("lea.ver")
    stayer = make_person("sam.stays")
    peer.user("lea.ver")
    peer.user("sam.stays")
    integration = make_integration(peer.url)
    extract(integration)
    assert owners(integration)["lea.ver"] == ("lea.ver", "userName")

    def panel() -> str:
        page = admin_client.get("/").content.decode()
        start = page.index('id="leavers-heading"')
        return page[start : page.index("</section>", start)]

    assert "None: every person who left has no active account" in panel()

    leaver.is_active = False
    leaver.save(update_fields=["is_active"])
    shown = panel()
    assert "1 account of people who left is still active." in shown
    assert "Open each account below and deprovision it" in shown  # says what to do
    assert reverse("person_detail", args=[leaver.pk]) in shown
    assert reverse("person_detail", args=[stayer.pk]) not in shown
    account = TargetUser.objects.get(integration=integration, user_name="lea.ver")
    assert reverse("target_user_detail", args=[integration.pk, account.pk]) in shown

    TargetUser.objects.filter(pk=account.pk).update(active=False)  # as the next extraction reads it
    assert "None: every person who left" in panel()
