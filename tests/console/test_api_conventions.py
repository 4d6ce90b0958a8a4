"""What every REST resource shares: schema, docs, JSON errors, keyset pages."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.test import Client

from console.accounts.models import Person

pytestmark = pytest.mark.django_db


def test_the_openapi_schema_lists_the_resources_and_both_auth_schemes(admin_client: Client) -> None:
    response = admin_client.get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    for path in ("/api/v1/people/", "/api/v1/roles/", "/api/v1/api-keys/", "/api/v1/audit-events/"):
        assert path in schema["paths"]
    assert set(schema["components"]["securitySchemes"]) == {"apiKey", "session"}
    assert "cursor" in str(schema["paths"]["/api/v1/people/"]["get"]["parameters"])


def test_the_docs_page_is_served_from_local_assets(admin_client: Client) -> None:
    page = admin_client.get("/api/docs/").content.decode()
    assert "swagger-ui" in page
    asset_urls = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert asset_urls
    assert all(url.startswith("/") for url in asset_urls), asset_urls


def test_unknown_api_paths_answer_json_404(admin_client: Client) -> None:
    response = admin_client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_session_writes_to_the_api_need_the_csrf_token(make_person: Callable[..., Person]) -> None:
    admin = make_person("boss", roles=["admin"])
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    response = client.post("/api/v1/roles/", {"name": "auditor", "label": "Auditor", "permissions": []})
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_custom_roles_bundle_permissions_and_built_ins_are_fixed(admin: Person, api_client_for: Callable) -> None:
    client = api_client_for(admin)
    created = client.post(
        "/api/v1/roles/",
        {"name": "auditor", "label": "Auditor", "permissions": ["console.view"]},
        format="json",
    )
    assert created.status_code == 201, created.json()
    bad = client.post("/api/v1/roles/", {"name": "x", "label": "X", "permissions": ["fly"]}, format="json")
    assert bad.status_code == 400
    assert "permissions" in bad.json()["fields"]
    viewer = client.get("/api/v1/roles/?name=viewer").json()["results"][0]
    response = client.patch(f"/api/v1/roles/{viewer['id']}/", {"permissions": []}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == "Built-in roles cannot be changed."


def test_keyset_pages_walk_forward_and_back_over_ties(admin: Person, api_client_for: Callable) -> None:
    from console.accounts.models import Person as P

    P.objects.bulk_create([P(username=f"user{n:03}") for n in range(30)])
    client = api_client_for(admin)
    forward: list[list[str]] = []
    url: str | None = "/api/v1/people/?page_size=7"
    while url:
        body = client.get(url).json()
        forward.append([p["username"] for p in body["results"]])
        last_previous, url = body["previous"], body["next"]
    names = [n for page in forward for n in page]
    assert names == sorted(names)
    assert len(names) == 31
    backward: list[list[str]] = []
    url = last_previous
    while url:
        body = client.get(url).json()
        backward.append([p["username"] for p in body["results"]])
        url = body["previous"]
    assert backward == list(reversed(forward[:-1]))
