"""The per-key SCIM rate limit holds under parallel requests: exactly the limit gets through."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection

from console.accounts.models import Person
from console.accounts.services import api_key_create
from tests.scim.conftest import ScimClient

pytestmark = pytest.mark.django_db(transaction=True)


def statuses_in_parallel(tokens: list[str], path: str = "ServiceProviderConfig") -> list[tuple[str, int]]:
    """One request per token, each on a thread of its own, all let go at the same moment."""
    # The limit is per clock minute: keep clear of a minute's end, where the count starts again.
    if 60 - time.time() % 60 < 15:
        time.sleep(60 - time.time() % 60 + 0.1)
    start = threading.Barrier(len(tokens))

    def call(token: str) -> tuple[str, int]:
        client = ScimClient(token)
        start.wait()
        try:
            return token, client.get(path).status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(len(tokens)) as pool:
        return list(pool.map(call, tokens))


def test_parallel_requests_over_the_limit_get_exactly_the_limit_through(scim: ScimClient, settings: Any) -> None:
    settings.SCIM_RATE_LIMIT_PER_MINUTE = 5
    statuses = [status for _, status in statuses_in_parallel([scim.token] * 30)]
    assert statuses.count(200) == 5
    assert statuses.count(429) == 25


def test_parallel_requests_of_two_keys_each_get_their_own_limit(scim: ScimClient, admin: Person, settings: Any) -> None:
    settings.SCIM_RATE_LIMIT_PER_MINUTE = 4
    other = api_key_create(actor=admin, owner=admin, name="entra").token
    answers = statuses_in_parallel([scim.token] * 15 + [other] * 15)
    for token in (scim.token, other):
        assert [status for key, status in answers if key == token].count(200) == 4
