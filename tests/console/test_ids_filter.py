"""``ids_q``: runs of consecutive ids as ranges, the rest as a list; exactly the ids named."""

from __future__ import annotations

import random

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from console.accounts.models import Person
from console.core.db import ids_q

pytestmark = pytest.mark.django_db


def test_runs_become_ranges_and_the_rest_a_list() -> None:
    sql = str(Person.objects.filter(ids_q("pk", [5, 1, 2, 3, 4, 6, 7, 8, 40, 42, 42])).query)
    assert "IN (40, 42)" in sql
    assert ">= 1" in sql
    assert "<= 8" in sql


def test_the_people_read_are_exactly_those_named() -> None:
    people = Person.objects.bulk_create([Person(username=f"p{i}@example.com") for i in range(60)])
    pks = sorted(p.pk for p in people)
    rng = random.Random(7)
    for named in (
        set(pks),
        set(pks[:30]) | set(pks[31:50:2]) | {pks[-1]},
        set(rng.sample(pks, 25)),
        {pks[3]},
        set(),
    ):
        assert set(Person.objects.filter(ids_q("pk", named)).values_list("pk", flat=True)) == named


def test_a_burst_of_consecutive_ids_sends_two_bounds() -> None:
    Person.objects.bulk_create([Person(username=f"p{i}@example.com") for i in range(500)])
    pks = list(Person.objects.values_list("pk", flat=True))
    with CaptureQueriesContext(connection) as queries:
        assert Person.objects.filter(ids_q("pk", pks)).count() == 500
    assert len(queries.captured_queries[0]["sql"]) < 300
