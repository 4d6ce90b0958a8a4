"""An application that echoes the Authorization header back (in its bodies, its errors, a
header) never gets the integration's credentials stored, logged or shown: in any form.

The application is the real SCIM server behind a front that echoes what each request
carried: the header as sent, decoded, URL-encoded, base64-encoded and JSON-escaped in
several ways, into the resources it returns, the schemas and resource types it describes,
and the errors it answers. After a connection test (of the saved integration, and of a
form's values before saving), extraction, a dialect probe (with its write checks, some
refused) and every action type (and their failures) the planted token and password are in
no page, no API answer, no export, no log line, no row of the database (dumped whole, and
on SQLite the database file itself read byte by byte) and not in the probe's state the
pages read from the cache.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import subprocess
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from django.db import connection
from django.test import Client

from console.accounts.models import Person
from console.core.redaction import REDACTED, SecretRedactor, integration_secrets, redact, secret_forms
from integrations.discovery import connection_test
from integrations.extraction import extraction_run_execute
from integrations.models import ExtractionRun, Integration, TargetGroup, TargetUser
from integrations.probe import probe_execute, probe_state
from provisioning.execution import action_execute
from provisioning.models import Action, ScimCall
from provisioning.services import action_approve, action_request
from tests.integrations.conftest import INTEGRATION_FORM
from tests.scim_peer import ERROR, PEER_TOKEN, SCIM, Peer, _serve

pytestmark = pytest.mark.django_db(transaction=True)  # committed, so that pg_dump sees every row

# Distinctive secrets: JSON escapes them (" \ / and non-ASCII), URLs encode them. Each
# holds a run of letters and digits found in no other text, whatever form it takes.
TOKEN_CORE, PASSWORD_CORE = "Qx7ZpL2vKw9Rj4Nb", "Wm3XcV8tYh6Gd1Sf"
TOKEN = f'tok/"{TOKEN_CORE}+\\='
USER, PASSWORD = "echo-admin", f'pä/"{PASSWORD_CORE}+ß'
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
ECHO = "urn:example:params:scim:schemas:extension:echo:1.0:User"
RESOURCE_TYPE = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"


def _b64(text: str) -> list[str]:
    raw = text.encode()
    return [base64.b64encode(raw).decode().rstrip("="), base64.urlsafe_b64encode(raw).decode().rstrip("=")]


# What must appear nowhere: the runs above stand for the secrets as sent, URL-encoded and
# JSON-escaped; base64 has forms of its own.
LEAKS = [TOKEN_CORE, PASSWORD_CORE, TOKEN, PASSWORD, *_b64(TOKEN), *_b64(PASSWORD), BASIC.rstrip("=")]


def leaks_in(text: str) -> list[str]:
    return [leak for leak in LEAKS if leak in text]


def _unicode_escaped(text: str, digits: str = "04X") -> str:
    """Every character but ASCII letters and digits as a JSON \\uXXXX escape (upper case, as .NET writes)."""
    out = []
    for char in text:
        if char.isascii() and char.isalnum():
            out.append(char)
        else:
            units = char.encode("utf-16-be")
            out.extend(f"\\u{int.from_bytes(units[i : i + 2]):{digits}}" for i in range(0, len(units), 2))
    return "".join(out)


@dataclass
class EchoFront:
    """The real server behind a front that echoes each request's Authorization header.

    ``failures`` makes it refuse requests by (method, first path segment), echoing the
    header in the error: a SCIM error (JSON ``detail``) or, with ``html``, an HTML page.
    """

    url: str = ""
    failures: dict[tuple[str, str], tuple[int, bool]] = field(default_factory=dict)
    echoed: int = 0  # answers that carried a secret back

    def fail(self, method: str, segment: str, status: int, *, html: bool = False) -> None:
        self.failures[(method, segment)] = (status, html)


def _echoes(sent: str) -> tuple[dict[str, Any], str]:
    """What the front echoes of an Authorization header: as JSON values, and as error text."""
    scheme, _, credential = sent.partition(" ")
    decoded = base64.b64decode(credential).decode() if scheme == "Basic" else credential
    values = {
        "authorization": sent,
        "decoded": decoded,
        "urlEncoded": quote(decoded, safe=""),
        "base64": base64.b64encode(decoded.encode()).decode(),
        "escaped": "@@ESCAPED@@",  # written with escapes json.dumps does not use (below)
        "slashes": "@@SLASHES@@",
    }
    text = f"Authorization: {sent} (that is {decoded}, or {quote(decoded, safe='')})"
    return values, text


def _written(body: Any, sent: str) -> bytes:
    """``body`` as JSON, the placeholders as .NET and PHP would escape the decoded credential."""
    _, _, credential = sent.partition(" ")
    decoded = base64.b64decode(credential).decode() if sent.startswith("Basic ") else credential
    data = json.dumps(body)
    data = data.replace('"@@ESCAPED@@"', f'"{_unicode_escaped(decoded)}"')
    data = data.replace('"@@SLASHES@@"', json.dumps(decoded).replace("/", "\\/"))
    return data.encode()


def _with_echoes(segment: str, body: Any, values: dict[str, Any], text: str) -> Any:
    if not isinstance(body, dict):
        return body
    if "detail" in body or body.get("schemas") == [ERROR]:
        return {**body, "detail": f"{body.get('detail', '')} {text}"}
    if segment == "Schemas":
        for schema in body.get("Resources") or [body]:
            schema["description"] = f"{schema.get('description', '')} {text}"
            for attribute in schema.get("attributes") or []:
                attribute["description"] = f"{attribute.get('description', '')} {text}"
        return body
    if segment == "ResourceTypes":
        echo = {
            "schemas": [RESOURCE_TYPE],
            "id": "Echo",
            "name": f"Echo {values['authorization']}",
            "endpoint": "/Echo",
            "schema": "urn:ietf:params:scim:schemas:core:2.0:User",
            "description": text,
        }
        return {**body, "Resources": [*(body.get("Resources") or []), echo]}
    for resource in body.get("Resources") or ([body] if "id" in body else []):
        if isinstance(resource, dict):
            resource[ECHO] = values
    return body


def echo_front(app: Callable[..., Iterable[bytes]], state: EchoFront) -> Callable[..., Iterable[bytes]]:
    accepted = {f"Bearer {TOKEN}", f"Basic {BASIC}"}

    def front(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        sent = environ.get("HTTP_AUTHORIZATION", "")
        values, text = _echoes(sent)
        method, segment = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "").strip("/").split("/")[0]
        echo_header = ("X-Echo-Authorization", sent)
        state.echoed += 1
        if (method, segment) in state.failures:
            status, html = state.failures[(method, segment)]
            if html:
                data = f"<html><body><h1>{status}</h1><p>{text}</p></body></html>".encode()
                content_type = "text/html; charset=utf-8"
            else:
                error = {"schemas": [ERROR], "status": str(status), "detail": f"refused: {text}", "echo": values}
                data, content_type = _written(error, sent), SCIM
            start_response(
                f"{status} Refused", [("Content-Type", content_type), ("Content-Length", str(len(data))), echo_header]
            )
            return [data]
        # The real server knows its own token: the planted credentials stand for it.
        environ["HTTP_AUTHORIZATION"] = f"Bearer {PEER_TOKEN}" if sent in accepted else "Bearer refused"
        captured: dict[str, Any] = {}

        def keep(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            captured["status"], captured["headers"] = status, headers
            return lambda _: None

        answer = b"".join(app(environ, keep))
        if answer:
            with contextlib.suppress(ValueError):  # not JSON: as it is
                answer = _written(_with_echoes(segment, json.loads(answer), values, text), sent)
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        start_response(captured["status"], [*headers, ("Content-Length", str(len(answer))), echo_header])
        return [answer]

    return front


@pytest.fixture
def echo(peer: Peer, scim2_server_app: Any) -> Iterator[EchoFront]:
    state = EchoFront()
    for port in _serve(echo_front(scim2_server_app, state)):
        state.url = f"http://localhost:{port}"
        yield state


def database_dump() -> str:
    """Every row of the test database, as text."""
    connection.ensure_connection()
    if connection.vendor == "postgresql":
        db = connection.settings_dict
        dumped = subprocess.run(
            [
                "/usr/bin/pg_dump",
                "--data-only",
                "--host",
                db.get("HOST") or "127.0.0.1",
                "--port",
                str(db.get("PORT") or 5432),
                "--username",
                db.get("USER") or "postgres",
                db["NAME"],
            ],
            capture_output=True,
            check=True,
            env={**os.environ, "PGPASSWORD": db.get("PASSWORD") or ""},
        )
        return dumped.stdout.decode()
    assert connection.vendor == "sqlite"
    return "\n".join(connection.connection.iterdump())


def database_file_leaks() -> list[str]:
    """On SQLite, the leaks found in the database file's bytes (its free pages too), the log written into it."""
    if connection.vendor != "sqlite":
        return []
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    path = str(connection.settings_dict["NAME"])
    assert os.path.isfile(path), path  # a file, not a database in memory
    found = []
    for name in (path, f"{path}-wal"):
        if os.path.exists(name):
            with open(name, "rb") as file:
                data = file.read()
            found += [leak for leak in LEAKS if leak.encode() in data]
    return found


def body_of(response: Any) -> str:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return str(content.decode())


def run_extraction(integration: Integration) -> ExtractionRun:
    run = ExtractionRun.objects.create(integration=integration, trigger="manual")
    done = extraction_run_execute(run_id=run.pk)
    assert done is not None
    return done


def run_action(action: Action) -> Action:
    outcome = action_execute(action.pk)
    assert outcome.action is not None, "the action was not claimable"
    return outcome.action


@pytest.mark.parametrize("auth", ["bearer", "basic"])
def test_echoed_credentials_are_stored_logged_and_shown_nowhere(
    auth: str,
    echo: EchoFront,
    peer: Peer,
    make_person: Callable[..., Person],
    api_client_for: Callable[[Person], Any],
    admin_client: Client,
    caplog: pytest.LogCaptureFixture,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from integrations.tasks import probe_task
    from provisioning.tasks import actions_execute_task

    caplog.set_level(logging.INFO)
    settings.ACTION_QUARANTINE_AFTER = 2
    monkeypatch.setattr(actions_execute_task, "apply_async", lambda *args, **options: None)  # run here instead
    monkeypatch.setattr(probe_task, "delay", lambda *args, **options: None)
    credentials = (
        {"bearer_token": TOKEN}
        if auth == "bearer"
        else {"auth_type": "basic", "basic_username": USER, "basic_password": PASSWORD}
    )
    app = Integration.objects.create(
        name="Echo",
        base_url=echo.url,
        provisioning_enabled=True,
        supports_hard_delete=True,
        discover_extensions=True,
        **credentials,
    )
    ada, bob = peer.user("ada"), peer.user("bob")
    peer.user("carol")
    peer.user("dave")
    peer.group("Engineers", [ada])
    requester = make_person("requester", roles=["operator"])
    approver = make_person("approver", roles=["admin"])
    viewer = make_person("viewer", roles=["viewer"])

    # A connection test that succeeds (the resource types it records echo), then one refused.
    assert connection_test(integration=app).ok
    echo.fail("GET", "ServiceProviderConfig", 401)
    refused = api_client_for(approver).post(f"/api/v1/integrations/{app.pk}/test-connection/")
    assert refused.json()["ok"] is False
    shown = admin_client.post(f"/integrations/{app.pk}/test-connection/")
    echo.failures.clear()
    # The same application tested with a form's values before saving: its htmx part, and the
    # whole form again without the script; connected, then refused with the header echoed.
    form = {
        **INTEGRATION_FORM,
        "name": "Echo, unsaved",
        "base_url": echo.url,
        **(
            {"bearer_token": TOKEN}
            if auth == "bearer"
            else {"auth_type": "basic", "bearer_token": "", "basic_username": USER, "basic_password": PASSWORD}
        ),
    }
    unsaved = {"unsaved test (htmx)": admin_client.post("/integrations/test-connection/", form, HTTP_HX_REQUEST="true")}
    assert "Connected" in unsaved["unsaved test (htmx)"].content.decode()
    echo.fail("GET", "ServiceProviderConfig", 401)
    unsaved["unsaved test, refused (htmx)"] = admin_client.post(
        "/integrations/test-connection/", form, HTTP_HX_REQUEST="true"
    )
    unsaved["unsaved test, refused (page)"] = admin_client.post("/integrations/test-connection/", form)
    assert "Failed" in unsaved["unsaved test, refused (htmx)"].content.decode()
    echo.failures.clear()

    # An extraction: every resource, schema and resource type read echoes.
    run = run_extraction(app)
    assert run.status == "succeeded", run.error
    assert TargetUser.objects.filter(integration=app).count() == 4

    def account(name: str) -> TargetUser:
        return TargetUser.objects.get(integration=app, user_name=name)

    engineers = TargetGroup.objects.get(integration=app, display_name="Engineers")

    # A probe with its write checks, queued as the API queues it and carried out as a worker
    # does: every answer echoes, PUT is refused and the test user's delete is refused with the
    # header in the error, so the findings, notes and remarks would carry it.
    started = api_client_for(approver).post(f"/api/v1/integrations/{app.pk}/probe/", {"writes": True}, format="json")
    assert started.status_code == 202, started.json()
    echo.fail("PUT", "Users", 501)
    echo.fail("DELETE", "Users", 403)
    report = probe_execute(integration_id=app.pk, writes=True, actor_id=approver.pk)
    echo.failures.clear()
    assert report is not None
    assert not report.error, report.error
    probed = json.dumps(report.as_dict())
    assert "403" in probed
    assert "[redacted]" in probed
    assert leaks_in(probed) == []
    assert leaks_in(json.dumps(probe_state(integration=app), default=str)) == []  # what the cache keeps

    # Every action type, each answer echoing.
    done = [
        run_action(
            action_request(actor=requester, integration=app, action_type="SYNC_IDENTITIES", person=make_person("erin"))
        ),
        run_action(
            action_request(
                actor=requester,
                integration=app,
                action_type="SYNC_IDENTITIES",
                person=make_person("ada", display_name="Ada Lovelace"),
            )
        ),
        run_action(
            action_request(
                actor=requester,
                integration=app,
                action_type="MANAGE_RELATIONSHIPS",
                target_group=engineers,
                parameters={"add": [bob["id"]], "remove": [ada["id"]]},
            )
        ),
        run_action(
            action_request(
                actor=requester, integration=app, action_type="DEPROVISION_IDENTITY", target_user=account("carol")
            )
        ),
        run_action(
            action_approve(
                actor=approver,
                action=action_request(
                    actor=requester, integration=app, action_type="DELETE_IDENTITY", target_user=account("dave")
                ),
            )
        ),
        run_action(
            action_request(
                actor=requester,
                integration=app,
                action_type="CREATE_ENTITLEMENT",
                parameters={"display_name": "Echoers"},
            )
        ),
    ]
    assert [a.result.get("operation", a.state) for a in done][:2] == ["created", "updated"]
    assert {a.state for a in done} == {"succeeded"}, [a.last_error for a in done]

    # Failures: refused with a SCIM error, then a transient HTML page; the second quarantines.
    echo.fail("POST", "Groups", 400)
    failed = run_action(
        action_request(
            actor=requester, integration=app, action_type="CREATE_ENTITLEMENT", parameters={"display_name": "Refused"}
        )
    )
    assert failed.state == "failed"
    assert "400" in failed.last_error
    echo.fail("PATCH", "Users", 503, html=True)
    retried = run_action(
        action_request(actor=requester, integration=app, action_type="DEPROVISION_IDENTITY", target_user=account("bob"))
    )
    assert retried.state == "queued"
    retried.refresh_from_db()
    assert "503" in retried.last_error
    app.refresh_from_db()
    assert app.quarantine_reason

    # An extraction that fails on an echoed error.
    echo.fail("GET", "Groups", 403)
    failed_run = run_extraction(app)
    assert failed_run.status == "failed"
    assert "403" in failed_run.error
    echo.failures.clear()

    # The front did echo, and what was kept says where something was struck out.
    assert echo.echoed > 20
    logged = " ".join(f"{c.response_body} {c.error}" for c in ScimCall.objects.all())
    assert "[redacted]" in logged
    assert "[redacted]" in failed_run.error
    assert "[redacted]" in account("ada").resource[ECHO]["authorization"]
    assert "[redacted]" in Integration.objects.get(pk=app.pk).connection_error

    # Nothing shown to a viewer, in pages or the API.
    page, api = Client(), api_client_for(viewer)
    page.force_login(viewer)
    actions = list(Action.objects.filter(integration=app))
    users = list(TargetUser.objects.filter(integration=app))
    groups = list(TargetGroup.objects.filter(integration=app))
    pages = [
        "/",
        "/integrations/",
        f"/integrations/{app.pk}/",
        f"/integrations/{app.pk}/progress/",
        f"/integrations/{app.pk}/users/",
        *(f"/integrations/{app.pk}/users/{u.pk}/" for u in users),
        f"/integrations/{app.pk}/groups/",
        *(f"/integrations/{app.pk}/groups/{g.pk}/" for g in groups),
        "/actions/",
        *(f"/actions/{a.pk}/" for a in actions),
        "/actions/export/?as=csv",
        "/actions/export/?as=json",
        f"/integrations/{app.pk}/probe/",
        f"/integrations/{app.pk}/runs/",
        *(f"/integrations/{app.pk}/runs/{r.pk}/" for r in ExtractionRun.objects.filter(integration=app)),
        *(
            f"{table}?as={kind}"
            for kind in ("csv", "json")
            for table in (
                f"/integrations/{app.pk}/users/",
                f"/integrations/{app.pk}/groups/",
                f"/integrations/{app.pk}/runs/",
                "/actions/",
            )
        ),
    ]
    answers = {url: page.get(url) for url in pages}
    apis = [
        "/api/v1/actions/",
        *(f"/api/v1/actions/{a.pk}/" for a in actions),
        "/api/v1/actions/export/?as=csv",
        "/api/v1/actions/export/?as=json",
        "/api/v1/integrations/",
        f"/api/v1/integrations/{app.pk}/",
        f"/api/v1/integrations/{app.pk}/runs/",
        f"/api/v1/integrations/{app.pk}/health/",
        f"/api/v1/integrations/{app.pk}/users/",
        f"/api/v1/integrations/{app.pk}/groups/",
        f"/api/v1/integrations/{app.pk}/probe/",
    ]
    answers |= {url: api.get(url) for url in apis}
    answers |= {
        url: admin_client.get(url)
        for url in (
            "/audit/",
            "/audit/?as=csv",
            "/audit/?as=json",
            "/actions/revocations/",
            "/actions/revocations/?as=csv",
            "/actions/revocations/?as=json",
        )
    }
    answers |= {"/api/v1/audit-events/": api_client_for(approver).get("/api/v1/audit-events/")}
    answers |= {"test-connection (API)": refused, "test-connection (page)": shown, **unsaved}
    assert {url: answer.status_code for url, answer in answers.items() if answer.status_code != 200} == {}
    bodies = {url: body_of(answer) for url, answer in answers.items()}  # an export streams, read once
    shown_leaks = {url: leaks_in(body) for url, body in bodies.items()}
    assert {url: found for url, found in shown_leaks.items() if found} == {}
    for echoed in (
        f"/api/v1/integrations/{app.pk}/health/",
        f"/api/v1/integrations/{app.pk}/probe/",
        "/audit/?as=json",
    ):
        assert "[redacted]" in bodies[echoed], echoed

    # No log line.
    formatter = logging.Formatter()  # the message, every field of the record, and its traceback
    lines = [
        f"{record.getMessage()} {vars(record)!r} {formatter.formatException(record.exc_info or (None, None, None))}"
        for record in caplog.records
    ]
    assert [line for line in lines if leaks_in(line)] == []

    # No row.
    dump = database_dump()
    assert "Engineers" in dump  # the dump holds what was stored
    assert "[redacted]" in dump
    assert leaks_in(dump) == []
    assert database_file_leaks() == []


def test_every_form_of_a_secret_is_struck_out_of_text_and_json_values() -> None:
    redactor = SecretRedactor([TOKEN, PASSWORD])
    forms = [
        TOKEN,
        quote(TOKEN, safe=""),
        json.dumps(TOKEN)[1:-1],
        json.dumps(TOKEN)[1:-1].replace("/", "\\/"),
        _unicode_escaped(TOKEN),
        *_b64(TOKEN),
        PASSWORD,
        quote(PASSWORD, safe=""),
        json.dumps(PASSWORD)[1:-1],
        json.dumps(PASSWORD, ensure_ascii=False)[1:-1],
        _unicode_escaped(PASSWORD),
        _unicode_escaped(PASSWORD, "04x"),
        *_b64(PASSWORD),
    ]
    for form in forms:
        assert redactor.text(f"said: {form}.") == f"said: {REDACTED}.", form
        assert redactor.found_in(f"said: {form}.".encode())
    assert set(forms) <= set(secret_forms([TOKEN, PASSWORD]))
    # In JSON, value by value and key by key, whatever escapes it was written with.
    data = json.loads(_written({"k": "@@ESCAPED@@", "l": [{"m": f"Bearer {TOKEN}"}], TOKEN: 1}, f"Bearer {TOKEN}"))
    assert redact(data, secrets=SecretRedactor([TOKEN])) == {
        "k": REDACTED,
        "l": [{"m": f"Bearer {REDACTED}"}],
        REDACTED: 1,
    }
    assert redactor.text("nothing secret here") == "nothing secret here"


def test_an_integration_s_secrets_are_its_token_its_password_and_the_basic_pair_but_not_its_user_name() -> None:
    basic = Integration(auth_type="basic", basic_username=USER, basic_password=PASSWORD, bearer_token="")
    assert integration_secrets(basic) == [PASSWORD, BASIC]
    assert integration_secrets(Integration(bearer_token=TOKEN)) == [TOKEN]
    assert (
        SecretRedactor(integration_secrets(basic)).text(f"{USER}:{PASSWORD} / {BASIC}")
        == f"{USER}:{REDACTED} / {REDACTED}"
    )
    assert "secret" not in repr(SecretRedactor(["a-secret-token"]))  # nothing prints the secrets
