"""Every URL pattern, with every role, gets exactly what its declared policy says.

The walk covers whatever the URL configuration holds, so a view added later is checked
too; a pattern whose URL arguments the walk cannot fill fails, so that it gets handled
deliberately rather than skipped. UI pages are reached with a signed-in session, the REST
API both with an API key and with a session.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import import_module
from typing import Any
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse

from console.accounts.access import PUBLIC, AccessPolicy, action_of, person_meets, policy_of
from console.accounts.models import ApiKey, Person, Role, Team
from console.accounts.services import api_key_create
from console.audit.models import AuditEvent
from console.audit.services import audit_record
from console.core.models import ConsoleSettings
from integrations.models import ExtractionRun, Integration, TargetGroup, TargetUser
from lifecycle.models import BirthrightMapping, LifecyclePolicy
from provisioning.models import AccessRequest, Action, AttributeTransformer, Batch
from reconciliation.models import Plan

ROLES = ["anonymous", "no-role", "viewer", "operator", "admin", "scim_provisioner"]
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def walk(patterns: list[Any], prefix: str = "", namespace: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from walk(entry.url_patterns, prefix + str(entry.pattern), inner)
        elif "format" in entry.pattern.regex.groupindex:
            continue  # DRF's ``.json`` twin of a route: the same view, checked through the route itself
        else:
            if namespace and entry.name and ":" not in entry.name:
                entry = _named(entry, namespace + entry.name)
            yield prefix + str(entry.pattern), entry


def _named(pattern: URLPattern, name: str) -> URLPattern:
    """The same pattern under its namespaced name, so ``reverse`` finds it."""
    return URLPattern(pattern.pattern, pattern.callback, pattern.default_args, name)


def all_patterns() -> list[tuple[str, URLPattern]]:
    return list(walk(get_resolver().url_patterns))


# What a URL argument refers to: (the path segment in front of it, its name) -> object.
# A new kind of argument fails the walk until it is added here.
OBJECT_FOR_ARGUMENT = {
    ("people", "pk"): "person",
    ("api-keys", "pk"): "api_key",
    ("roles", "pk"): "role",
    ("audit-events", "pk"): "event",
    ("integrations", "pk"): "integration",
    ("custom", "pk"): "custom_integration",  # /api/v1/providers/custom/<pk>/…
    ("actions", "pk"): "action",
    ("batches", "pk"): "batch",
    ("access-requests", "pk"): "access_request",
    ("transformers", "pk"): "transformer",
    ("transformers", "transformer_pk"): "transformer",
    ("users", "user_pk"): "target_user",
    ("groups", "group_pk"): "target_group",
    ("runs", "run_pk"): "extraction_run",
    ("Users", "pk"): "scim_person",  # SCIM writes only the people and teams it provisioned
    ("Groups", "pk"): "scim_team",
    ("teams", "pk"): "team",
    ("lifecycle-policies", "pk"): "lifecycle_policy",
    ("birthright-mappings", "pk"): "mapping",
    ("mappings", "mapping_pk"): "mapping",  # /integrations/<pk>/lifecycle/mappings/<mapping_pk>/…
    ("plans", "plan"): "plan",  # /integrations/<pk>/plans/<plan>/…
    ("Schemas", "schema_id"): "schema_id",
    ("ResourceTypes", "type_id"): "type_id",
    ("", "path"): "unknown_scim_path",  # /scim/v2/<anything else>
}


def fill(route: str, pattern: URLPattern, objects: dict[str, Any]) -> str:
    """The concrete path of ``pattern``, its arguments pointing at objects that exist."""
    names = list(pattern.pattern.regex.groupindex)
    kwargs = {}
    for name in names:
        before = re.split(rf"\(\?P<{name}>|<(?:\w+:)?{name}>", route)[0]
        segment = before.rstrip("/").split("/")[-1].lstrip("^")
        kind = OBJECT_FOR_ARGUMENT.get((segment, name))
        assert kind is not None, f"the access walk does not know what {name!r} in {route!r} refers to"
        value = objects[kind]
        kwargs[name] = getattr(value, "pk", value)
    assert pattern.name, f"{route} has no name, so the walk cannot build its URL"
    path = reverse(pattern.name, kwargs=kwargs)
    assert resolve(path).func == pattern.callback, f"{path} does not lead to the view of {route}"
    return path


@pytest.fixture
def world(make_person: Callable[..., Person]) -> dict[str, Any]:
    """One of everything a URL can refer to, owned by someone other than the caller."""
    target = make_person("target", roles=["viewer"])
    ConsoleSettings.objects.update_or_create(pk=1, defaults={"scim_provisioning_enabled": True})
    make_person("second-admin", roles=["admin"])  # so the break-glass rule never gets in the way
    return {
        "person": target,
        "api_key": api_key_create(actor=target, owner=target, name="target key").key,
        "role": Role.objects.create(name="custom", label="Custom", permissions=["console.view"]),
        "event": audit_record(verb="test.event"),
        "team": Team.objects.create(name="Walkers"),
        "scim_person": make_person("pushed", roles=[], source="scim"),
        "scim_team": Team.objects.create(name="Pushed", source="scim"),
        # Nothing listens on port 9: test-connection answers at once with the cause.
        "integration": (walked := Integration.objects.create(name="Walked", base_url="http://127.0.0.1:9/scim/v2")),
        "custom_integration": Integration.objects.create(
            kind="oaa", name="Custom", base_url="http://127.0.0.1:9/scim/v2"
        ),
        "batch": Batch.objects.create(integration=walked, action_type="DEPROVISION_IDENTITY"),
        "action": Action.objects.create(
            integration=walked,
            action_type="CREATE_ENTITLEMENT",
            state="pending_approval",
            subject="Walkers",
            parameters={"display_name": "Walkers"},
        ),
        "extraction_run": ExtractionRun.objects.create(integration=walked, trigger="manual", status="succeeded"),
        "target_user": (
            walked_user := TargetUser.objects.create(
                integration=walked, remote_id="u1", user_name="u1", content_hash="-"
            )
        ),
        "target_group": (
            walked_group := TargetGroup.objects.create(
                integration=walked, remote_id="g1", display_name="g1", content_hash="-"
            )
        ),
        "access_request": AccessRequest.objects.create(
            integration=walked,
            target_user=walked_user,
            target_group=walked_group,
            operation="add",
            justification="walk",
        ),
        "transformer": AttributeTransformer.objects.create(
            integration=walked, attribute_name="user_name", source="identity_attribute", value="username"
        ),
        "lifecycle_policy": LifecyclePolicy.objects.create(integration=walked),
        "plan": Plan.objects.create(integration=walked, categories=["orphan"]),
        # Waiting for a second admin, made by nobody in particular: any admin may decide on it.
        "mapping": BirthrightMapping.objects.create(integration=walked, conditions=[], state="pending"),
        "schema_id": "urn:ietf:params:scim:schemas:core:2.0:User",
        "type_id": "User",
        "unknown_scim_path": "Nowhere",
    }


@dataclass
class Caller:
    role: str
    person: Person | None
    token: str | None
    signed_in: dict[str, Any] | None = None  # what the caller's one real sign-in left in its session

    def client(self, auth: str) -> Client:
        """A fresh client with a fresh session each time: a request may sign the session out.

        The caller signs in once; every later client gets a new session holding exactly
        what that sign-in left, which is what signing in again would give, without a
        sign-in's audit event and key rotation for each of the walk's requests.
        """
        client = Client()
        if self.person is not None and auth == "bearer":
            client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {self.token}"
        elif self.person is not None and self.signed_in is None:
            client.force_login(self.person)
            self.signed_in = dict(client.session.items())
        elif self.person is not None:
            session = import_module(settings.SESSION_ENGINE).SessionStore()
            session.update(self.signed_in)
            session.create()
            client.cookies[settings.SESSION_COOKIE_NAME] = session.session_key
        return client


def make_caller(role: str, make_person: Callable[..., Person]) -> Caller:
    if role == "anonymous":
        return Caller(role, None, None)
    person = make_person(f"caller-{role}", roles=[] if role == "no-role" else [role])
    return Caller(role, person, api_key_create(actor=person, owner=person, name="walk").token)


def auth_modes(path: str) -> tuple[str, ...]:
    if path.startswith("/scim/"):
        return ("bearer",)  # sessions never reach /scim/v2 (see test_scim_refuses_sessions)
    return ("bearer", "session") if path.startswith("/api/") else ("session",)


def outcome(response: Any) -> str:
    if response.status_code == 401:
        return "unauthenticated"
    if response.status_code == 302 and response["Location"].startswith("/sign-in/?next="):
        return "unauthenticated"
    if response.status_code == 403:
        return "forbidden"
    if response.status_code == 405:
        return "not-allowed"
    return "allowed"


def expected_outcomes(policy: AccessPolicy, view: Callable[..., Any], method: str, person: Person | None) -> set[str]:
    requirement = policy.requirement(method, action_of(view, method))
    if requirement is None:  # refused by the policy, or by a view that has no such method
        # (which Django's own sign-in-only views answer by asking strangers to sign in first)
        return {"forbidden", "not-allowed"} | ({"unauthenticated"} if person is None else set())
    if requirement == PUBLIC or (person is not None and person_meets(person, requirement)):
        return {"allowed", "not-allowed"}  # 405: a view that takes only the other method
    return {"unauthenticated"} if person is None else {"forbidden"}


def assert_refusal_reads_right(policy: AccessPolicy, path: str, response: Any, got: str) -> None:
    """Pages send strangers to the sign-in page; the API answers in JSON."""
    if policy.style == "scim" and got in {"unauthenticated", "forbidden"}:
        body = response.json()
        assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
        assert body["status"] == str(response.status_code)
    elif policy.style == "json" and got == "unauthenticated":
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == 'Bearer realm="console"'
        assert response.json()["code"] == "not_authenticated"
    elif got == "unauthenticated":
        assert response["Location"] == "/sign-in/?" + urlencode({"next": path}, safe="/")
    elif policy.style == "json" and got == "forbidden":
        assert response.json()["code"] == "forbidden"
    elif got == "forbidden":
        assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("role", ROLES)
def test_every_url_answers_each_role_as_its_policy_says(
    role: str, world: dict[str, Any], make_person: Callable[..., Person]
) -> None:
    caller = make_caller(role, make_person)
    patterns = all_patterns()
    assert len(patterns) > 20  # the walk really went into the included URL configurations
    # Each pattern's policy and concrete path, worked out once: they do not change with the method.
    walked = []
    for route, pattern in patterns:
        policy = policy_of(pattern.callback)
        assert policy is not None, f"{route} declares no access policy"
        walked.append((pattern, policy, fill(route, pattern, world)))
    checked = 0
    # Every GET before any write: a write may delete what a later GET would read.
    for method in METHODS:
        for pattern, policy, path in walked:
            for auth in auth_modes(path):
                response = getattr(caller.client(auth), method.lower())(path)
                got = outcome(response)
                expected = expected_outcomes(policy, pattern.callback, method, caller.person)
                where = f"{role} {method} {path} ({auth}): {response.status_code}"
                assert got in expected, f"{where}, expected {expected}"
                assert_refusal_reads_right(policy, path, response, got)
                if role == "admin" and method == "GET" and pattern.name != "scim:not-found":
                    assert response.status_code != 404, f"{where}: the walk filled in an object that is not there"
                checked += 1
    assert checked == sum(len(METHODS) * len(auth_modes(path)) for _, _, path in walked)


# The matrix of the README, spelled out for the cases that matter most. ``{person}`` and
# the like stand for the primary key of an object of the world.
EXPECTED = [
    ("viewer", "GET", "/", "allowed"),
    ("viewer", "GET", "/people/", "allowed"),
    ("viewer", "GET", "/people/{person}/", "allowed"),
    ("viewer", "GET", "/audit/", "allowed"),
    ("viewer", "GET", "/settings/", "allowed"),
    ("viewer", "GET", "/account/api-keys/", "allowed"),
    ("viewer", "POST", "/settings/", "forbidden"),
    ("viewer", "GET", "/people/new/", "forbidden"),
    ("viewer", "POST", "/people/{person}/active/", "forbidden"),
    ("viewer", "GET", "/api/v1/people/", "allowed"),
    ("viewer", "POST", "/api/v1/people/", "forbidden"),
    ("viewer", "POST", "/api/v1/roles/", "forbidden"),
    ("viewer", "GET", "/api/v1/audit-events/", "allowed"),
    ("viewer", "GET", "/api/v1/audit-events/{event}/", "allowed"),
    ("viewer", "POST", "/api/v1/api-keys/", "allowed"),
    ("viewer", "GET", "/actions/revocations/", "allowed"),
    ("viewer", "GET", "/api/v1/people/{person}/revocations/", "allowed"),
    ("viewer", "GET", "/api/v1/integrations/{integration}/revocation-latency/", "allowed"),
    ("no-role", "GET", "/actions/revocations/", "forbidden"),
    ("no-role", "GET", "/api/v1/people/{person}/revocations/", "forbidden"),
    ("no-role", "GET", "/api/v1/integrations/{integration}/revocation-latency/", "forbidden"),
    ("operator", "GET", "/audit/", "allowed"),
    ("operator", "GET", "/people/{person}/edit/", "forbidden"),
    ("operator", "POST", "/api/v1/roles/", "forbidden"),
    ("operator", "PATCH", "/api/v1/settings/", "forbidden"),
    ("admin", "PATCH", "/api/v1/settings/", "allowed"),
    ("admin", "POST", "/api/v1/people/", "allowed"),
    ("admin", "POST", "/api/v1/api-keys/{api_key}/revoke/", "allowed"),
    ("admin", "GET", "/people/new/", "allowed"),
    ("admin", "GET", "/people/{person}/edit/", "allowed"),
    ("operator", "POST", "/actions/access-requests/{access_request}/end/", "forbidden"),
    ("operator", "POST", "/actions/access-requests/{access_request}/extend/", "forbidden"),
    ("operator", "POST", "/api/v1/access-requests/{access_request}/end/", "forbidden"),
    ("operator", "POST", "/api/v1/access-requests/{access_request}/extend/", "forbidden"),
    ("admin", "POST", "/api/v1/access-requests/{access_request}/end/", "allowed"),
    ("admin", "POST", "/api/v1/access-requests/{access_request}/extend/", "allowed"),
    ("scim_provisioner", "GET", "/", "forbidden"),
    ("scim_provisioner", "GET", "/scim/v2/Users", "allowed"),
    ("scim_provisioner", "POST", "/scim/v2/Groups", "allowed"),
    ("admin", "GET", "/scim/v2/Users/{person}", "allowed"),
    ("viewer", "GET", "/scim/v2/Users", "forbidden"),
    ("operator", "PATCH", "/scim/v2/Groups/{team}", "forbidden"),
    ("anonymous", "GET", "/scim/v2/Users", "unauthenticated"),
    ("scim_provisioner", "GET", "/people/", "forbidden"),
    ("scim_provisioner", "GET", "/api/v1/people/", "forbidden"),
    ("scim_provisioner", "GET", "/api/v1/audit-events/", "forbidden"),
    ("scim_provisioner", "POST", "/api/v1/api-keys/", "forbidden"),
    ("no-role", "GET", "/", "forbidden"),
    ("no-role", "GET", "/api/v1/people/", "forbidden"),
    ("anonymous", "GET", "/", "unauthenticated"),
    ("anonymous", "GET", "/people/", "unauthenticated"),
    ("anonymous", "POST", "/people/{person}/active/", "unauthenticated"),
    ("anonymous", "GET", "/api/v1/people/", "unauthenticated"),
    ("anonymous", "POST", "/api/v1/api-keys/", "unauthenticated"),
    ("anonymous", "GET", "/api/schema/", "unauthenticated"),
    ("anonymous", "GET", "/healthz", "allowed"),
    ("anonymous", "GET", "/sign-in/", "allowed"),
    # Lifecycle automation: read with the view permission, changed by integration managers,
    # a mapping to a sensitive group decided by an admin (the approve permission).
    ("viewer", "GET", "/api/v1/lifecycle-policies/", "allowed"),
    ("viewer", "GET", "/api/v1/lifecycle-policies/{lifecycle_policy}/", "allowed"),
    ("viewer", "GET", "/api/v1/lifecycle-policies/{lifecycle_policy}/plan/", "allowed"),
    ("viewer", "POST", "/api/v1/lifecycle-policies/preview/", "allowed"),
    ("viewer", "PATCH", "/api/v1/lifecycle-policies/{lifecycle_policy}/", "forbidden"),
    ("operator", "POST", "/api/v1/lifecycle-policies/", "forbidden"),
    ("admin", "PATCH", "/api/v1/lifecycle-policies/{lifecycle_policy}/", "allowed"),
    ("viewer", "GET", "/api/v1/birthright-mappings/", "allowed"),
    ("operator", "POST", "/api/v1/birthright-mappings/", "forbidden"),
    ("operator", "DELETE", "/api/v1/birthright-mappings/{mapping}/", "forbidden"),
    ("operator", "POST", "/api/v1/birthright-mappings/{mapping}/approve/", "forbidden"),
    ("operator", "POST", "/api/v1/birthright-mappings/{mapping}/reject/", "forbidden"),
    ("admin", "POST", "/api/v1/birthright-mappings/{mapping}/approve/", "allowed"),
    ("viewer", "GET", "/api/v1/integrations/{integration}/groups/{target_group}/sensitive/", "allowed"),
    ("viewer", "POST", "/api/v1/integrations/{integration}/groups/{target_group}/sensitive/", "forbidden"),
    ("viewer", "GET", "/api/v1/integrations/{integration}/groups/{target_group}/members/", "allowed"),
    ("viewer", "POST", "/api/v1/integrations/{integration}/groups/{target_group}/members/", "forbidden"),
    ("no-role", "GET", "/api/v1/integrations/{integration}/groups/{target_group}/members/", "forbidden"),
    ("anonymous", "GET", "/api/v1/integrations/{integration}/groups/{target_group}/members/", "unauthenticated"),
    ("no-role", "GET", "/api/v1/lifecycle-policies/", "forbidden"),
    ("anonymous", "GET", "/api/v1/birthright-mappings/", "unauthenticated"),
    ("viewer", "GET", "/integrations/{integration}/lifecycle/", "allowed"),
    ("viewer", "GET", "/integrations/{integration}/lifecycle/preview/", "allowed"),
    ("viewer", "GET", "/integrations/{integration}/lifecycle/plan/", "allowed"),
    ("viewer", "POST", "/integrations/{integration}/lifecycle/", "forbidden"),
    ("viewer", "POST", "/integrations/{integration}/lifecycle/sensitive/", "forbidden"),
    ("operator", "POST", "/integrations/{integration}/lifecycle/mappings/", "forbidden"),
    ("operator", "POST", "/integrations/{integration}/lifecycle/mappings/{mapping}/approve/", "forbidden"),
    ("operator", "POST", "/integrations/{integration}/lifecycle/mappings/{mapping}/delete/", "forbidden"),
    ("admin", "GET", "/integrations/{integration}/lifecycle/", "allowed"),
    ("viewer", "GET", "/api/v1/integrations/{integration}/plans/", "allowed"),
    ("viewer", "GET", "/api/v1/integrations/{integration}/plans/{plan}/", "allowed"),
    ("viewer", "POST", "/api/v1/integrations/{integration}/plans/", "forbidden"),
    ("operator", "POST", "/api/v1/integrations/{integration}/plans/", "forbidden"),
    ("operator", "POST", "/api/v1/integrations/{integration}/plans/{plan}/apply/", "forbidden"),
    ("admin", "POST", "/api/v1/integrations/{integration}/plans/", "allowed"),
    ("no-role", "GET", "/api/v1/integrations/{integration}/plans/", "forbidden"),
    ("viewer", "GET", "/api/v1/lifecycle-policies/{lifecycle_policy}/auto-remediation/", "allowed"),
    ("operator", "PUT", "/api/v1/lifecycle-policies/{lifecycle_policy}/auto-remediation/", "forbidden"),
    ("viewer", "GET", "/integrations/{integration}/plans/", "allowed"),
    ("viewer", "GET", "/integrations/{integration}/plans/{plan}/", "allowed"),
    ("viewer", "POST", "/integrations/{integration}/plans/new/", "forbidden"),
    ("operator", "POST", "/integrations/{integration}/plans/{plan}/apply/", "forbidden"),
    ("operator", "POST", "/integrations/{integration}/auto-remediation/", "forbidden"),
    ("anonymous", "GET", "/integrations/{integration}/plans/", "unauthenticated"),
    ("anonymous", "GET", "/integrations/{integration}/lifecycle/", "unauthenticated"),
    # The drift report: read with the view permission, a computation asked for by integration managers.
    ("viewer", "GET", "/integrations/{integration}/drift/", "allowed"),
    ("viewer", "POST", "/integrations/{integration}/drift/check/", "forbidden"),
    ("operator", "POST", "/integrations/{integration}/drift/check/", "forbidden"),
    ("admin", "POST", "/integrations/{integration}/drift/check/", "allowed"),
    ("no-role", "GET", "/integrations/{integration}/drift/", "forbidden"),
    ("anonymous", "GET", "/integrations/{integration}/drift/", "unauthenticated"),
    ("viewer", "GET", "/api/v1/integrations/{integration}/drift/", "allowed"),
    ("viewer", "GET", "/api/v1/integrations/{integration}/drift/runs/", "allowed"),
    ("viewer", "POST", "/api/v1/integrations/{integration}/drift/compute/", "forbidden"),
    ("operator", "POST", "/api/v1/integrations/{integration}/drift/compute/", "forbidden"),
    ("admin", "POST", "/api/v1/integrations/{integration}/drift/compute/", "allowed"),
    ("no-role", "GET", "/api/v1/integrations/{integration}/drift/", "forbidden"),
    ("anonymous", "GET", "/api/v1/integrations/{integration}/drift/runs/", "unauthenticated"),
]


@pytest.mark.parametrize(("role", "method", "path", "expected"), EXPECTED)
def test_the_written_matrix_holds(
    role: str, method: str, path: str, expected: str, world: dict[str, Any], make_person: Callable[..., Person]
) -> None:
    caller = make_caller(role, make_person)
    path = path.format(**{name: getattr(obj, "pk", obj) for name, obj in world.items()})
    for auth in auth_modes(path):
        client = caller.client(auth)
        if method == "GET":
            response = client.get(path)
        else:
            response = getattr(client, method.lower())(path, data="{}", content_type="application/json")
        assert response.status_code != 404, f"{path} is not a page of the console"
        assert outcome(response) == expected, f"{role} {method} {path} ({auth}): {response.status_code}"


def test_anonymous_ui_requests_go_to_the_sign_in_page_and_come_back(db: None) -> None:
    response = Client().get("/people/?q=x")
    assert response.status_code == 302
    assert response["Location"] == "/sign-in/?next=/people/%3Fq%3Dx"


def test_anonymous_api_requests_get_a_json_401(db: None) -> None:
    response = Client().get("/api/v1/people/")
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided.", "code": "not_authenticated"}


def test_a_bad_api_key_gets_a_json_401_that_says_why(db: None) -> None:
    response = Client().get("/api/v1/people/", HTTP_AUTHORIZATION="Bearer lck_00000000_not-a-real-key")
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid API key.", "code": "not_authenticated"}


def test_no_role_and_scim_only_people_are_refused_with_a_reason(make_person: Callable[..., Person]) -> None:
    robot = make_caller("scim_provisioner", make_person)
    body = robot.client("bearer").get("/api/v1/people/").json()
    assert body == {"detail": "Your roles do not allow this (needs the permission console.view).", "code": "forbidden"}
    assert ApiKey.objects.filter(owner__username="caller-scim_provisioner").exists()
    assert AuditEvent.objects.filter(verb="api_key.created").exists()


def test_scim_refuses_sessions_even_for_admins(make_person: Callable[..., Person]) -> None:
    ConsoleSettings.objects.update_or_create(pk=1, defaults={"scim_provisioning_enabled": True})
    client = Client()
    client.force_login(make_person("boss", roles=["admin"]))
    response = client.get("/scim/v2/Users")
    assert response.status_code == 401
    assert "Bearer" in response.json()["detail"]
