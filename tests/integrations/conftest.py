"""A real third-party SCIM server (scim2-server) to extract from, emptied before each test."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from integrations.models import Integration

SCIM = "application/scim+json"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


class Peer:
    """Loads data into the SCIM server through its own API."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, headers={"Content-Type": SCIM}, timeout=10)

    def user(self, user_name: str, **extra: Any) -> dict[str, Any]:
        body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name, **extra}
        if ENTERPRISE in extra:
            body["schemas"].append(ENTERPRISE)
        response = self.http.post("/Users", json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def group(self, name: str, members: list[dict[str, Any]]) -> dict[str, Any]:
        body = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": name,
            "members": [{"value": m["id"], "type": "User"} for m in members],
        }
        response = self.http.post("/Groups", json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())


@pytest.fixture
def peer(scim2_server: Any, scim2_server_storage: Any) -> Peer:
    scim2_server_storage.resources = []
    return Peer(f"http://localhost:{scim2_server.port}")


@pytest.fixture
def make_integration(db: None) -> Callable[..., Integration]:
    def make(url: str, **fields: Any) -> Integration:
        return Integration.objects.create(name=fields.pop("name", "App"), base_url=url, **fields)

    return make
