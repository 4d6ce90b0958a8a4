"""The OpenAPI schema says what the reconciliation and access-history endpoints really answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory, django_db_blocker: Any) -> dict[str, Any]:
    """The schema as ``manage.py spectacular --validate --fail-on-warn`` writes it (a warning fails)."""
    out: Path = tmp_path_factory.mktemp("schema") / "schema.yaml"
    with django_db_blocker.unblock():
        call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    return yaml.safe_load(out.read_text())


def _answer(schema: dict[str, Any], path: str, method: str = "get", code: str = "200") -> dict[str, Any]:
    found = schema["paths"][path][method]["responses"][code]["content"]["application/json"]["schema"]
    return _resolve(schema, found)


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        return schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def test_a_plans_detail_is_its_fields_and_a_page_of_its_items(schema: dict[str, Any]) -> None:
    detail = _answer(schema, "/api/v1/integrations/{id}/plans/{plan}/")
    fields = detail["properties"]
    assert {"id", "duration", "count", "counts", "next", "previous", "page_size", "results"} <= set(fields)
    assert _resolve(schema, fields["results"]["items"])["properties"]["state"]
    assert fields["next"]["nullable"] is True
    names = {p["name"] for p in schema["paths"]["/api/v1/integrations/{id}/plans/{plan}/"]["get"]["parameters"]}
    assert {"cursor", "page_size", "category"} <= names


def test_a_groups_members_are_a_page_of_them_now_and_as_of(schema: dict[str, Any]) -> None:
    path = "/api/v1/integrations/{id}/groups/{group_pk}/members/"
    members = _answer(schema, path)
    assert {"summary", "count", "next", "previous", "page_size", "results"} <= set(members["properties"])
    names = {p["name"] for p in schema["paths"][path]["get"]["parameters"]}
    assert {"as_of", "cursor", "page_size"} <= names


def test_a_persons_accounts_are_a_list_now_and_an_object_as_of_a_date(schema: dict[str, Any]) -> None:
    answer = _answer(schema, "/api/v1/people/{id}/accounts/")
    now, then = answer["oneOf"]
    assert now["type"] == "array"
    assert _resolve(schema, now["items"])["properties"]["why"]
    then = _resolve(schema, then)
    assert {"as_of", "summary", "unknown", "results"} <= set(then["properties"])


def test_making_a_plan_answers_its_detail_or_202_while_a_worker_makes_it(schema: dict[str, Any]) -> None:
    path = "/api/v1/integrations/{id}/plans/"
    assert "results" in _answer(schema, path, "post", "201")["properties"]
    queued = _answer(schema, path, "post", "202")["properties"]
    assert {"url", "state", "state_text", "expected", "planned", "error"} <= set(queued)
    assert set(_resolve(schema, queued["state"])["enum"]) == {"ready", "making", "failed"}
