"""Migration 0007 gives every existing person and team a SCIM id of its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("accounts", "0006_case_insensitive_name_indexes")]
AFTER = [("accounts", "0007_scim_ids")]


@pytest.mark.django_db(transaction=True)
def test_existing_people_and_teams_get_distinct_scim_ids_and_keep_their_keys() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    person_model, team_model = old.get_model("accounts", "Person"), old.get_model("accounts", "Team")
    people = person_model.objects.bulk_create(
        [person_model(username=f"p{i}@example.com", password="!") for i in range(1205)]  # more than one batch
    )
    teams = team_model.objects.bulk_create([team_model(name=f"team {i}") for i in range(3)])
    person_keys = sorted(p.pk for p in person_model.objects.all())
    team_keys = sorted(t.pk for t in team_model.objects.all())
    assert len(people) == len(person_keys)
    assert len(teams) == len(team_keys)

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps
    person_ids = dict(new.get_model("accounts", "Person").objects.values_list("pk", "scim_id"))
    team_ids = dict(new.get_model("accounts", "Team").objects.values_list("pk", "scim_id"))
    assert sorted(person_ids) == person_keys
    assert sorted(team_ids) == team_keys
    every = [*person_ids.values(), *team_ids.values()]
    assert all(isinstance(i, uuid.UUID) for i in every)
    assert len(set(every)) == len(every)  # none shared, not even between a person and a team


@pytest.fixture(autouse=True)
def _back_to_the_latest_migrations() -> Iterator[None]:
    """Going back to 0006 also unapplies whatever depends on 0007: the tests after this one need it all."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
