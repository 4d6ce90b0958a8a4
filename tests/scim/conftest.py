"""SCIM fixtures: provisioning switched on, and a client holding a provisioner's API key."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from console.accounts.models import Person
from console.accounts.services import api_key_create
from console.core.models import ConsoleSettings


class ScimClient:
    """A test client speaking application/scim+json with a bearer key."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    def call(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        url = path if path.startswith("/") else f"/scim/v2/{path}"
        data = json.dumps(body) if body is not None else ""
        response = getattr(self.client, method)(url, data=data, content_type="application/scim+json", headers=headers)
        response.json_body = json.loads(response.content) if response.content else None
        return response

    def get(self, path: str, **headers: str) -> Any:
        response: Any = self.client.get(path if path.startswith("/") else f"/scim/v2/{path}", headers=headers)
        response.json_body = json.loads(response.content) if response.content else None
        return response

    def post(self, path: str, body: Any, **headers: str) -> Any:
        return self.call("post", path, body, **headers)

    def put(self, path: str, body: Any, **headers: str) -> Any:
        return self.call("put", path, body, **headers)

    def patch(self, path: str, body: Any, **headers: str) -> Any:
        return self.call("patch", path, body, **headers)

    def delete(self, path: str, **headers: str) -> Any:
        return self.call("delete", path, **headers)


def patch_op(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": list(operations)}


@pytest.fixture
def scim_enabled(db: None) -> ConsoleSettings:
    current = ConsoleSettings.load()
    current.scim_provisioning_enabled = True
    current.save()
    return current


@pytest.fixture
def provisioner(make_person: Callable[..., Person]) -> Person:
    return make_person("okta-provisioner", roles=["scim_provisioner"], password=None)


@pytest.fixture
def scim(scim_enabled: ConsoleSettings, provisioner: Person, admin: Person) -> ScimClient:
    """A SCIM client; a local admin exists too, as in any real console."""
    return ScimClient(api_key_create(actor=provisioner, owner=provisioner, name="okta").token)


@pytest.fixture
def make_user(scim: ScimClient) -> Callable[..., dict[str, Any]]:
    def make(user_name: str = "ada@example.com", **attributes: Any) -> dict[str, Any]:
        body = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": user_name,
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"value": user_name, "type": "work", "primary": True}],
            "active": True,
            **attributes,
        }
        response = scim.post("Users", body)
        assert response.status_code == 201, response.content
        return dict(response.json_body)

    return make
