"""Extraction against a real SCIM server, and the faults a real server cannot be made to show."""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from django.db import connection
from django.utils import timezone

from integrations.extraction import content_hash, extraction_run_execute, extraction_start, fingerprint
from integrations.models import ExtractionRun, Integration, TargetGroup, TargetMembership, TargetUser
from integrations.scim_client import (
    ScimAuthenticationFailed,
    ScimBadResponse,
    ScimClient,
    ScimTransient,
    StatelessClient,
    escape_filter_value,
)
from integrations.selectors import integration_health
from tests.conftest import WorkerProcess
from tests.integrations.conftest import ENTERPRISE, PEER_TOKEN, Front, Peer, scim_error

pytestmark = pytest.mark.django_db


def run_now(integration: Integration, client: ScimClient | None = None) -> ExtractionRun:
    run = ExtractionRun.objects.create(integration=integration, trigger="manual")
    result = extraction_run_execute(run_id=run.pk, client=client)
    assert result is not None
    return result


def test_extraction_matches_what_the_server_holds(peer: Peer, make_integration: Callable[..., Integration]) -> None:
    ada = peer.user(
        "ada",
        emails=[{"value": "ada@example.com", "primary": True}],
        title="Analyst",
        **{ENTERPRISE: {"department": "Research", "employeeNumber": "7"}},
    )
    bob = peer.user("bob", active=False)
    carl = peer.user("carl")
    peer.group("Engineers", [ada, bob])
    peer.group("Everyone", [ada, bob, carl])
    integration = make_integration(peer.url, page_size=2)  # several pages of each

    run = run_now(integration)

    assert run.status == "succeeded", run.error
    assert (run.users_seen, run.groups_seen, run.created, run.removed) == (3, 2, 5, 0)
    assert run.pages >= 3
    users = {u.user_name: u for u in TargetUser.objects.filter(integration=integration)}
    assert set(users) == {"ada", "bob", "carl"}
    assert users["ada"].email == "ada@example.com"
    assert users["ada"].resource[ENTERPRISE]["department"] == "Research"
    # Kept beside the resource, for the Users tab to show and sort by (written by COPY here).
    assert (users["ada"].department, users["ada"].title) == ("Research", "Analyst")
    assert (users["bob"].department, users["bob"].title) == ("", "")
    assert users["bob"].active is False
    engineers = TargetGroup.objects.get(integration=integration, display_name="Engineers")
    members = set(TargetMembership.objects.filter(group=engineers).values_list("user__user_name", flat=True))
    assert members == {"ada", "bob"}
    assert TargetGroup.objects.get(display_name="Everyone").member_count == 3


def test_a_second_extraction_updates_changes_and_marks_what_disappeared(
    peer: Peer, make_integration: Callable[..., Integration]
) -> None:
    ada = peer.user("ada", displayName="Ada")
    bob = peer.user("bob")
    integration = make_integration(peer.url)
    assert run_now(integration).created == 2
    changed = {
        **ada,
        "schemas": [*ada["schemas"], ENTERPRISE],
        "displayName": "Ada Lovelace",
        "title": "Countess",
        ENTERPRISE: {"department": "Engines"},
    }
    peer.http.put(f"/Users/{ada['id']}", json=changed).raise_for_status()
    peer.http.delete(f"/Users/{bob['id']}").raise_for_status()

    second = run_now(integration)

    assert (second.created, second.updated, second.removed) == (0, 1, 1)
    assert TargetUser.objects.get(user_name="ada").display_name == "Ada Lovelace"
    # The update of a changed account rewrites its department and title too.
    assert TargetUser.objects.filter(user_name="ada", department="Engines", title="Countess").exists()
    assert TargetUser.objects.get(user_name="bob").removed_at is not None
    third = run_now(integration)
    assert (third.created, third.updated, third.removed) == (0, 0, 0)


def test_custom_endpoint_paths_are_used(peer: Peer, make_integration: Callable[..., Integration]) -> None:
    peer.user("ada")
    integration = make_integration(peer.url, users_endpoint="NoSuchUsers")
    run = run_now(integration)
    assert run.status == "failed"
    assert "NoSuchUsers" in run.error
    assert "404" in run.error


def custom_paths(environ: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
    """The real server, its users under /custom-users and its groups under /custom-groups only."""
    path = environ["PATH_INFO"]
    for custom, real in (("/custom-users", "/Users"), ("/custom-groups", "/Groups")):
        if path == custom or path.startswith(f"{custom}/"):
            environ["PATH_INFO"] = real + path[len(custom) :]
            return None
    if path.startswith(("/Users", "/Groups")):
        return scim_error(404, "not here")
    return None


def test_an_application_serving_users_and_groups_under_its_own_paths_is_extracted(
    peer: Peer, make_integration: Callable[..., Integration], peer_behind: Callable[[Front], str]
) -> None:
    ada, bob = peer.user("ada"), peer.user("bob", active=False)
    peer.group("Engineers", [ada, bob])
    peer.group("Sales", [bob])
    url = peer_behind(custom_paths)
    assert httpx.get(f"{url}/Users", headers={"Authorization": f"Bearer {PEER_TOKEN}"}).status_code == 404
    integration = make_integration(url, users_endpoint="custom-users", groups_endpoint="/custom-groups", page_size=1)

    run = run_now(integration)

    assert run.status == "succeeded", run.error
    served = peer.http.get("/Users").json()["Resources"]
    assert {(u.remote_id, u.user_name, u.active) for u in TargetUser.objects.filter(integration=integration)} == {
        (r["id"], r["userName"], r.get("active", True)) for r in served
    }
    memberships = set(
        TargetMembership.objects.filter(integration=integration).values_list("group__display_name", "user__user_name")
    )
    assert memberships == {("Engineers", "ada"), ("Engineers", "bob"), ("Sales", "bob")}
    assert (run.users_seen, run.groups_seen, run.users_total, run.groups_total) == (2, 2, 2, 2)
    assert run.warnings == []  # what the real server serves is valid SCIM


def test_a_resource_whose_version_is_unchanged_is_not_rewritten_and_a_new_version_is(
    peer: Peer, make_integration: Callable[..., Integration]
) -> None:
    ada, bob = peer.user("ada"), peer.user("bob")
    engineers = peer.group("Engineers", [ada])
    integration = make_integration(peer.url)
    assert run_now(integration).created == 3
    stored = TargetUser.objects.get(integration=integration, user_name="ada")
    assert stored.content_hash == f"v:{ada['meta']['version']}"  # the server's entity tag, W/"1"
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": bob["id"]}]}],
    }
    peer.http.patch(f"/Groups/{engineers['id']}", json=patch).raise_for_status()  # the group's version moves on

    second = run_now(integration)

    assert (second.created, second.updated, second.removed) == (0, 1, 0)
    group = TargetGroup.objects.get(integration=integration, display_name="Engineers")
    assert set(group.memberships.values_list("user__user_name", flat=True)) == {"ada", "bob"}
    assert group.content_hash != f"v:{engineers['meta']['version']}"
    assert run_now(integration).updated == 0


def test_a_user_or_group_that_comes_back_unchanged_is_no_longer_marked_removed(
    peer: Peer, make_integration: Callable[..., Integration]
) -> None:
    ada = peer.user("ada")
    peer.group("Engineers", [ada])
    integration = make_integration(peer.url)
    run_now(integration)
    # Gone from one read (the application was briefly wrong, say), then back as it was.
    TargetUser.objects.filter(integration=integration).update(removed_at=timezone.now())
    TargetGroup.objects.filter(integration=integration).update(removed_at=timezone.now())

    again = run_now(integration)

    assert (again.created, again.updated, again.removed) == (0, 2, 0)  # both rewritten, unmarked
    assert TargetUser.objects.get(integration=integration).removed_at is None
    assert TargetGroup.objects.get(integration=integration).removed_at is None
    assert TargetMembership.objects.get(integration=integration).user is not None
    assert run_now(integration).updated == 0


def test_without_a_version_a_resource_is_told_by_its_content() -> None:
    ada = {"id": "1", "userName": "ada", "meta": {"lastModified": "2024-01-01T00:00:00Z"}}
    assert fingerprint(ada) == content_hash(ada)
    assert fingerprint({**ada, "meta": {"lastModified": "2025-01-01T00:00:00Z"}}) == fingerprint(ada)  # meta aside
    assert fingerprint({**ada, "userName": "ada.l"}) != fingerprint(ada)
    assert fingerprint({**ada, "meta": {"version": ""}}) == content_hash(ada)
    assert fingerprint({**ada, "meta": {"version": 'W/"7"'}}) == 'v:W/"7"'
    long = fingerprint({**ada, "meta": {"version": "x" * 300}})
    assert long.startswith("v:")
    assert len(long) == 64  # fits the column, still one per version
    assert long != fingerprint({**ada, "meta": {"version": "x" * 299}})


@pytest.mark.parametrize("status", [404, 501])
def test_an_application_without_schemas_is_extracted_with_a_warning(
    status: int, peer: Peer, make_integration: Callable[..., Integration], peer_behind: Callable[[Front], str]
) -> None:
    peer.user("ada")
    url = peer_behind(
        lambda environ: scim_error(status, "no schemas here") if environ["PATH_INFO"] == "/Schemas" else None
    )
    integration = make_integration(url, discover_extensions=True)

    run = run_now(integration)

    assert run.status == "succeeded", run.error
    assert run.error == ""
    [warning] = run.warnings
    assert warning.startswith("extension-schema discovery skipped")
    assert str(status) in warning
    assert "no /Schemas" in warning
    assert run.requests == 3  # /Schemas asked once (never again: not transient), then Users, then Groups
    assert TargetUser.objects.get(integration=integration).user_name == "ada"
    assert ExtractionRun.objects.get(pk=run.pk).warnings == [warning]
    health = integration_health(integration=integration)
    assert (health.last_error, health.freshness) == ("", "fresh")


def test_extraction_records_the_totals_the_server_reports(
    peer: Peer, make_integration: Callable[..., Integration]
) -> None:
    users = [peer.user(f"user{i}") for i in range(5)]
    peer.group("All", users)
    integration = make_integration(peer.url, page_size=2)
    run = run_now(integration)
    assert (run.users_total, run.groups_total) == (5, 1)
    stored = ExtractionRun.objects.get(pk=run.pk)
    assert (stored.users_total, stored.groups_total, stored.heartbeat_at) == (5, 1, run.finished_at)


def test_credentials_are_encrypted_at_rest(make_integration: Callable[..., Integration]) -> None:
    integration = make_integration("https://scim.example.com/v2", bearer_token="s3cret-token")
    with connection.cursor() as cursor:
        cursor.execute("SELECT bearer_token FROM integrations_integration WHERE id = %s", [integration.pk])
        stored = cursor.fetchone()[0]
    assert "s3cret" not in stored
    assert Integration.objects.get(pk=integration.pk).bearer_token == "s3cret-token"


def test_never_two_extractions_of_one_integration_at_once(make_integration: Callable[..., Integration]) -> None:
    integration = make_integration("https://scim.example.com/v2")
    first = extraction_start(integration=integration, trigger="manual")
    second = extraction_start(integration=integration, trigger="api")
    assert first.pk == second.pk
    assert ExtractionRun.objects.filter(integration=integration).count() == 1
    assert extraction_run_execute(run_id=first.pk, client=fake_client(integration, lambda r: page([]))) is not None
    assert extraction_run_execute(run_id=first.pk) is None  # already done: nobody claims it twice


# --- faults only a mock can show -------------------------------------------------------


def page(resources: list[dict[str, Any]], total: int | None = None) -> httpx.Response:
    body: dict[str, Any] = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "Resources": resources}
    body["totalResults"] = len(resources) if total is None else total
    return httpx.Response(200, json=body, headers={"Content-Type": "application/scim+json"})


def fake_client(integration: Integration, handler: Callable[[httpx.Request], httpx.Response]) -> ScimClient:
    return ScimClient(integration, http=httpx.Client(transport=httpx.MockTransport(handler)))


def users(start: int, count: int, total: int) -> list[dict[str, Any]]:
    return [{"id": str(i), "userName": f"user{i}"} for i in range(start, min(start + count, total + 1))]


def test_a_server_that_ignores_count_is_read_once(make_integration: Callable[..., Integration]) -> None:
    integration = make_integration("https://scim.example.com/v2")
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        start = int(request.url.params["startIndex"])
        return page(users(start, 1000, 250) if "Users" in request.url.path else [], total=250)

    pages = list(fake_client(integration, handler).pages("Users", page_size=100))
    assert sum(len(p) for p in pages) == 250
    assert len(seen) == 2  # everything at once, then an empty page


def test_cookies_an_application_sets_are_neither_kept_nor_sent_back(
    make_integration: Callable[..., Integration],
) -> None:
    integration = make_integration("https://scim.example.com/v2")
    sent: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers.get("Cookie"))
        return httpx.Response(200, json={"totalResults": 0}, headers={"Set-Cookie": "session=abc; Path=/"})

    client = ScimClient(integration, http=StatelessClient(transport=httpx.MockTransport(handler)))
    client.get_json("Users")
    client.get_json("Users")
    assert sent == [None, None]
    assert not client.http.cookies


def test_short_pages_and_a_wrong_total_neither_lose_users_nor_loop(
    make_integration: Callable[..., Integration],
) -> None:
    integration = make_integration("https://scim.example.com/v2")
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        start = int(request.url.params["startIndex"])
        return page(users(start, 7, 30), total=10)  # pages of 7 when 10 were asked; total too small

    pages = list(fake_client(integration, handler).pages("Users", page_size=10))
    assert sum(len(p) for p in pages) == 30
    assert calls < 10


def test_a_server_that_repeats_a_page_is_reported_not_looped(make_integration: Callable[..., Integration]) -> None:
    integration = make_integration("https://scim.example.com/v2")
    client = fake_client(integration, lambda r: page(users(1, 5, 5), total=100))
    with pytest.raises(ScimBadResponse, match="repeats the same page"):
        list(client.pages("Users", page_size=5))


class QuietClient(ScimClient):
    """A fake-server client whose backoff sleeps are recorded instead of waited out."""

    def __init__(self, integration: Integration, handler: Callable[[httpx.Request], httpx.Response]) -> None:
        self.slept: list[float] = []
        super().__init__(
            integration, http=httpx.Client(transport=httpx.MockTransport(handler)), sleep=self.slept.append
        )


def test_retry_after_is_honoured_then_the_read_succeeds(make_integration: Callable[..., Integration]) -> None:
    integration = make_integration("https://scim.example.com/v2")
    answers = iter([httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(503), page([], total=0)])
    client = QuietClient(integration, lambda r: next(answers))
    assert client.get_json("Users")["totalResults"] == 0
    assert client.slept[0] == 7
    assert 0 <= client.slept[1] <= 1  # exponential backoff with jitter, first step
    assert client.requests_made == 3


def test_429_5xx_and_timeouts_are_transient_and_give_up_after_a_few_tries(
    make_integration: Callable[..., Integration],
) -> None:
    integration = make_integration("https://scim.example.com/v2")
    limited_client = QuietClient(integration, lambda r: httpx.Response(429, headers={"Retry-After": "7"}))
    with pytest.raises(ScimTransient) as limited:
        limited_client.get_json("Users")
    assert limited.value.retry_after == 7
    assert limited_client.slept == [7, 7, 7]
    with pytest.raises(ScimTransient) as too_long:  # a wait longer than a run should block is not waited
        QuietClient(integration, lambda r: httpx.Response(429, headers={"Retry-After": "3600"})).get_json("Users")
    assert too_long.value.retry_after == 3600
    failing = QuietClient(integration, lambda r: httpx.Response(500))
    with pytest.raises(ScimTransient, match="500"):
        failing.get_json("Users")
    assert failing.requests_made == 4

    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(ScimTransient, match=r"(?i)timed out"):
        QuietClient(integration, timeout).get_json("Users")
    refused = QuietClient(integration, lambda r: httpx.Response(401))
    with pytest.raises(ScimAuthenticationFailed):
        refused.get_json("Users")
    assert refused.requests_made == 1  # not worth repeating


def test_a_list_that_is_not_a_scim_list_response_is_named(make_integration: Callable[..., Integration]) -> None:
    integration = make_integration("https://scim.example.com/v2")
    client = QuietClient(integration, lambda r: httpx.Response(200, json={"totalResults": "many", "Resources": []}))
    with pytest.raises(ScimBadResponse, match=r"not a SCIM list response \(totalResults"):
        list(client.pages("Users"))


def test_an_answer_that_is_not_scim_is_named(make_integration: Callable[..., Integration]) -> None:
    integration = make_integration("https://scim.example.com/v2")
    html = fake_client(integration, lambda r: httpx.Response(200, text="<html>", headers={"Content-Type": "text/html"}))
    with pytest.raises(ScimBadResponse, match="text/html"):
        html.get_json("Users")


def test_the_bearer_token_is_sent_and_never_appears_in_errors(make_integration: Callable[..., Integration]) -> None:
    integration = make_integration("https://scim.example.com/v2", bearer_token="tok-123")
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers["Authorization"])
        return httpx.Response(403, json={"detail": "nope"})

    with pytest.raises(ScimAuthenticationFailed) as refused:
        fake_client(integration, handler).get_json("Users")
    assert sent == ["Bearer tok-123"]
    assert "tok-123" not in str(refused.value)


def test_resources_that_are_not_valid_scim_are_kept_as_sent_with_a_warning(
    make_integration: Callable[..., Integration],
) -> None:
    integration = make_integration("https://scim.example.com/v2", discover_extensions=False)
    odd_user = {"id": "1", "userName": 42, "emails": [{"value": "no-at-sign"}], "urn:vendor:User": {"x": 1}}
    fine_group = {"id": "g", "displayName": "Team", "members": [{"value": "1", "type": "User"}]}

    def handler(request: httpx.Request) -> httpx.Response:
        if int(request.url.params["startIndex"]) > 1:
            return page([], total=1)
        return page([odd_user] if "Users" in request.url.path else [fine_group])

    run = run_now(integration, fake_client(integration, handler))

    assert run.status == "succeeded", run.error
    assert run.warnings == [
        "some users are not valid SCIM (kept as sent): User 1: userName: Input should be a valid string"
    ]
    assert ExtractionRun.objects.get(pk=run.pk).warnings == run.warnings
    stored = TargetUser.objects.get(integration=integration)
    assert (stored.user_name, stored.resource) == ("42", odd_user)


def test_valid_resources_with_extensions_and_vendor_attributes_raise_no_warning(
    make_integration: Callable[..., Integration],
) -> None:
    integration = make_integration("https://scim.example.com/v2", discover_extensions=False)
    user = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE, "urn:vendor:User"],
        "id": "1",
        "UserName": "ada",  # attribute names are case-insensitive
        "emails": [{"value": "ada@example.com", "primary": True}],
        ENTERPRISE: {"department": "R"},
        "urn:vendor:User": {"badge": 1},
        "vendorFlag": True,
    }

    def handler(request: httpx.Request) -> httpx.Response:
        first = int(request.url.params["startIndex"]) == 1
        return page(
            [user] if first and "Users" in request.url.path else [], total=1 if "Users" in request.url.path else 0
        )

    run = run_now(integration, fake_client(integration, handler))
    assert (run.status, run.warnings) == ("succeeded", [])


def test_filter_values_are_escaped() -> None:
    assert escape_filter_value('a"b\\c') == '"a\\"b\\\\c"'
    assert json.loads(escape_filter_value('x "y"')) == 'x "y"'


@pytest.mark.worker
def test_a_real_worker_extracts_from_a_real_server(
    peer: Peer, make_integration: Callable[..., Integration], start_worker: Callable[..., WorkerProcess]
) -> None:
    ada = peer.user("ada")
    peer.group("Team", [ada])
    integration = make_integration(peer.url)
    start_worker("extraction", concurrency=1)
    run = extraction_start(integration=integration, trigger="manual")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status in {"succeeded", "failed"}:
            break
        time.sleep(0.3)
    assert run.status == "succeeded", run.error
    assert run.started_at is not None
    assert (run.users_seen, run.groups_seen) == (1, 1)
    assert TargetMembership.objects.get().user == TargetUser.objects.get(user_name="ada")


def test_a_member_stored_as_an_account_during_the_read_of_groups_is_linked_to_it(
    make_integration: Callable[..., Integration],
) -> None:
    """Members are encoded before their batch is written: one that becomes an account meanwhile (a
    worker storing an account it created, say) is linked when the batch is written; a member that
    is no account (a nested group) stays unlinked."""
    integration = make_integration("https://scim.example.com/v2")
    members = [{"value": "1"}, {"value": "late"}, {"value": "nested-group"}]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Schemas"):
            return httpx.Response(404, json=scim_error(404, "no schemas here")[1])
        start = int(request.url.params["startIndex"])
        if "Users" in request.url.path:
            return page(users(start, 100, 1))
        if start == 1 and not TargetUser.objects.filter(remote_id="late").exists():
            # The users' writer is done; this list's has not started: the database is free here.
            TargetUser.objects.create(integration=integration, remote_id="late", user_name="late", content_hash="x")
        return page([{"id": "g", "displayName": "G", "members": members}] if start == 1 else [], total=1)

    run = run_now(integration, fake_client(integration, handler))

    assert run.status == "succeeded", run.error
    linked = dict(
        TargetMembership.objects.filter(group__remote_id="g").values_list("member_remote_id", "user__remote_id")
    )
    assert linked == {"1": "1", "late": "late", "nested-group": None}


@pytest.mark.parametrize("enabled_before", [True, False])
def test_the_garbage_collector_rests_while_lists_are_read_and_is_left_as_it_was(
    make_integration: Callable[..., Integration], enabled_before: bool
) -> None:
    integration = make_integration("https://scim.example.com/v2")
    during: list[bool] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Schemas"):
            return httpx.Response(404, json=scim_error(404, "no schemas here")[1])
        during.append(gc.isenabled())
        start = int(request.url.params["startIndex"])
        return page(users(start, 100, 3) if "Users" in request.url.path else [], total=3)

    if not enabled_before:
        gc.disable()
    try:
        run = run_now(integration, fake_client(integration, handler))
        after = gc.isenabled()
    finally:
        gc.enable()

    assert run.status == "succeeded", run.error
    assert during
    assert not any(during)
    assert after is enabled_before
