"""Pages read as people read: payloads as indented JSON, states, verbs, targets and errors in
words, and every time in the viewer's zone, named."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from django.test import Client

from console.accounts.models import Person
from console.audit.models import AuditEvent
from console.audit.services import audit_record
from integrations.errors import connection_error_words
from integrations.models import Integration, TargetGroup, TargetMembership, TargetUser
from integrations.scim_client import ScimClient, ScimTransient
from provisioning.models import Action, ActionState, ActionType, Batch, ScimCall
from provisioning.planning import plan

pytestmark = pytest.mark.django_db

WINTER = dt.datetime(2026, 12, 6, 16, 14, tzinfo=dt.UTC)


@pytest.fixture
def slack() -> Integration:
    return Integration.objects.create(name="Slack", base_url="https://slack.example.com/scim/v2", bearer_token="t")


def _account(integration: Integration, remote_id: str, user_name: str) -> TargetUser:
    return TargetUser.objects.create(
        integration=integration,
        remote_id=remote_id,
        user_name=user_name,
        resource={"id": remote_id, "userName": user_name, "name": {"givenName": "Jane"}},
        content_hash="x",
    )


def _action(integration: Integration, account: TargetUser, **fields: Any) -> Action:
    return Action.objects.create(
        integration=integration,
        action_type=ActionType.DEPROVISION_IDENTITY,
        state=ActionState.PENDING_APPROVAL,
        target_user=account,
        subject=account.user_name,
        parameters={"user_id": account.remote_id},
        **fields,
    )


def test_audit_details_read_as_indented_json_not_python_repr(admin_client: Client) -> None:
    audit_record(verb="settings.updated", details={"a": [1]})
    page = admin_client.get("/audit/").content.decode()
    assert '"a": [' in page
    assert "{'a': [1]}" not in page
    assert 'class="json-block"' in page
    assert "data-copy" in page


def test_the_action_page_shows_parameters_result_and_calls_as_json(admin_client: Client, slack: Integration) -> None:
    action = _action(slack, _account(slack, "u-1", "jane@example.com"), result={"deactivated": True})
    ScimCall.objects.create(
        action=action,
        attempt=1,
        method="PATCH",
        url="https://slack.example.com/scim/v2/Users/u-1",
        request_body=json.dumps({"Operations": [{"op": "replace", "path": "active", "value": False}]}),
        response_body='{"id": "u-1", "active": false}',
        status=200,
    )
    page = admin_client.get(f"/actions/{action.pk}/").content.decode()
    assert '"user_id": "u-1"' in page  # parameters
    assert '"deactivated": true' in page  # result, as JSON (not Python's True)
    assert '"op": "replace"' in page  # the request body
    assert '  "active": false' in page  # the response body, indented
    assert "{'" not in page


def test_a_plan_names_the_group_and_the_account_beside_their_ids(admin_client: Client, slack: Integration) -> None:
    jane = _account(slack, "u-1", "jane@example.com")
    group = TargetGroup.objects.create(
        integration=slack, remote_id="abc123", display_name="Engineers", content_hash="x"
    )
    TargetMembership.objects.create(integration=slack, group=group, member_remote_id="u-1", user=jane)
    steps = plan(integration=slack, action_type=ActionType.DEPROVISION_IDENTITY, parameters={"user_id": "u-1"})
    assert [(s.method, s.path, s.label) for s in steps] == [
        ("PATCH", "Users/u-1", "jane@example.com"),
        ("PATCH", "Groups/abc123", "Engineers: remove jane@example.com"),
    ]
    page = admin_client.get(f"/actions/{_action(slack, jane).pk}/").content.decode()
    assert "<code>PATCH Groups/abc123</code> <span" in page
    assert "(Engineers: remove jane@example.com)" in page


def test_states_and_verbs_read_as_words(admin_client: Client, admin: Person, slack: Integration) -> None:
    action = _action(slack, _account(slack, "u-1", "jane@example.com"))
    audit_record(verb="auth.signed_in", actor=admin)
    audit_record(verb="action.succeeded", target=action)
    page = admin_client.get(f"/actions/{action.pk}/").content.decode()
    assert "Waiting for approval" in page
    audit = admin_client.get("/audit/").content.decode()
    assert "Signed in" in audit
    assert "Action succeeded" in audit
    assert 'title="auth.signed_in"' in audit  # the stored verb stays at hand
    assert ">auth.signed_in<" not in audit


def test_counts_read_as_sentences(admin_client: Client, admin: Person, slack: Integration) -> None:
    batch = Batch.objects.create(integration=slack, action_type=ActionType.DEPROVISION_IDENTITY, requested_by=admin)
    for number, state in enumerate([ActionState.SUCCEEDED, ActionState.SUCCEEDED, ActionState.FAILED]):
        account = _account(slack, f"u-{number}", f"user{number}@example.com")
        Action.objects.create(
            integration=slack,
            action_type=ActionType.DEPROVISION_IDENTITY,
            state=state,
            target_user=account,
            subject=account.user_name,
            batch=batch,
        )

    page = admin_client.get(f"/actions/batches/{batch.pk}/").content.decode()
    assert "3 of 3 finished:\n    2 succeeded, 1 failed.</p>" in page  # not "2 succeeded; 1 failed; "
    # One of a kind is singular: "1 action", "1 person", not "1 actions", "1 people".
    assert "<strong>3</strong> actions" in admin_client.get("/actions/").content.decode()
    assert "<strong>1</strong> action<" in admin_client.get(f"/actions/?state={ActionState.FAILED}").content.decode()
    assert "<strong>1</strong> person<" in admin_client.get("/people/").content.decode()


def test_an_audit_target_reads_in_words_with_a_link(admin_client: Client, admin: Person, slack: Integration) -> None:
    action = _action(slack, _account(slack, "u-1", "jane@example.com"))
    audit_record(verb="action.approved", actor=admin, target=action)
    audit_record(verb="integration.updated", actor=admin, target=slack)
    audit_record(verb="person.updated", actor=admin, target=admin)
    page = admin_client.get("/audit/").content.decode()
    assert f'<a href="/actions/{action.pk}/">Action {action.pk}: deprovision identity jane@example.com</a>' in page
    assert f'<a href="/integrations/{slack.pk}/">Integration Slack</a>' in page
    assert f'<a href="/people/{admin.pk}/">Person root-admin</a>' in page
    assert "accounts.person #" not in page
    assert "provisioning.action" not in page
    dashboard = admin_client.get("/").content.decode()
    assert "Integration Slack" in dashboard


def test_a_refused_connection_is_stored_in_words(slack: Integration) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    slack.base_url = "http://127.0.0.1:9000/scim/v2"
    client = ScimClient(slack, http=httpx.Client(transport=httpx.MockTransport(refuse)), read_attempts=1)
    with pytest.raises(ScimTransient) as refused:
        client.get_json("Users")
    assert str(refused.value) == "Connection refused by 127.0.0.1:9000"


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (httpx.ConnectTimeout("timed out"), "Timed out after 30 s connecting to scim.example.com:443"),
        (httpx.ConnectError("[Errno -2] Name or service not known"), "DNS: the host scim.example.com does not resolve"),
        (
            httpx.ConnectError(
                "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer certificate"
                " (_ssl.c:1000)"
            ),
            "TLS: the certificate of host scim.example.com is not trusted (unknown certificate authority)",
        ),
        (
            httpx.ConnectError("[SSL: TLSV1_ALERT_INTERNAL_ERROR] tlsv1 alert internal error (_ssl.c:4015)"),
            "TLS: the secure connection to host scim.example.com failed (tlsv1 alert internal error)",
        ),
    ],
)
def test_connection_errors_read_as_words(error: Exception, words: str) -> None:
    assert connection_error_words(error, url="https://scim.example.com/scim/v2/Users", timeout=30) == words


def test_times_show_the_viewers_zone_utc_by_default(
    make_person: Callable[..., Person], admin_client: Client, admin: Person
) -> None:
    AuditEvent(occurred_at=WINTER, verb="auth.signed_in", actor_label="ada").save()
    assert "2026-12-06 16:14:00 UTC" in admin_client.get("/").content.decode()

    admin.time_zone = "Europe/Paris"
    admin.save()
    dashboard = admin_client.get("/").content.decode()
    assert "2026-12-06 17:14:00 CET" in dashboard
    assert 'datetime="2026-12-06T17:14:00+01:00"' in dashboard


def test_a_person_sets_their_zone_on_my_profile(admin_client: Client, admin: Person) -> None:
    profile = admin_client.get(f"/people/{admin.pk}/").content.decode()
    assert 'name="time_zone"' in profile
    assert "Europe/Paris" in profile
    answer = admin_client.post("/account/time-zone/", {"time_zone": "Europe/Paris"})
    assert answer.status_code == 302
    admin.refresh_from_db()
    assert admin.time_zone == "Europe/Paris"
    assert admin_client.post("/account/time-zone/", {"time_zone": "Mars/Olympus"}).status_code == 302
    admin.refresh_from_db()
    assert admin.time_zone == "Europe/Paris"  # an unknown zone is refused


def test_the_scim_timezone_is_the_default_where_it_is_a_real_zone(make_person: Callable[..., Person]) -> None:
    person = make_person("bob", roles=["admin"], timezone="America/New_York")
    client = Client()
    client.force_login(person)
    AuditEvent(occurred_at=WINTER, verb="auth.signed_in", actor_label="bob").save()
    assert "2026-12-06 11:14:00 EST" in client.get("/").content.decode()
    person.timezone = "Somewhere/Else"
    person.save()
    assert "2026-12-06 16:14:00 UTC" in client.get("/").content.decode()


def test_the_api_answers_in_utc_whatever_the_viewers_zone(admin_client: Client, admin: Person) -> None:
    admin.time_zone = "Europe/Paris"
    admin.save()
    AuditEvent(occurred_at=WINTER, verb="auth.signed_in", actor_label="ada").save()
    results = admin_client.get("/api/v1/audit-events/").json()["results"]
    assert [r["occurred_at"] for r in results if r["actor"] == "ada"] == ["2026-12-06T16:14:00Z"]
