"""Integrations are tested against the real SCIM server of ``tests.scim_peer``."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from integrations.models import Integration
from tests.scim_peer import ACME, ENTERPRISE, ERROR, PEER_TOKEN, SCIM, Peer, _serve

__all__ = ["ACME", "ENTERPRISE", "PEER_TOKEN", "Peer"]

# A front sees each request first: it may rewrite the environ and return None (the real
# server answers), or answer itself with (status, JSON body).
Front = Callable[[dict[str, Any]], tuple[int, dict[str, Any]] | None]
STATUS_TEXT = {200: "OK", 404: "Not Found", 501: "Not Implemented"}


# What the Add integration form posts for a valid bearer-token integration.
INTEGRATION_FORM: dict[str, Any] = {
    "name": "Jira",
    "kind": "scim",
    "base_url": "https://jira.example.com/scim/v2",
    "auth_type": "bearer",
    "bearer_token": "tok-9",
    "users_endpoint": "Users",
    "groups_endpoint": "Groups",
    "timeout_seconds": 30,
    "page_size": 100,
    "rate_limit_per_second": 10,
    "rate_limit_burst": 20,
    "max_concurrency": 4,
    "membership_chunk_size": 100,
    "mass_change_max_accounts": 25,
    "mass_change_max_percent": 10,
}


def scim_error(status: int, detail: str) -> tuple[int, dict[str, Any]]:
    return status, {"schemas": [ERROR], "status": str(status), "detail": detail}


@pytest.fixture
def make_integration(db: None) -> Callable[..., Integration]:
    def make(url: str, **fields: Any) -> Integration:
        fields.setdefault("bearer_token", PEER_TOKEN)
        return Integration.objects.create(name=fields.pop("name", "App"), base_url=url, **fields)

    return make


@pytest.fixture
def peer_behind(scim2_server_app: Any) -> Iterator[Callable[[Front], str]]:
    """``peer_behind(front)``: the URL of the real server (the ``peer``'s data) behind ``front``."""
    servers = contextlib.ExitStack()

    def serve(front: Front) -> str:
        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            answer = front(environ)
            if answer is None:
                return scim2_server_app(environ, start_response)
            status, body = answer
            data = json.dumps(body).encode()
            start_response(
                f"{status} {STATUS_TEXT.get(status, 'Status')}",
                [("Content-Type", SCIM), ("Content-Length", str(len(data)))],
            )
            return [data]

        port = servers.enter_context(contextlib.contextmanager(_serve)(app))
        return f"http://localhost:{port}"

    with servers:
        yield serve
