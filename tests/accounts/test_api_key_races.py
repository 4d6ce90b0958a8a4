"""API keys under parallel requests: one write of last use, one revocation."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection
from django.db.models import QuerySet
from django.test import Client

from console.accounts.models import ApiKey, Person
from console.accounts.services import api_key_create, api_key_revoke
from console.audit.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)


def in_parallel[T](count: int, attempt: Callable[[int], T]) -> list[T]:
    start = threading.Barrier(count)

    def run(number: int) -> T:
        start.wait()
        try:
            return attempt(number)
        finally:
            connection.close()

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def test_parallel_requests_with_a_key_record_its_last_use_once(
    make_person: Callable[..., Person], monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = make_person("robot", roles=["admin"])
    new = api_key_create(actor=owner, owner=owner, name="ci")
    written: list[int] = []
    original = QuerySet.update

    def counting_update(queryset: QuerySet[Any], **fields: Any) -> int:
        rows = original(queryset, **fields)
        if queryset.model is ApiKey and "last_used_at" in fields:
            written.append(rows)
        return rows

    monkeypatch.setattr(QuerySet, "update", counting_update)
    bearer = f"Bearer {new.token}"
    statuses = in_parallel(20, lambda _: Client(HTTP_AUTHORIZATION=bearer).get("/api/v1/roles/").status_code)
    assert statuses == [200] * 20
    assert sum(written) == 1
    assert ApiKey.objects.get(pk=new.key.pk).last_used_at is not None


def test_parallel_revocations_revoke_and_record_once(make_person: Callable[..., Person]) -> None:
    admin = make_person("root-admin", roles=["admin"])
    new = api_key_create(actor=admin, owner=admin, name="ci")
    revoked = in_parallel(10, lambda _: api_key_revoke(actor=admin, key=ApiKey.objects.get(pk=new.key.pk)))
    assert len({key.revoked_at for key in revoked}) == 1
    assert AuditEvent.objects.filter(verb="api_key.revoked").count() == 1
    assert Client(HTTP_AUTHORIZATION=f"Bearer {new.token}").get("/api/v1/roles/").status_code == 401
