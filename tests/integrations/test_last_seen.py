"""'Last seen' tells when the application last listed an account, though extraction writes only changes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import formats, timezone
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient

from console.accounts.models import Person
from integrations.extraction import extraction_run_execute, extraction_start
from integrations.models import ExtractionRun, Integration, TargetGroup, TargetUser
from integrations.selectors import with_seen_at
from tests.integrations.conftest import PEER_TOKEN, Peer

pytestmark = pytest.mark.django_db


def extract(integration: Integration) -> ExtractionRun:
    run = extraction_run_execute(run_id=extraction_start(integration=integration, trigger="manual").pk)
    assert run is not None
    assert run.status == ExtractionRun.Status.SUCCEEDED, run.error
    return run


def seen_at(row: TargetUser | TargetGroup) -> datetime:
    rows: Any = with_seen_at(type(row).objects.filter(pk=row.pk))
    return rows.get().seen_at


def started(run: ExtractionRun) -> datetime:
    assert run.started_at is not None
    return run.started_at


def test_an_unchanged_account_shows_the_last_extraction_it_was_in(
    peer: Peer, admin_client: Client, admin: Person, api_client_for: Callable[[Person], APIClient]
) -> None:
    ada = peer.user("ada", displayName="Ada L")
    peer.group("Team", [ada])
    app = Integration.objects.create(name="Peer", base_url=peer.url, bearer_token=PEER_TOKEN)
    extract(app)
    second = extract(app)
    account = TargetUser.objects.get(integration=app, user_name="ada")
    team = TargetGroup.objects.get(integration=app)
    assert account.last_seen_at < started(second)  # unchanged: its row was not written again

    assert seen_at(account) == second.started_at
    assert seen_at(team) == second.started_at
    shown = formats.date_format(timezone.localtime(second.started_at), "DATETIME_FORMAT")
    detail = admin_client.get(f"/integrations/{app.pk}/users/{account.pk}/").content.decode()
    assert f"{shown}</time></dd>" in detail  # the last of "first / last seen"
    assert shown in admin_client.get(f"/integrations/{app.pk}/users/").content.decode()
    api = api_client_for(admin)
    for kind in ("users", "groups"):
        listed = api.get(f"/api/v1/integrations/{app.pk}/{kind}/").json()["results"][0]
        assert parse_datetime(listed["last_seen_at"]) == second.started_at


def test_a_removed_account_was_last_seen_by_the_run_before_the_one_that_found_it_gone(
    peer: Peer,
) -> None:
    ada = peer.user("ada")
    app = Integration.objects.create(name="Peer", base_url=peer.url, bearer_token=PEER_TOKEN)
    extract(app)
    second = extract(app)
    assert peer.http.delete(f"/Users/{ada['id']}").status_code == 204
    extract(app)
    account = TargetUser.objects.get(integration=app, user_name="ada")
    assert account.removed_at is not None
    assert seen_at(account) == second.started_at


def test_a_later_read_by_an_action_counts_and_a_failed_run_does_not(peer: Peer) -> None:
    peer.user("ada")
    app = Integration.objects.create(name="Peer", base_url=peer.url, bearer_token=PEER_TOKEN)
    run = extract(app)
    account = TargetUser.objects.get(integration=app, user_name="ada")
    later = started(run) + timedelta(hours=1)
    ExtractionRun.objects.create(
        integration=app, trigger="manual", status=ExtractionRun.Status.FAILED, started_at=later, finished_at=later
    )
    assert seen_at(account) == max(started(run), account.last_seen_at)
    TargetUser.objects.filter(pk=account.pk).update(last_seen_at=later + timedelta(minutes=5))
    assert seen_at(account) == later + timedelta(minutes=5)
