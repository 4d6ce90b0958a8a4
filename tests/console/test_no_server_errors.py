"""No input, however bad, gets a server error: every API route, the UI's detail pages, /scim/v2."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from rest_framework.test import APIClient

from console.accounts.models import Person, Role, Team
from console.accounts.services import api_key_create
from integrations.models import Integration, TargetGroup, TargetUser
from provisioning.models import AccessRequest, Action, ActionState, ActionType, AttributeTransformer, Batch

pytestmark = pytest.mark.django_db

# Ids a path may be given: not numbers, not positive, not whole, too long, too big, not ASCII,
# and numbers that name nothing.
BAD_IDS = [
    "abc",
    "0",
    "99999999",
    "-1",
    "1.5",
    "1e3",
    "x" * 300,
    "9" * 40,
    "ünïcødé-名前",
    "%20",
    "null",
]
# Whatever a property may be given instead of what it wants.
BAD_VALUES: list[Any] = [None, "", "abc", "x" * 5000, -1, 10**30, 1.5, True, [], [None], {}, {"a": {"b": []}}]
# Whole bodies that are wrong before any property is read.
BAD_BODIES: list[tuple[str, str]] = [
    ("", "application/json"),
    ("{", "application/json"),
    ("[]", "application/json"),
    ("null", "application/json"),
    ('"text"', "application/json"),
    ("12", "application/json"),
    ('{"no_such_field": 1}', "application/json"),
    ("\x00\xff", "application/json"),
    ("a=1&b=", "application/x-www-form-urlencoded"),
    ("<xml/>", "application/xml"),
]
BAD_QUERIES = [
    {"page_size": "abc"},
    {"page_size": "-1"},
    {"page_size": str(10**30)},
    {"cursor": "garbage"},
    {"cursor": "x" * 300},
    {"ordering": "no_such_field"},
    {"as_of": "yesterday"},
    {"integration": "²", "person": "x"},  # "²".isdigit(), and yet int("²") fails
]
WRITES = ("post", "put", "patch")
BAD_QUERY_VALUES = ["abc", "", "-1", "1.5", "²", "9" * 40, "x" * 300, "ü名", "2026-13-45", "null"]


@pytest.fixture
def admin_api(admin: Person) -> APIClient:
    token = api_key_create(actor=admin, owner=admin, name="walker").token
    # A server error is an answer to count, not an exception to stop at.
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def schema(admin_api: APIClient) -> dict[str, Any]:
    response = admin_api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return json.loads(response.content)


@pytest.fixture
def real_ids(admin: Person, make_person: Callable[..., Person]) -> dict[str, int]:
    """One row of each kind, so bad bodies reach real objects too (ids keyed by the path's first part)."""
    someone = make_person("someone", roles=["operator"])
    integration = Integration.objects.create(
        name="Walker", base_url="http://127.0.0.1:9/scim/v2", bearer_token="t", timeout_seconds=1
    )
    user = TargetUser.objects.create(integration=integration, remote_id="u1", user_name="someone", content_hash="h")
    group = TargetGroup.objects.create(integration=integration, remote_id="g1", display_name="Staff", content_hash="h")
    batch = Batch.objects.create(integration=integration, action_type=ActionType.DEPROVISION_IDENTITY)
    action = Action.objects.create(
        integration=integration,
        action_type=ActionType.DEPROVISION_IDENTITY,
        state=ActionState.PENDING_APPROVAL,
        requested_by=someone,
        target_user=user,
        subject="someone",
        batch=batch,
    )
    access = AccessRequest.objects.create(
        integration=integration,
        target_user=user,
        target_group=group,
        operation=AccessRequest.Operation.ADD,
        justification="needs it",
        requested_by=someone,
    )
    transformer = AttributeTransformer.objects.create(
        integration=integration, attribute_name="title", source=AttributeTransformer.Source.STATIC_VALUE, value="x"
    )
    team = Team.objects.create(name="Walkers")
    role = Role.objects.create(name="walker", label="Walker")
    key = api_key_create(actor=admin, owner=someone, name="someone's")
    from console.audit.models import AuditEvent
    from lifecycle.models import BirthrightMapping, LifecyclePolicy

    policy = LifecyclePolicy.objects.create(integration=integration, mode="simulate", all_active_people=True)
    mapping = BirthrightMapping.objects.create(integration=integration, team=team, state="pending")
    mapping.groups.set([group])

    return {
        "birthright-mappings": mapping.pk,
        "lifecycle-policies": policy.pk,
        "access-requests": access.pk,
        "actions": action.pk,
        "api-keys": key.key.pk,
        "audit-events": AuditEvent.objects.latest("pk").pk,
        "batches": batch.pk,
        "integrations": integration.pk,
        "people": someone.pk,
        "providers": integration.pk,
        "roles": role.pk,
        "teams": team.pk,
        "transformers": transformer.pk,
    }


def as_walked(path: str) -> str:
    """A schema path with each of its parameters written ``{id}`` (``{group_pk}`` too), as the walks fill them."""
    return re.sub(r"\{\w+\}", "{id}", path)


def operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield as_walked(path), method, operation


def body_properties(schema: dict[str, Any], operation: dict[str, Any]) -> list[str]:
    content = operation.get("requestBody", {}).get("content", {})
    ref = content.get("application/json", {}).get("schema", {}).get("$ref", "")
    component = schema["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {}) if ref else {}
    return sorted(component.get("properties", {}))


class _Undone(Exception):
    def __init__(self, response: Any) -> None:
        self.response = response


def send(
    client: APIClient, method: str, url: str, body: str = "", content_type: str = "application/json", **query: Any
) -> Any:
    """One request in a savepoint, undone if it failed, so that one failure does not hide the next."""
    try:
        with transaction.atomic():
            if method == "get":
                response = client.get(url, query)
            else:
                response = getattr(client, method)(url, data=body, content_type=content_type)
            if response.status_code >= 500:
                raise _Undone(response)
    except _Undone as undone:
        response = undone.response
    return response


def problem(response: Any, method: str, url: str, what: str = "") -> str:
    return f"{method.upper()} {url} {what}-> {response.status_code} {response.content[:200]!r}"


def api_routes() -> Iterator[str]:
    """Every route under /api/v1/ that the URL configuration answers, as the schema writes paths."""
    from django.urls import URLPattern, URLResolver, get_resolver

    def walk(patterns: list[Any], prefix: str) -> Iterator[str]:
        for entry in patterns:
            route = str(entry.pattern)
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, prefix + route)
            elif isinstance(entry, URLPattern) and (prefix + route).lstrip("^").startswith("api/v1/"):
                full = (prefix + route).replace("^", "").replace("$", "").replace("/?", "/")
                full = re.sub(r"\(\?P<\w+>[^)]*\)", "{id}", full)  # a router's (?P<pk>[0-9]+)
                yield "/" + re.sub(r"<(?:\w+:)?\w+>", "{id}", full)  # a path's <int:pk>

    yield from walk(get_resolver().url_patterns, "")


def test_the_schema_names_every_api_route_so_the_walks_below_miss_none(schema: dict[str, Any]) -> None:
    routes = set(api_routes())
    assert len(routes) > 40
    paths = {as_walked(path) for path in schema["paths"]}
    assert routes == paths, f"missing from the schema: {sorted(routes - paths)}"
    # among them the routes added last, named here so that their absence would be seen
    assert {
        "/api/v1/people/{id}/accounts/",
        "/api/v1/people/{id}/revocations/",
        "/api/v1/integrations/{id}/revocation-latency/",
        "/api/v1/integrations/{id}/probe/",
        "/api/v1/integrations/{id}/drift/",
        "/api/v1/integrations/{id}/drift/runs/",
        "/api/v1/integrations/{id}/drift/compute/",
        "/api/v1/integrations/{id}/groups/{id}/members/",
    } <= routes


def test_every_api_route_answers_json_404_for_an_id_that_is_not_a_number_or_names_nothing(
    admin_api: APIClient, schema: dict[str, Any]
) -> None:
    wrong = []
    detail_routes = 0
    for path, method, _ in operations(schema):
        if "{id}" not in path:
            continue
        detail_routes += 1
        for bad in BAD_IDS:
            url = path.replace("{id}", bad if bad == "%20" else re.sub(r"[/?#%]", "", bad))
            response = send(admin_api, method, url, "{}")
            if response.status_code != 404 or response.json().get("code") != "not_found":
                wrong.append(problem(response, method, url))
    assert detail_routes > 30
    assert not wrong, "\n".join(wrong)


def test_no_api_route_answers_5xx_to_bad_bodies_or_queries(
    admin_api: APIClient, schema: dict[str, Any], real_ids: dict[str, int]
) -> None:
    failures = []
    deletes = []
    for path, method, operation in operations(schema):
        first = path.removeprefix("/api/v1/").split("/")[0]
        url = path.replace("{id}", str(real_ids.get(first, 1)))
        if method == "delete":
            deletes.append(url)
            continue
        if method == "get":
            declared = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
            queries = BAD_QUERIES + [{name: value} for name in declared for value in BAD_QUERY_VALUES]
            for query in queries:
                response = send(admin_api, "get", url, **query)
                if response.status_code >= 500:
                    failures.append(problem(response, method, url, f"{query} "))
            continue
        bodies = list(BAD_BODIES)
        properties = body_properties(schema, operation)
        for value in BAD_VALUES:
            bodies.append((json.dumps(dict.fromkeys(properties, value)), "application/json"))
            bodies.extend((json.dumps({name: value}), "application/json") for name in properties)
        for body, content_type in bodies:
            response = send(admin_api, method, url, body, content_type)
            if response.status_code >= 500:
                failures.append(problem(response, method, url, f"{body[:80]!r} "))
    for url in deletes:
        for body, content_type in BAD_BODIES[:3]:
            response = send(admin_api, "delete", url, body, content_type)
            if response.status_code >= 500:
                failures.append(problem(response, "delete", url, f"{body!r} "))
    assert not failures, "\n".join(failures)


def ui_routes() -> Iterator[tuple[str, list[str]]]:
    """Every UI route with a number in its path, as a ``str.format`` template and the numbers' names."""
    from django.urls import URLPattern, URLResolver, get_resolver

    def walk(patterns: list[Any], prefix: str) -> Iterator[tuple[str, list[str]]]:
        for entry in patterns:
            route = str(entry.pattern)
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, prefix + route)
            elif isinstance(entry, URLPattern) and "<int:" in route:
                full = prefix + route
                if not full.startswith(("api/", "scim/")):
                    yield "/" + re.sub(r"<int:(\w+)>", r"{\1}", full), re.findall(r"<int:(\w+)>", full)

    yield from walk(get_resolver().url_patterns, "")


def test_ui_pages_answer_404_for_an_id_that_is_not_a_number_or_names_nothing(
    admin_client: Client, real_ids: dict[str, int]
) -> None:
    admin_client.raise_request_exception = False
    routes = list(ui_routes())
    assert len(routes) > 20
    wrong = []
    for template, names in routes:
        for bad in ["abc", "0", "99999999", "-1", "1.5", "9" * 40, "x" * 300, "ünï名"]:
            url = template.format(**dict.fromkeys(names, bad))
            for method in ("get", "post"):
                response = getattr(admin_client, method)(url)
                # 405: a route for the other method; 403: a POST to a page that only reads
                if response.status_code not in ((404, 405) if method == "get" else (403, 404, 405)):
                    wrong.append(problem(response, method, url))
    assert not wrong, "\n".join(wrong)


def test_named_detail_pages_with_a_word_for_an_id_are_html_404(admin_client: Client) -> None:
    for url in ("/integrations/abc/", "/actions/abc/", "/people/abc/", "/teams/abc/", "/actions/batches/abc/"):
        response = admin_client.get(url)
        assert response.status_code == 404, url
        assert response["Content-Type"].startswith("text/html")


def test_approving_an_action_by_a_word_answers_the_api_json_404(admin_api: APIClient) -> None:
    response = admin_api.post("/api/v1/actions/abc/approve/", {}, format="json")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


def test_rejecting_a_batch_that_is_not_there_is_404_before_its_comment_is_asked_for(admin_api: APIClient) -> None:
    response = admin_api.post("/api/v1/batches/99999999/reject/", {}, format="json")
    assert response.status_code == 404


def test_a_huge_extraction_interval_is_refused_with_the_reason(admin_api: APIClient, real_ids: dict[str, int]) -> None:
    response = admin_api.patch(
        f"/api/v1/integrations/{real_ids['integrations']}/", {"extraction_interval_minutes": 10**30}, format="json"
    )
    assert response.status_code == 400
    assert "a year" in response.json()["fields"]["extraction_interval_minutes"][0]


SCIM_BODIES: list[Any] = [
    None,
    [],
    "text",
    12,
    {},
    {"schemas": "x"},
    {"userName": None},
    {"userName": 12, "active": "maybe"},
    {"userName": "x" * 5000},
    {"displayName": ["a"], "members": "all"},
    {"members": [{"value": "abc"}, {"value": None}, {"value": "9" * 40}, 5]},
    {"startIndex": 10**40, "count": 10**40},
    {"startIndex": "x", "count": [], "filter": 5, "attributes": "userName"},
    {"Operations": "x"},
    {"Operations": [{"op": "explode"}]},
    {"Operations": [{"op": "replace", "path": "((", "value": 1}]},
    {"Operations": [{"op": "add", "path": "members", "value": [{"value": "ünï"}]}]},
    {"Operations": [{"op": "remove", "path": 'members[value eq "x"'}]},
    {"name": "x", "emails": [None, 5, {"value": []}], "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": 5},
]


@pytest.fixture
def scim_client(admin: Person, make_person: Callable[..., Person]) -> Client:
    from console.core.models import ConsoleSettings

    current = ConsoleSettings.load()
    current.scim_provisioning_enabled = True
    current.save()
    provisioner = make_person("okta-provisioner", roles=["scim_provisioner"], password=None)
    token = api_key_create(actor=provisioner, owner=provisioner, name="okta").token
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}", raise_request_exception=False)


@pytest.mark.parametrize("kind", ["Users", "Groups"])
def test_scim_resources_answer_scim_404_for_ids_that_name_nothing(scim_client: Client, kind: str) -> None:
    wrong = []
    for bad in [*BAD_IDS, "00000000-0000-0000-0000-000000000000", "{bad}"]:
        url = f"/scim/v2/{kind}/{bad}"
        for method in ("get", "put", "patch", "delete"):
            data = {"data": "{}", "content_type": "application/scim+json"} if method in WRITES else {}
            response = getattr(scim_client, method)(url, **data)
            body = json.loads(response.content)
            if response.status_code != 404 or body.get("status") != "404" or "schemas" not in body:
                wrong.append(problem(response, method, url))
    assert not wrong, "\n".join(wrong)


def test_no_scim_request_answers_5xx_to_bad_bodies_filters_or_pages(scim_client: Client) -> None:
    user = json.loads(
        scim_client.post(
            "/scim/v2/Users", data=json.dumps({"userName": "ada"}), content_type="application/scim+json"
        ).content
    )
    group = json.loads(
        scim_client.post(
            "/scim/v2/Groups", data=json.dumps({"displayName": "Staff"}), content_type="application/scim+json"
        ).content
    )
    failures = []
    targets = [
        ("post", "/scim/v2/Users"),
        ("post", "/scim/v2/Groups"),
        ("post", "/scim/v2/Users/.search"),
        ("post", "/scim/v2/.search"),
        ("put", f"/scim/v2/Users/{user['id']}"),
        ("patch", f"/scim/v2/Users/{user['id']}"),
        ("put", f"/scim/v2/Groups/{group['id']}"),
        ("patch", f"/scim/v2/Groups/{group['id']}"),
    ]
    for method, url in targets:
        for body in SCIM_BODIES:
            response = getattr(scim_client, method)(url, data=json.dumps(body), content_type="application/scim+json")
            if response.status_code >= 500:
                failures.append(problem(response, method, url, f"{json.dumps(body)[:80]} "))
        for raw in ("", "{", "\x00\xff"):
            response = getattr(scim_client, method)(url, data=raw, content_type="application/scim+json")
            if response.status_code >= 500:
                failures.append(problem(response, method, url, f"{raw!r} "))
    queries = [
        {"filter": "((("},
        {"filter": 'userName eq "' + "x" * 5000 + '"'},
        {"filter": 'meta.lastModified gt "yesterday"'},
        {"filter": "id eq 99999999999999999999999"},
        {"filter": 'members.value eq "ünï"'},
        {"startIndex": "abc", "count": "-5"},
        {"startIndex": "9" * 40, "count": "9" * 40},
        {"sortBy": "nosuch", "sortOrder": "sideways"},
        {"attributes": ",,,", "excludedAttributes": "((("},
    ]
    for kind in ("Users", "Groups"):
        for query in queries:
            response = scim_client.get(f"/scim/v2/{kind}", query)
            if response.status_code >= 500:
                failures.append(problem(response, "get", f"/scim/v2/{kind}", f"{str(query)[:80]} "))
    assert not failures, "\n".join(failures)
