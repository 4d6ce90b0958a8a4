"""Fronts over the real SCIM server that bend SCIM the way some applications do.

Each bend is a switch on :class:`Bent`; what passes the front reaches scim2-server itself,
so the server's state is the truth the tests check. Every write that reaches the server is
recorded, with the resource it was aimed at.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from scim2_server.testserver.application import BearerTokenApplication

from tests.scim_peer import ERROR, SCIM, _serve

Wsgi = Callable[..., Iterable[bytes]]
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@dataclass
class Write:
    method: str
    path: str
    body: Any
    if_match: str | None = None


@dataclass
class Bent:
    url: str = ""
    ignore_filter: bool = False  # answers a filtered list as if unfiltered
    filter_unsupported: bool = False  # ServiceProviderConfig says filter.supported: false (and it ignores filters)
    refuse_filter_path_remove: bool = False  # 501 to remove with members[value eq "…"]
    refuse_replace_of: set[str] = field(default_factory=set)  # 501 to PATCH replace of these attribute paths
    refuse_count: bool = False  # 500 to any request with count
    names_as_members: bool = False  # a group's members.value holds userNames, not ids
    patch_does_nothing: bool = False  # 200 to every PATCH, with no body, and nothing changed
    patch_answers_unchanged: bool = False  # 200 to every PATCH, with the resource as it was, and nothing changed
    race_on_post: bool = False  # the next POST finds its resource made meanwhile by another client: 409
    change_before_put: dict[str, Any] | None = None  # another client's PATCH replace, made just before the next PUT
    raced: list[dict[str, Any]] = field(default_factory=list)  # what that other client made
    user_names: dict[str, str] = field(default_factory=dict)  # id -> userName, for names_as_members
    writes: list[Write] = field(default_factory=list)  # what reached the server
    refused: list[Write] = field(default_factory=list)  # what the front refused

    def names(self, *users: dict[str, Any]) -> None:
        for user in users:
            self.user_names[str(user["id"])] = str(user["userName"])

    def written_to(self, method: str | None = None) -> list[str]:
        return [w.path for w in self.writes if method is None or w.method == method]


def _answer(start_response: Callable[..., Any], status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", SCIM), ("Content-Length", str(len(data)))])
    return [data]


def _error(start_response: Callable[..., Any], status: int, detail: str) -> list[bytes]:
    words = {400: "Bad Request", 500: "Internal Server Error", 501: "Not Implemented"}[status]
    return _answer(start_response, f"{status} {words}", {"schemas": [ERROR], "status": str(status), "detail": detail})


def bent_front(app: Wsgi, state: Bent) -> Wsgi:
    def front(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        body = json.loads(raw) if raw else None

        if state.refuse_count and "count" in query:
            return _error(start_response, 500, "internal error while paging")
        if method == "PATCH" and state.patch_does_nothing:
            state.refused.append(Write(method, path, body))
            start_response("200 OK", [("Content-Length", "0")])
            return [b""]
        if method == "PATCH" and state.patch_answers_unchanged:
            state.refused.append(Write(method, path, body))
            status, _, unchanged = _pass(app, environ, "GET", path, {}, None)
            return _answer(start_response, status, json.loads(unchanged))
        if method == "POST" and state.race_on_post and isinstance(body, dict):
            # Another client made the resource a moment before: the same names, another display name.
            state.race_on_post = False
            other = {**body, "displayName": f"{body.get('displayName', '')} (made meanwhile)".strip()}
            if "/Groups" in path:
                other["displayName"] = body.get("displayName")
            _, _, made = _pass(app, environ, "POST", path, {}, other)
            state.raced.append(json.loads(made))
            if "/Groups" in path:  # scim2-server keeps group names unique only where the application does
                state.refused.append(Write(method, path, body))
                return _answer(
                    start_response,
                    "409 Conflict",
                    {"schemas": [ERROR], "status": "409", "scimType": "uniqueness", "detail": "displayName taken"},
                )
        if method == "PATCH" and isinstance(body, dict):
            operations = body.get("Operations") or []
            if state.refuse_filter_path_remove:
                if any(
                    str(op.get("op", "")).lower() == "remove" and "[" in str(op.get("path", "")) for op in operations
                ):
                    state.refused.append(Write(method, path, body))
                    return _error(start_response, 501, "filtered paths are not supported")
                # What it accepts instead, a value list, passed on in the form scim2-server takes.
                body = {**body, "Operations": [form for op in operations for form in _by_filter_path(op)]}
            if any(
                str(op.get("op", "")).lower() == "replace" and op.get("path") in state.refuse_replace_of
                for op in operations
            ):
                state.refused.append(Write(method, path, body))
                return _error(start_response, 501, "replace of this attribute is not supported")
        if (state.ignore_filter or state.filter_unsupported) and "filter" in query:
            query.pop("filter")
        if state.names_as_members:
            by_name = {name.lower(): user_id for user_id, name in state.user_names.items()}
            if "filter" in query:
                query["filter"] = re.sub(
                    r'members\.value eq "([^"]*)"',
                    lambda m: f'members.value eq "{by_name.get(m.group(1).lower(), m.group(1))}"',
                    query["filter"],
                )
            if isinstance(body, dict) and "/Groups" in path:
                body = _names_to_ids(body, by_name)
        if method == "PUT" and state.change_before_put is not None:
            # Another client changes the resource between the console's read and its write.
            change, state.change_before_put = state.change_before_put, None
            operations = [{"op": "replace", "path": key, "value": value} for key, value in change.items()]
            _pass(app, environ, "PATCH", path, {}, {"schemas": [PATCH_OP], "Operations": operations})
        if method in ("POST", "PUT", "PATCH", "DELETE"):
            state.writes.append(Write(method, path, body, environ.get("HTTP_IF_MATCH")))

        data = json.dumps(body).encode() if body is not None else b""
        environ = {
            **environ,
            "QUERY_STRING": urlencode(query),
            "wsgi.input": io.BytesIO(data),
            "CONTENT_LENGTH": str(len(data)),
        }
        captured: dict[str, Any] = {}

        def keep(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            captured["status"], captured["headers"] = status, headers
            return lambda _: None

        answer = b"".join(app(environ, keep))
        if answer and (state.filter_unsupported or state.names_as_members):
            try:
                parsed = json.loads(answer)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                if state.filter_unsupported and path.rstrip("/").endswith("ServiceProviderConfig"):
                    parsed["filter"] = {"supported": False, "maxResults": 0}
                if state.names_as_members:
                    parsed = _ids_to_names(parsed, state.user_names)
                answer = json.dumps(parsed).encode()
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        start_response(captured["status"], [*headers, ("Content-Length", str(len(answer)))])
        return [answer]

    return front


def _pass(
    app: Wsgi, environ: dict[str, Any], method: str, path: str, query: dict[str, str], body: Any
) -> tuple[str, list[tuple[str, str]], bytes]:
    """A request of the front's own passed to the server: (status, headers, body)."""
    data = json.dumps(body).encode() if body is not None else b""
    own = {
        **{key: value for key, value in environ.items() if key not in ("HTTP_IF_MATCH", "HTTP_IF_NONE_MATCH")},
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": urlencode(query),
        "wsgi.input": io.BytesIO(data),
        "CONTENT_LENGTH": str(len(data)),
    }
    captured: dict[str, Any] = {}

    def keep(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        captured["status"], captured["headers"] = status, headers
        return lambda _: None

    answer = b"".join(app(own, keep))
    return captured["status"], captured["headers"], answer


def _by_filter_path(operation: dict[str, Any]) -> list[dict[str, Any]]:
    """A value-list removal of members as filter-path removals; any other operation as it is."""
    if str(operation.get("op", "")).lower() != "remove" or operation.get("path") != "members":
        return [operation]
    values = operation.get("value") or []
    return [{"op": "remove", "path": f'members[value eq "{v["value"]}"]'} for v in values if isinstance(v, dict)]


def _names_to_ids(body: dict[str, Any], by_name: dict[str, str]) -> dict[str, Any]:
    text = json.dumps(body)
    for name, user_id in by_name.items():
        text = re.sub(rf'"{re.escape(name)}"', f'"{user_id}"', text, flags=re.I)
        text = re.sub(rf'value eq \\"{re.escape(name)}\\"', f'value eq \\"{user_id}\\"', text, flags=re.I)
    return dict(json.loads(text))


def _ids_to_names(body: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    def group(resource: dict[str, Any]) -> dict[str, Any]:
        if isinstance(resource.get("members"), list):
            resource["members"] = [
                {**m, "value": names.get(str(m.get("value")), m.get("value"))} for m in resource["members"]
            ]
        return resource

    if isinstance(body.get("Resources"), list):
        body["Resources"] = [group(r) if isinstance(r, dict) else r for r in body["Resources"]]
        return body
    return group(body)


@pytest.fixture
def bent(scim2_server_app: BearerTokenApplication, scim2_server_storage: Any) -> Iterator[Bent]:
    """The real server, empty, behind a front whose bends each test switches on."""
    scim2_server_storage.resources = []
    state = Bent()
    for port in _serve(bent_front(scim2_server_app, state)):
        state.url = f"http://localhost:{port}"
        yield state
