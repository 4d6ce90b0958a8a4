"""Access history: who was in a group, and which accounts and groups a person had, at a past moment.

Against the real SCIM server: extract, change things in the server directly, extract again;
an action's outcome shows at its time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from console.accounts.models import Person
from integrations.history import as_of_parse
from integrations.models import (
    AccountChange,
    ChangeSource,
    GroupChange,
    Integration,
    MembershipChange,
    TargetGroup,
    TargetUser,
)
from provisioning.services import action_request
from tests.provisioning.conftest import account, group, run_action
from tests.scim_peer import Peer

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def patch(peer: Peer, path: str, *operations: dict[str, Any]) -> None:
    peer.http.patch(path, json={"schemas": [PATCH_OP], "Operations": list(operations)}).raise_for_status()


def members_api(client: APIClient, app: Integration, group_pk: int, as_of: str | None = None) -> Any:
    url = f"/api/v1/integrations/{app.pk}/groups/{group_pk}/members/"
    return client.get(url, {"as_of": as_of} if as_of is not None else {})


def member_names(body: dict[str, Any]) -> set[str]:
    return {row["account"]["user_name"] for row in body["results"] if row["account"]}


@pytest.fixture
def story(peer: Peer, app: Integration, extract: Callable[[], None], make_person: Callable[..., Person]) -> Any:
    """ada, bob and cy in the server, Engineers holding ada and bob, read once; then, in the
    server, bob leaves Engineers and cy joins, ada is deactivated, dan is deleted and the group
    Old goes; read again. ``before`` is a moment between the two reads."""
    ada_person = make_person("ada", roles=["viewer"])
    ada, bob, cy, dan = (peer.user(name) for name in ("ada", "bob", "cy", "dan"))
    engineers = peer.group("Engineers", [ada, bob])
    old = peer.group("Old", [ada])
    extract()
    first_read = Integration.objects.get(pk=app.pk).history_since
    before = timezone.now()
    patch(
        peer,
        f"/Groups/{engineers['id']}",
        {"op": "remove", "path": f'members[value eq "{bob["id"]}"]'},
        {"op": "add", "path": "members", "value": [{"value": cy["id"]}]},
    )
    patch(peer, f"/Users/{ada['id']}", {"op": "replace", "path": "active", "value": False})
    peer.http.delete(f"/Users/{dan['id']}").raise_for_status()
    peer.http.delete(f"/Groups/{old['id']}").raise_for_status()
    extract()
    return {"person": ada_person, "before": before, "first_read": first_read}


def test_a_first_read_writes_no_history_row(
    peer: Peer, app: Integration, extract: Callable[[], None], make_person: Callable[..., Person]
) -> None:
    make_person("u1")  # linked to its account by the first read: its history starts linked
    people = [peer.user(f"u{i}") for i in range(30)]
    peer.group("Everyone", people)
    extract()
    assert not MembershipChange.objects.exists()
    assert not AccountChange.objects.exists()
    assert not GroupChange.objects.exists()
    assert Integration.objects.get(pk=app.pk).history_since is not None
    assert account(app, "u1").owner is not None
    extract()  # nothing changed: nothing written either
    assert not MembershipChange.objects.exists()
    assert not AccountChange.objects.exists()


def test_group_members_before_and_after_changes_made_in_the_server(
    story: Any, app: Integration, admin: Person, api_client_for: Callable[[Person], APIClient]
) -> None:
    api = api_client_for(admin)
    engineers = group(app, "Engineers")

    now = members_api(api, app, engineers.pk)
    then = members_api(api, app, engineers.pk, story["before"].isoformat())

    assert now.status_code == 200
    assert then.status_code == 200
    assert member_names(now.json()) == {"ada", "cy"}
    assert member_names(then.json()) == {"ada", "bob"}
    assert then.json()["known"] is True
    assert then.json()["existed"] is True
    assert then.json()["summary"].startswith("As of ")
    assert "2 members" in then.json()["summary"]
    changes = MembershipChange.objects.filter(group=engineers).order_by("member_remote_id")
    assert {(c.user.user_name if c.user else "", c.added, c.source) for c in changes} == {
        ("bob", False, ChangeSource.EXTRACTION),
        ("cy", True, ChangeSource.EXTRACTION),
    }
    assert all(c.run_id is not None for c in changes)


def _all_pages(api: APIClient, first: Any) -> list[list[str]]:
    """The user names of each page, following ``next`` from the first answer."""
    pages = []
    body = first.json()
    while True:
        pages.append([row["account"]["user_name"] for row in body["results"]])
        if body["next"] is None:
            return pages
        body = api.get(body["next"]).json()


def test_group_members_are_paged_alike_now_and_as_of_a_past_moment(
    story: Any, app: Integration, admin: Person, api_client_for: Callable[[Person], APIClient]
) -> None:
    api = api_client_for(admin)
    engineers = group(app, "Engineers")
    url = f"/api/v1/integrations/{app.pk}/groups/{engineers.pk}/members/"

    now = api.get(url, {"page_size": 1})
    then = api.get(url, {"page_size": 1, "as_of": story["before"].isoformat()})

    assert _all_pages(api, now) == [["ada"], ["cy"]]
    assert _all_pages(api, then) == [["ada"], ["bob"]]
    for first in (now.json(), then.json()):
        assert first["count"] == 2  # every page's
        assert first["page_size"] == 1
        assert first["previous"] is None
        assert first["group"]["display_name"] == "Engineers"
        second = api.get(first["next"]).json()
        assert second["next"] is None
        assert second["summary"] == first["summary"]
        back = api.get(second["previous"]).json()
        assert [row["account"]["user_name"] for row in back["results"]] == ["ada"]
    assert "as_of=" in then.json()["next"]  # the next page is of the same moment
    whole = api.get(url).json()
    assert [row["account"]["user_name"] for row in whole["results"]] == ["ada", "cy"]
    assert whole["next"] is None
    bad = api.get(url, {"cursor": "not-a-cursor"})
    assert bad.status_code == 400
    assert "cursor" in bad.json()["fields"]


def test_a_group_gone_from_the_server_had_its_members_before_and_none_after(
    story: Any, app: Integration, admin: Person, api_client_for: Callable[[Person], APIClient]
) -> None:
    api = api_client_for(admin)
    old = TargetGroup.objects.get(integration=app, display_name="Old")

    then = members_api(api, app, old.pk, story["before"].isoformat()).json()
    now = members_api(api, app, old.pk, timezone.now().isoformat()).json()

    assert member_names(then) == {"ada"}
    assert then["removed"] is False
    assert now["removed"] is True
    assert now["results"] == []
    assert "gone from the application" in now["summary"]


def test_before_the_history_starts_nothing_is_known(
    story: Any, app: Integration, admin: Person, api_client_for: Callable[[Person], APIClient]
) -> None:
    api = api_client_for(admin)
    earlier = (story["first_read"] - timedelta(days=2)).date().isoformat()

    body = members_api(api, app, group(app, "Engineers").pk, earlier).json()

    assert body["known"] is False
    assert body["results"] == []
    assert "before that nothing is known" in body["summary"]
    assert body["history_starts"] is not None


def test_a_persons_accounts_and_groups_before_and_after(
    story: Any, app: Integration, admin: Person, api_client_for: Callable[[Person], APIClient]
) -> None:
    api = api_client_for(admin)
    person = story["person"]
    url = f"/api/v1/people/{person.pk}/accounts/"

    then = api.get(url, {"as_of": story["before"].isoformat()}).json()
    now = api.get(url, {"as_of": timezone.now().isoformat()}).json()
    plain = api.get(url).json()

    assert [(a["user_name"], a["status"], a["groups"]) for a in then["results"]] == [
        ("ada", "active", ["Engineers", "Old"])
    ]
    assert [(a["user_name"], a["status"], a["groups"]) for a in now["results"]] == [("ada", "inactive", ["Engineers"])]
    assert isinstance(plain, list)
    assert plain[0]["user_name"] == "ada"
    change = AccountChange.objects.get(target_user=account(app, "ada"))
    assert (change.active_before, change.active_after, change.source) == (True, False, ChangeSource.EXTRACTION)
    dan = account(app, "dan")
    assert AccountChange.objects.filter(target_user=dan, removed_before=False, removed_after=True).exists()


def test_an_actions_outcome_shows_in_the_history_at_its_time(
    story: Any, app: Integration, requester: Person, admin: Person, api_client_for: Callable[[Person], APIClient]
) -> None:
    api = api_client_for(admin)
    engineers = group(app, "Engineers")
    bob = account(app, "bob")
    before_action = timezone.now()

    done = run_action(
        action_request(
            actor=requester,
            integration=app,
            action_type="MANAGE_RELATIONSHIPS",
            target_group=engineers,
            parameters={"add": [bob.remote_id]},
        )
    )

    assert done.state == "succeeded", done.last_error
    change = MembershipChange.objects.get(group=engineers, member_remote_id=bob.remote_id, action_id=done.pk)
    assert (change.added, change.source, change.user_id) == (True, ChangeSource.ACTION, bob.pk)
    assert before_action < change.at <= timezone.now()
    assert member_names(members_api(api, app, engineers.pk, before_action.isoformat()).json()) == {"ada", "cy"}
    assert member_names(members_api(api, app, engineers.pk).json()) == {"ada", "bob", "cy"}
    # the earlier moment still shows what the extraction found then
    assert member_names(members_api(api, app, engineers.pk, story["before"].isoformat()).json()) == {"ada", "bob"}


def test_a_deprovision_shows_in_the_account_history(
    story: Any, app: Integration, requester: Person, admin: Person, api_client_for: Callable[[Person], APIClient]
) -> None:
    cy = account(app, "cy")
    before_action = timezone.now()

    done = run_action(
        action_request(actor=requester, integration=app, action_type="DEPROVISION_IDENTITY", target_user=cy)
    )

    assert done.state == "succeeded", done.last_error
    change = AccountChange.objects.get(target_user=cy, action_id=done.pk)
    assert (change.active_before, change.active_after) == (True, False)
    removal = MembershipChange.objects.get(member_remote_id=cy.remote_id, action_id=done.pk)
    assert removal.added is False
    api = api_client_for(admin)
    engineers = group(app, "Engineers")
    assert member_names(members_api(api, app, engineers.pk, before_action.isoformat()).json()) == {"ada", "cy"}
    assert member_names(members_api(api, app, engineers.pk).json()) == {"ada"}


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("yesterday", "must be a date"),
        ("2026-13-40", "must be a date"),
        ("2999-01-01", "in the future"),
    ],
)
def test_a_bad_or_future_as_of_is_400_naming_the_parameter(
    value: str,
    words: str,
    story: Any,
    app: Integration,
    admin: Person,
    api_client_for: Callable[[Person], APIClient],
) -> None:
    api = api_client_for(admin)

    for response in (
        members_api(api, app, group(app, "Engineers").pk, value),
        api.get(f"/api/v1/people/{story['person'].pk}/accounts/", {"as_of": value}),
    ):
        assert response.status_code == 400, response.content
        body = response.json()
        assert "as_of" in str(body)
        assert words in str(body)


def test_today_means_now_and_a_date_means_the_end_of_that_day() -> None:
    now = timezone.now()
    assert as_of_parse(timezone.localdate(now).isoformat(), now=now) == now
    day = as_of_parse("2026-01-05", now=now)
    assert day is not None
    assert timezone.localtime(day).hour == 23
    assert as_of_parse("", now=now) is None


def test_the_history_is_read_as_the_lists_are(
    story: Any,
    app: Integration,
    make_person: Callable[..., Person],
    api_client_for: Callable[[Person], APIClient],
) -> None:
    nobody = api_client_for(make_person("nobody", roles=[]))
    viewer = api_client_for(make_person("vera", roles=["viewer"]))
    engineers = group(app, "Engineers")
    as_of = story["before"].isoformat()

    assert members_api(nobody, app, engineers.pk, as_of).status_code == 403
    assert nobody.get(f"/api/v1/people/{story['person'].pk}/accounts/", {"as_of": as_of}).status_code == 403
    assert members_api(APIClient(), app, engineers.pk, as_of).status_code in (401, 403)
    assert members_api(viewer, app, engineers.pk, as_of).status_code == 200
    other = TargetGroup.objects.create(
        integration=Integration.objects.create(name="Other", base_url="https://o.example.com"),
        remote_id="g",
        display_name="G",
        content_hash="x",
    )
    assert members_api(viewer, app, other.pk, as_of).status_code == 404  # not a group of this integration


def test_the_group_page_has_a_date_picker_that_shows_the_members_then(
    story: Any, app: Integration, make_person: Callable[..., Person]
) -> None:
    client = Client()
    client.force_login(make_person("vera", roles=["viewer"]))
    engineers = group(app, "Engineers")
    url = reverse("target_group_detail", args=[app.pk, engineers.pk])

    page = client.get(url).content.decode()
    then = client.get(url, {"as_of": story["before"].isoformat()}).content.decode()
    partial = client.get(url, {"as_of": story["before"].isoformat()}, headers={"HX-Request": "true"}).content.decode()
    early = client.get(url, {"as_of": "2000-01-01"}).content.decode()
    bad = client.get(url, {"as_of": "soon"})

    assert 'type="date"' in page
    assert 'name="as_of"' in page
    assert "History starts on" in page
    assert "As of " in then
    assert ">bob<" in then
    assert ">cy<" not in then
    assert "As of " in partial
    assert ">bob<" in partial
    assert "before that nothing is known" in early
    assert ">ada<" not in early
    assert bad.status_code == 200
    # The page names the field as the picker labels it, not the API's parameter.
    assert "Members as of must be a date" in bad.content.decode()
    assert "as_of must" not in bad.content.decode()
    assert "2 members</small>" in page  # Engineers holds ada and cy now


def test_the_person_page_has_a_date_picker_that_shows_the_accounts_then(
    story: Any, app: Integration, make_person: Callable[..., Person]
) -> None:
    client = Client()
    client.force_login(make_person("vera", roles=["viewer"]))
    url = reverse("person_detail", args=[story["person"].pk])

    page = client.get(url).content.decode()
    then = client.get(url, {"as_of": story["before"].isoformat()}).content.decode()
    early = client.get(url, {"as_of": "2000-01-01"}).content.decode()
    future = client.get(url, {"as_of": "2999-01-01"}).content.decode()

    assert 'type="date"' in page
    assert "Accounts as of" in page
    assert "Accounts as of is in the future: choose today or an earlier date." in future
    assert "As of " in then
    assert "Status then" in then
    assert '<span class="badge muted">Inactive</span>' in page  # ada reads inactive now, a state in words
    assert '<span class="badge ok">Active</span>' in then  # and active before
    assert "Old" in then
    assert "before that nothing is known" in early


def test_a_pushed_custom_application_keeps_its_history_too(
    peer: Peer, admin: Person, api_client_for: Callable[[Person], APIClient]
) -> None:
    from tests.integrations.test_custom_provider import application, provider

    api = api_client_for(admin)
    pk = api.post("/api/v1/providers/custom", provider(peer.url), format="json").json()["id"]
    users = [{"name": "ada", "groups": ["Engineers"]}, {"name": "bob", "groups": ["Engineers"]}]
    assert (
        api.post(f"/api/v1/providers/custom/{pk}/push", application(users, ["Engineers"]), format="json").status_code
        == 200
    )
    assert not MembershipChange.objects.exists()  # a first push writes no history row
    between = timezone.now()
    users = [{"name": "ada", "groups": ["Engineers"]}, {"name": "cy", "groups": ["Engineers"]}]
    assert (
        api.post(f"/api/v1/providers/custom/{pk}/push", application(users, ["Engineers"]), format="json").status_code
        == 200
    )
    engineers = TargetGroup.objects.get(integration_id=pk, display_name="Engineers")
    app = Integration.objects.get(pk=pk)

    assert member_names(members_api(api, app, engineers.pk, between.isoformat()).json()) == {"ada", "bob"}
    assert member_names(members_api(api, app, engineers.pk).json()) == {"ada", "cy"}
    bob = TargetUser.objects.get(integration_id=pk, user_name="bob")
    assert AccountChange.objects.filter(target_user=bob, removed_before=False, removed_after=True).exists()


def test_an_account_tied_to_a_person_later_was_not_theirs_before(
    story: Any,
    app: Integration,
    extract: Callable[[], None],
    make_person: Callable[..., Person],
    admin: Person,
    api_client_for: Callable[[Person], APIClient],
) -> None:
    cy = make_person("cy")
    tied = timezone.now()
    extract()  # the rules tie the account cy to the person cy
    url = f"/api/v1/people/{cy.pk}/accounts/"
    api = api_client_for(admin)

    assert api.get(url, {"as_of": tied.isoformat()}).json()["results"] == []
    now = api.get(url, {"as_of": timezone.now().isoformat()}).json()["results"]
    assert [(a["user_name"], a["groups"]) for a in now] == [("cy", ["Engineers"])]
    change = AccountChange.objects.get(target_user=account(app, "cy"), source=ChangeSource.CORRELATION)
    assert (change.owner_before_id, change.owner_after_id) == (None, cy.pk)
