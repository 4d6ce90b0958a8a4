"""The probe finds which form of each SCIM request an application accepts, on the real server
and behind fronts that bend it as applications do; it writes only on its own test user and
group, only when asked, and removes them afterwards."""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from console.accounts.models import Person
from console.audit.models import AuditEvent
from integrations import dialect
from integrations.models import Integration
from integrations.probe import PREFIX, STALE_SECONDS, probe_execute, probe_run, probe_start, probe_state
from tests.conftest import WorkerProcess
from tests.integrations.conftest import PEER_TOKEN, Peer, scim_error
from tests.scim_peer import ERROR, SCIM, _serve

pytestmark = pytest.mark.django_db

SERVICE_PROVIDER_CONFIG = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"


@dataclass
class Seen:
    """A request as the front sees it; a front may change its query and body before the server does."""

    method: str
    path: str
    query: dict[str, str]
    body: Any


# A front sees each request first: it answers it itself with (status, body), or returns None
# and the real server answers the request as the front left it.
Before = Callable[[Seen], tuple[int, dict[str, Any]] | None]
# It may also rewrite the real server's answer (a JSON body, or None when there is none).
After = Callable[[Seen, Any], Any]


@dataclass
class Front:
    url: str = ""
    methods: Counter[str] = field(default_factory=Counter)


@pytest.fixture
def front(scim2_server_app: Any) -> Iterator[Callable[..., Front]]:
    """``front(before, after)``: the real server (the ``peer``'s data) behind a front, counting requests by method."""
    servers = contextlib.ExitStack()

    def serve(before: Before | None = None, after: After | None = None) -> Front:
        served = Front()

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length) if length else b""
            seen = Seen(
                environ["REQUEST_METHOD"],
                environ["PATH_INFO"],
                dict(parse_qsl(environ.get("QUERY_STRING", ""))),
                json.loads(raw) if raw else None,
            )
            served.methods[seen.method] += 1
            answer = before(seen) if before else None
            if answer is not None:
                return _respond(start_response, *answer)
            environ["QUERY_STRING"] = urlencode(seen.query)
            data = json.dumps(seen.body).encode() if seen.body is not None else b""
            environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(data), str(len(data))
            if after is None:
                return scim2_server_app(environ, start_response)
            held: dict[str, Any] = {}

            def hold(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
                held.update(status=status, headers=headers)
                return lambda chunk: None

            content = b"".join(scim2_server_app(environ, hold))
            body = after(seen, json.loads(content) if content else None)
            content = json.dumps(body).encode() if body is not None else b""
            headers = [(k, v) for k, v in held["headers"] if k.lower() != "content-length"]
            start_response(held["status"], [*headers, ("Content-Length", str(len(content)))])
            return [content]

        port = servers.enter_context(contextlib.contextmanager(_serve)(app))
        served.url = f"http://localhost:{port}"
        return served

    with servers:
        yield serve


def _respond(start_response: Callable[..., Any], status: int, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(f"{status} Status", [("Content-Type", SCIM), ("Content-Length", str(len(data)))])
    return [data]


@pytest.fixture
def make_integration(db: None) -> Callable[..., Integration]:
    def make(url: str, **fields: Any) -> Integration:
        fields.setdefault("bearer_token", PEER_TOKEN)
        return Integration.objects.create(name=fields.pop("name", "Probed app"), base_url=url, **fields)

    return make


def populate(peer: Peer) -> None:
    """Accounts and a group, as an application in use has them."""
    ada = peer.user("ada", externalId="e-ada", displayName="Ada Lovelace")
    bob = peer.user("bob", displayName="Bob")
    peer.user("carl")
    peer.group("Engineers", [ada, bob])


def leftovers(peer: Peer) -> list[str]:
    """What the probe would have left in the application: resources with its prefix."""
    users = peer.http.get("/Users").json().get("Resources") or []
    groups = peer.http.get("/Groups").json().get("Resources") or []
    return [u["userName"] for u in users if u["userName"].startswith(PREFIX)] + [
        g["displayName"] for g in groups if g["displayName"].startswith(PREFIX)
    ]


def profile(integration: Integration) -> dict[str, Any]:
    integration.refresh_from_db()
    return {key: dialect.value(integration, key) for key in dialect.CAPABILITIES}


EVERYTHING_WORKS = {
    "filter": True,
    "filter_or": True,
    "filter_members": True,
    "count": True,
    "patch_filter_path_remove": True,
    "patch_value_list_remove": False,  # scim2-server: "a remove operation carries no value"
    "patch_replace": True,
    "put": True,
    "etag": True,
    "active": True,
    "hard_delete": True,
    "groups": True,
    "member_reference": "id",
}


# --- the standard server ------------------------------------------------------------------


def test_a_standard_server_works_in_every_form_but_the_value_list_remove(
    peer: Peer, front: Callable[..., Front], make_integration: Callable[..., Integration], admin: Person
) -> None:
    populate(peer)
    served = front()
    integration = make_integration(served.url)
    steps: list[tuple[str, int, int]] = []

    report = probe_run(integration=integration, writes=True, actor=admin, progress=lambda *step: steps.append(step))

    assert report.error == ""
    assert profile(integration) == EVERYTHING_WORKS, report.notes
    assert steps[0] == ("Reading ServiceProviderConfig", 0, 14)
    assert steps[-1] == ("Deleting the test user and group", 13, 14)
    assert "remove operation carries no value" in report.notes["patch_value_list_remove"]
    assert "answered 400" in report.notes["patch_value_list_remove"]
    assert "path-less replace works" in report.notes["patch_replace"]
    assert "sw works" in report.notes["filter"]
    assert "co works" in report.notes["filter"]
    assert leftovers(peer) == []
    assert any("was deleted" in remark for remark in report.remarks)
    assert integration.dialect_probed_at is not None
    assert {entry["source"] for entry in integration.dialect.values()} == {"probe"}
    assert served.methods["POST"] == 2  # the test user and the test group, nothing else
    assert served.methods["DELETE"] == 2


def test_without_writes_only_reads_are_sent_and_write_checks_stay_unknown(
    peer: Peer, front: Callable[..., Front], make_integration: Callable[..., Integration], admin: Person
) -> None:
    populate(peer)
    served = front()
    integration = make_integration(served.url)

    report = probe_run(integration=integration, writes=False, actor=admin)

    assert set(served.methods) == {"GET"}
    assert report.error == ""
    found = profile(integration)
    assert {k: v for k, v in found.items() if v is not None} == {
        "filter": True,
        "filter_or": True,
        "filter_members": True,
        "count": True,
        "groups": True,
        "member_reference": "id",
    }, report.notes
    assert "probe with writes" in report.unsettled["put"]
    assert "stale If-Match" in report.unsettled["etag"]
    assert report.remarks == []


# --- fronts that bend SCIM as applications do ------------------------------------------------


def test_a_filter_the_application_ignores_counts_as_refused(
    peer: Peer, front: Callable[..., Front], make_integration: Callable[..., Integration]
) -> None:
    def ignore_filter(seen: Seen) -> None:
        seen.query.pop("filter", None)  # the whole list comes back, whatever was asked

    populate(peer)
    integration = make_integration(front(ignore_filter).url)

    report = probe_run(integration=integration, writes=True)

    found = profile(integration)
    assert (found["filter"], found["filter_or"], found["filter_members"]) == (False, False, False)
    assert "it ignores the filter" in report.notes["filter"]
    assert "match neither clause" in report.notes["filter_or"]
    assert "it ignores the filter" in report.notes["filter_members"]
    assert found["count"] is True
    assert found["patch_replace"] is True
    assert leftovers(peer) == []


def test_filters_refused_with_400_and_501_and_a_config_that_says_so(
    peer: Peer, front: Callable[..., Front], make_integration: Callable[..., Integration]
) -> None:
    def no_filters(seen: Seen) -> tuple[int, dict[str, Any]] | None:
        if seen.path == "/ServiceProviderConfig":
            return 200, {
                "schemas": [SERVICE_PROVIDER_CONFIG],
                "patch": {"supported": True},
                "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
                "filter": {"supported": False, "maxResults": 0},
                "changePassword": {"supported": False},
                "sort": {"supported": False},
                "etag": {"supported": True},
                "authenticationSchemes": [],
            }
        if "filter" in seen.query:
            if seen.path.startswith("/Groups"):
                return scim_error(501, "filtering groups is not implemented")
            return 400, {"schemas": [ERROR], "status": "400", "scimType": "invalidFilter", "detail": "no filters here"}
        return None

    populate(peer)
    served = front(no_filters)
    integration = make_integration(served.url)

    report = probe_run(integration=integration, writes=True)

    found = profile(integration)
    assert (found["filter"], found["filter_or"], found["filter_members"]) == (False, False, False)
    assert report.notes["filter"].startswith("ServiceProviderConfig says filter is not supported")
    assert "answered 400 (refused): no filters here" in report.notes["filter"]
    assert "answered 501 (not implemented): filtering groups is not implemented" in report.notes["filter_members"]
    assert found["member_reference"] == "id"
    assert found["hard_delete"] is True
    assert leftovers(peer) == []


def test_a_filter_path_remove_answered_501_leaves_the_value_list(
    peer: Peer, front: Callable[..., Front], make_integration: Callable[..., Integration]
) -> None:
    def value_lists_only(seen: Seen) -> tuple[int, dict[str, Any]] | None:
        if seen.method != "PATCH" or not isinstance(seen.body, dict):
            return None
        operations = seen.body.get("Operations") or []
        if any(op.get("op") == "remove" and "[" in str(op.get("path")) for op in operations):
            return scim_error(501, "filters in PATCH paths are not implemented")
        # What the application does with a value list, the real server does with a filter path.
        seen.body["Operations"] = [
            {"op": "remove", "path": f'members[value eq "{value["value"]}"]'}
            for op in operations
            if op.get("op") == "remove" and op.get("path") == "members"
            for value in op.get("value") or []
        ] or operations
        return None

    populate(peer)
    integration = make_integration(front(value_lists_only).url)

    report = probe_run(integration=integration, writes=True)

    found = profile(integration)
    assert (found["patch_filter_path_remove"], found["patch_value_list_remove"]) == (False, True), report.notes
    assert "answered 501 (not implemented): filters in PATCH paths" in report.notes["patch_filter_path_remove"]
    assert leftovers(peer) == []


def test_an_application_that_fails_on_any_count_pages_without_it(
    peer: Peer, front: Callable[..., Front], make_integration: Callable[..., Integration]
) -> None:
    def count_breaks(seen: Seen) -> tuple[int, dict[str, Any]] | None:
        return scim_error(500, "count is not a column") if "count" in seen.query else None

    populate(peer)
    served = front(count_breaks)
    integration = make_integration(served.url)

    report = probe_run(integration=integration, writes=False)

    found = profile(integration)
    assert found["count"] is False
    assert "answered 500 (it failed): count is not a column" in report.notes["count"]
    assert "without count was answered" in report.notes["count"]
    assert found["groups"] is True  # its groups were read without count, not taken for refused
    assert (found["filter"], found["member_reference"]) == (True, "id")
    assert set(served.methods) == {"GET"}


def test_a_patch_replace_answered_501_falls_to_put(
    peer: Peer, front: Callable[..., Front], make_integration: Callable[..., Integration]
) -> None:
    def no_display_name_patch(seen: Seen) -> tuple[int, dict[str, Any]] | None:
        if seen.method == "PATCH" and isinstance(seen.body, dict):
            for op in seen.body.get("Operations") or []:
                if op.get("op") == "replace" and op.get("path") == "displayName":
                    return scim_error(501, "replace of displayName is not implemented")
        return None

    populate(peer)
    integration = make_integration(front(no_display_name_patch).url)

    report = probe_run(integration=integration, writes=True)

    found = profile(integration)
    assert found["patch_replace"] is False
    assert "answered 501 (not implemented): replace of displayName" in report.notes["patch_replace"]
    assert "path-less replace works" in report.notes["patch_replace"]
    assert (found["put"], found["etag"], found["active"]) == (True, True, True), report.notes
    assert report.notes["etag"].endswith("answered 412")
    assert leftovers(peer) == []


def test_groups_that_hold_user_names_are_found_out(
    peer: Peer, front: Callable[..., Front], make_integration: Callable[..., Integration]
) -> None:
    """The application's groups list their members by userName; it takes userNames (and ids) when told."""

    def names() -> dict[str, str]:
        return {u["id"]: u["userName"] for u in peer.http.get("/Users").json().get("Resources") or []}

    def by_name(seen: Seen) -> None:
        """What the application takes as a member (a userName), the real server gets as the user's id."""
        if not seen.path.startswith("/Groups"):
            return
        ids = {name: user_id for user_id, name in names().items()}

        def in_filter(text: str) -> str:  # members.value eq "name", members[value eq "name"]
            for name, user_id in ids.items():
                text = text.replace(f'value eq "{name}"', f'value eq "{user_id}"')
            return text

        if "filter" in seen.query:
            seen.query["filter"] = in_filter(seen.query["filter"])
        for op in (seen.body or {}).get("Operations") or []:
            if op.get("path"):
                op["path"] = in_filter(op["path"])
            for member in op.get("value") if isinstance(op.get("value"), list) else []:
                member["value"] = ids.get(member["value"], member["value"])

    def show_names(seen: Seen, body: Any) -> Any:
        if not seen.path.startswith("/Groups") or not isinstance(body, dict):
            return body
        held = names()
        for group in body.get("Resources") or [body]:
            for member in group.get("members") or []:
                member["value"] = held.get(member["value"], member["value"])
        return body

    populate(peer)
    read_only = make_integration(front(by_name, show_names).url, name="Read only")
    report = probe_run(integration=read_only, writes=False)
    assert profile(read_only)["member_reference"] == "userName", report.unsettled
    assert "a user's userName" in report.notes["member_reference"]

    integration = make_integration(front(by_name, show_names).url)
    report = probe_run(integration=integration, writes=True)

    found = profile(integration)
    assert found["member_reference"] == "userName"
    assert "lists the user's userName" in report.notes["member_reference"]
    assert (found["filter_members"], found["patch_filter_path_remove"]) == (True, True), report.notes
    assert leftovers(peer) == []
    rows = {row["key"]: row for row in dialect.rows(integration)}
    assert rows["member_reference"]["state"] == "Holds userName"


def test_a_refused_delete_leaves_the_test_user_deactivated_and_says_so(
    peer: Peer, front: Callable[..., Front], make_integration: Callable[..., Integration]
) -> None:
    def no_user_deletes(seen: Seen) -> tuple[int, dict[str, Any]] | None:
        if seen.method == "DELETE" and seen.path.startswith("/Users"):
            return scim_error(403, "users are never deleted here")
        return None

    populate(peer)
    integration = make_integration(front(no_user_deletes).url)

    report = probe_run(integration=integration, writes=True)

    assert profile(integration)["hard_delete"] is False
    assert "answered 403 (refused): users are never deleted here" in report.notes["hard_delete"]
    name = report.test_name
    assert leftovers(peer) == [name]  # the group went; the user stays, deactivated
    (kept,) = peer.http.get("/Users", params={"filter": f'userName eq "{name}"'}).json()["Resources"]
    assert kept["active"] is False
    assert any(f"{name} could not be deleted" in r and "deactivated" in r for r in report.remarks)


def test_an_echoed_token_never_reaches_the_findings_or_the_audit(
    peer: Peer, front: Callable[..., Front], make_integration: Callable[..., Integration], admin: Person
) -> None:
    def echo(seen: Seen) -> tuple[int, dict[str, Any]] | None:
        if "count" in seen.query:
            return scim_error(400, f"count refused for Bearer {PEER_TOKEN} (token {PEER_TOKEN})")
        return None

    populate(peer)
    integration = make_integration(front(echo).url)

    report = probe_run(integration=integration, writes=False, actor=admin)

    assert profile(integration)["count"] is False
    assert "count refused" in report.notes["count"]
    event = AuditEvent.objects.get(verb="integration.probed")
    integration.refresh_from_db()
    for where in (json.dumps(report.as_dict()), json.dumps(event.details), json.dumps(integration.dialect)):
        assert PEER_TOKEN not in where
    assert event.actor_id == admin.pk
    assert event.details["writes"] is False
    assert event.details["found"]["count"] is False


def test_an_application_that_cannot_be_read_settles_nothing(make_integration: Callable[..., Integration]) -> None:
    integration = make_integration("http://127.0.0.1:9/scim/v2")  # nothing listens on port 9
    report = probe_run(integration=integration, writes=True)
    assert "got no answer" in report.error
    integration.refresh_from_db()
    assert (integration.dialect, integration.dialect_probed_at) == ({}, None)
    assert AuditEvent.objects.get(verb="integration.probed").details["error"] == report.error


# --- the API and the page ------------------------------------------------------------------------


def test_the_api_starts_a_probe_for_admins_and_shows_the_profile_to_viewers(
    peer: Peer,
    front: Callable[..., Front],
    make_integration: Callable[..., Integration],
    make_person: Callable[..., Person],
    admin: Person,
    api_client_for: Callable[[Person], APIClient],
    django_capture_on_commit_callbacks: Any,
) -> None:
    populate(peer)
    integration = make_integration(front().url)
    url = f"/api/v1/integrations/{integration.pk}/probe/"
    viewer = api_client_for(make_person("vera", roles=["viewer"]))
    operator = api_client_for(make_person("otto", roles=["operator"]))
    assert viewer.post(url, {"writes": True}, format="json").status_code == 403
    assert operator.post(url, {}, format="json").status_code == 403
    assert api_client_for(admin).post(url, {"writes": "perhaps"}, format="json").status_code == 400

    with django_capture_on_commit_callbacks() as queued:
        started = api_client_for(admin).post(url, {"writes": True}, format="json")
    assert started.status_code == 202, started.json()
    body = started.json()
    assert (body["queued"], body["probe"]["state"], body["probe"]["writes"]) == (True, "queued", True)
    assert body["probe"]["requested_by"] == admin.username
    assert len(queued) == 1  # the task, sent once the request's transaction commits
    again = api_client_for(admin).post(url, {"writes": False}, format="json").json()
    assert (again["queued"], again["probe"]["writes"]) == (False, True)  # the one under way

    probe_execute(integration_id=integration.pk, writes=True, actor_id=admin.pk)  # what the worker does

    shown = viewer.get(url).json()
    assert shown["probe"]["state"] == "succeeded"
    assert shown["probe"]["active"] is False
    assert shown["probe"]["report"]["found"]["patch_value_list_remove"] is False
    assert any("was deleted" in remark for remark in shown["probe"]["report"]["remarks"])
    assert shown["dialect_probed_at"] is not None
    detail = viewer.get(f"/api/v1/integrations/{integration.pk}/").json()
    rows = {row["key"]: row for row in detail["dialect"]}
    assert set(rows) == set(dialect.CAPABILITIES)
    assert (rows["filter"]["state"], rows["filter"]["source"]) == ("Works", "Probe")
    assert rows["member_reference"]["state"] == "Holds id"
    assert rows["patch_value_list_remove"]["state"] == "Refused"
    assert rows["patch_value_list_remove"]["console_does"] == "Removes members by filter path."
    assert detail["dialect_probed_at"] is not None
    # Read-only: an update cannot write the profile.
    api_client_for(admin).patch(
        f"/api/v1/integrations/{integration.pk}/", {"dialect": {"filter": {"value": False}}}, format="json"
    )
    assert profile(integration)["filter"] is True
    assert AuditEvent.objects.filter(verb="integration.probed", actor=admin).count() == 1
    assert leftovers(peer) == []


def test_the_page_has_a_probe_button_and_shows_the_profile_in_words(
    peer: Peer,
    front: Callable[..., Front],
    make_integration: Callable[..., Integration],
    make_person: Callable[..., Person],
    admin: Person,
    admin_client: Client,
) -> None:
    populate(peer)
    integration = make_integration(front().url)
    dialect.learn(integration, "filter_or", False, note="Users: a long or was answered 414")
    page = admin_client.get(f"/integrations/{integration.pk}/").content.decode()
    assert 'data-testid="probe-dialog"' in page
    assert 'name="writes"' in page
    assert "Start probe" in page
    assert "lifecycle-console-probe-" in page
    assert "Not probed yet." in page
    assert "Not known yet" in page
    assert "Tries the standard form first." in page
    assert "Learned from a refusal" in page
    assert "Looks each account up on its own" in page
    viewer = Client()
    viewer.force_login(make_person("vera", roles=["viewer"]))
    seen = viewer.get(f"/integrations/{integration.pk}/").content.decode()
    assert 'data-testid="dialect-table"' in seen
    assert 'data-testid="probe-dialog"' not in seen
    assert viewer.post(f"/integrations/{integration.pk}/probe/", {"writes": "1"}).status_code == 403

    started = admin_client.post(f"/integrations/{integration.pk}/probe/", {"writes": "1"})
    assert started.status_code == 302
    assert started["Location"] == f"/integrations/{integration.pk}/#dialect"
    page = admin_client.get(f"/integrations/{integration.pk}/").content.decode()
    assert "Waiting for a worker" in page
    assert "(with writes)" in page
    assert f'hx-get="/integrations/{integration.pk}/probe/"' in page  # polls while it is under way

    probe_execute(integration_id=integration.pk, writes=True, actor_id=admin.pk)

    region = admin_client.get(f"/integrations/{integration.pk}/probe/", headers={"HX-Request": "true"})
    html = region.content.decode()
    assert html.lstrip().startswith('<section class="card" id="dialect"')
    assert "hx-get" not in html  # done: no more polling
    assert "Probed" in html
    assert "12 work, 1 refused" in html
    assert "Holds id" in html
    assert "Works" in html
    assert "Refused" in html
    assert "Removes members by filter path." in html  # what the console does instead
    assert html.count(">Probe<") == len(dialect.CAPABILITIES)  # the source of every row
    assert f"The test user {PREFIX}" in html
    assert "was deleted." in html
    assert "Learned from a refusal" not in html  # the probe's finding replaced the refusal it had learned


def test_a_read_only_probe_says_why_the_write_checks_are_not_known(
    peer: Peer, front: Callable[..., Front], make_integration: Callable[..., Integration], admin_client: Client
) -> None:
    populate(peer)
    integration = make_integration(front().url)
    region = admin_client.post(f"/integrations/{integration.pk}/probe/", headers={"HX-Request": "true"})
    assert region.status_code == 200
    queued = region.content.decode()  # the Dialect region in place, polling
    assert queued.lstrip().startswith('<section class="card" id="dialect"')
    assert "Queued" in queued
    assert "(with writes)" not in queued  # the box was left unticked
    assert "hx-get" in queued
    probe_execute(integration_id=integration.pk, writes=False)
    html = admin_client.get(f"/integrations/{integration.pk}/").content.decode()
    assert "(reads only," in html
    assert "Latest probe: a write check: probe with writes to try it" in html


def test_a_probe_is_never_started_twice_and_a_lost_one_says_so(
    make_integration: Callable[..., Integration], admin: Person
) -> None:
    integration = make_integration("http://127.0.0.1:9/scim/v2")
    first, queued = probe_start(integration=integration, writes=False, actor=admin)
    assert (first["state"], queued) == ("queued", True)
    _, queued = probe_start(integration=integration, writes=True, actor=admin)
    assert queued is False
    # Nothing took it for longer than a probe lasts: it was lost, and a new one may start.
    state = cache.get(f"integrations:probe:{integration.pk}")
    long_ago = timezone.now() - timedelta(seconds=STALE_SECONDS + 1)
    cache.set(f"integrations:probe:{integration.pk}", {**state, "queued_at": long_ago.isoformat()})
    lost = probe_state(integration=integration)
    assert lost is not None
    assert (lost["state"], lost["active"]) == ("lost", False)
    assert "no worker took it" in lost["error"]
    _, queued = probe_start(integration=integration, writes=True, actor=admin)
    assert queued is True


@pytest.mark.worker
def test_a_real_worker_probes_through_the_api(
    peer: Peer,
    front: Callable[..., Front],
    make_integration: Callable[..., Integration],
    admin: Person,
    api_client_for: Callable[[Person], APIClient],
    start_worker: Callable[..., WorkerProcess],
) -> None:
    populate(peer)
    integration = make_integration(front().url)
    start_worker("probe", concurrency=1)
    url = f"/api/v1/integrations/{integration.pk}/probe/"
    client = api_client_for(admin)
    assert client.post(url, {"writes": True}, format="json").status_code == 202
    deadline = time.monotonic() + 60
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        state = client.get(url).json()["probe"]
        if not state["active"]:
            break
        time.sleep(0.3)
    assert state["state"] == "succeeded", state
    assert profile(integration) == EVERYTHING_WORKS
    assert leftovers(peer) == []
