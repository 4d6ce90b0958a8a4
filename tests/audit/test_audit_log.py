"""The audit log: append-only, filtered, keyset-paginated, in the UI and the API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from console.accounts.models import Person
from console.audit.models import AppendOnlyError, AuditEvent
from console.audit.services import audit_record

pytestmark = pytest.mark.django_db


def test_events_cannot_be_edited_or_deleted_through_the_model() -> None:
    event = audit_record(verb="test.happened", details={"n": 1})
    event.verb = "test.rewritten"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(verb="x")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).verb == "test.happened"


def test_the_database_itself_refuses_to_rewrite_events() -> None:
    event = audit_record(verb="test.happened")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET verb = 'x' WHERE id = %s", [event.pk])
    if connection.vendor == "postgresql":  # SQLite test databases are reset with DELETE, so only UPDATE is refused
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).verb == "test.happened"


def test_the_api_offers_no_way_to_change_events(make_person: Callable[..., Person], api_client_for: Callable) -> None:
    admin = make_person("boss", roles=["admin"])
    client: APIClient = api_client_for(admin)
    event = audit_record(verb="test.happened")
    assert client.post("/api/v1/audit-events/", {"verb": "x"}, format="json").status_code == 405
    assert client.patch(f"/api/v1/audit-events/{event.pk}/", {"verb": "x"}, format="json").status_code == 405
    assert client.put(f"/api/v1/audit-events/{event.pk}/", {"verb": "x"}, format="json").status_code == 405
    assert client.delete(f"/api/v1/audit-events/{event.pk}/").status_code == 405
    assert AuditEvent.objects.get(pk=event.pk).verb == "test.happened"


def test_secrets_in_details_are_redacted() -> None:
    event = audit_record(
        verb="test.secret",
        details={"password": "hunter2", "nested": {"api_token": "abc"}, "note": "Bearer abc.def", "ok": "visible"},
    )
    assert event.details == {
        "password": "[redacted]",
        "nested": {"api_token": "[redacted]"},
        "note": "Bearer [redacted]",
        "ok": "visible",
    }


def make_events(count: int, verb: str = "test.event", actor: Person | None = None) -> list[AuditEvent]:
    return [audit_record(verb=verb, actor=actor, target_type="thing", target_id=str(i)) for i in range(count)]


def test_the_api_pages_through_every_event_exactly_once(make_person: Callable, api_client_for: Callable) -> None:
    viewer = make_person("viewer", roles=["viewer"])
    client: APIClient = api_client_for(viewer)  # creating the key writes one event
    make_events(23)
    seen: list[int] = []
    url: str | None = "/api/v1/audit-events/?page_size=5&verb=test.event"
    pages = 0
    while url:
        body = client.get(url).json()
        seen += [e["id"] for e in body["results"]]
        url = body["next"]
        pages += 1
    assert pages == 5
    assert len(seen) == len(set(seen)) == 23
    assert seen == sorted(seen, reverse=True)  # newest first


def test_filters_by_actor_verb_prefix_target_and_time(make_person: Callable, api_client_for: Callable) -> None:
    alice = make_person("alice", roles=["viewer"])
    bob = make_person("bob", roles=["viewer"])
    client: APIClient = api_client_for(alice)
    make_events(2, verb="thing.made", actor=alice)
    make_events(3, verb="thing.broken", actor=bob)

    def verbs(query: str) -> list[str]:
        response = client.get(f"/api/v1/audit-events/?{query}")
        assert response.status_code == 200, response.json()
        return [e["verb"] for e in response.json()["results"]]

    assert verbs("actor=bob") == ["thing.broken"] * 3
    assert verbs("verb=thing.") == ["thing.broken"] * 3 + ["thing.made"] * 2
    assert verbs("verb=thing.made") == ["thing.made"] * 2
    assert verbs("target_type=thing&target_id=1&actor=alice") == ["thing.made"]
    future = (timezone.now() + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert verbs(f"since={future}") == []
    assert len(verbs(f"until={future}&verb=thing.")) == 5
    bad = client.get("/api/v1/audit-events/?since=yesterday")
    assert bad.status_code == 400
    assert "since" in bad.json()["fields"]


def test_the_audit_page_filters_and_swaps_only_the_table_for_htmx(admin_client: Client) -> None:
    make_events(3, verb="thing.made")
    audit_record(verb="other.thing")
    full = admin_client.get("/audit/?verb=thing.made")
    assert full.status_code == 200
    html = full.content.decode()
    assert "<html" in html
    assert html.count('<span class="verb" title="thing.made">') == 3
    assert '<span class="verb" title="other.thing">' not in html
    # The time-range inputs of the page send the browser's datetime-local format.
    ranged = admin_client.get("/audit/?verb=thing.made&since=2000-01-01T00:00&until=2999-01-01T00:00")
    assert ranged.content.decode().count('<span class="verb" title="thing.made">') == 3
    partial = admin_client.get("/audit/?verb=other.thing", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="table-region")
    fragment = partial.content.decode()
    assert "<html" not in fragment
    assert '<span class="verb" title="other.thing">' in fragment
    assert '<span class="verb" title="thing.made">' not in fragment


def test_the_audit_page_pages_with_links_that_work_without_javascript(admin_client: Client) -> None:
    make_events(60)
    first = admin_client.get("/audit/?verb=test.event").content.decode()
    assert first.count('<span class="verb" title="test.event">') == 50
    assert 'rel="next"' in first
    next_href = first.split('rel="next" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    second = admin_client.get(f"/audit/{next_href}").content.decode()
    assert second.count('<span class="verb" title="test.event">') == 10
    assert 'rel="prev"' in second


def test_a_forged_cursor_gets_a_clear_error(
    admin_client: Client, make_person: Callable, api_client_for: Callable
) -> None:
    page = admin_client.get("/audit/?cursor=not-a-cursor").content.decode()
    assert "The cursor is not valid" in page
    response = api_client_for(make_person("v", roles=["viewer"])).get("/api/v1/audit-events/?cursor=zzz")
    assert response.status_code == 400
    assert response.json()["fields"]["cursor"] == ["The cursor is not valid; start again from the first page."]


def test_the_audit_list_costs_the_same_queries_at_any_size(
    admin_client: Client, django_assert_max_num_queries: Callable
) -> None:
    make_events(120)
    with django_assert_max_num_queries(8):
        admin_client.get("/audit/")
