"""Dry runs: an action's real executor, run against the console's picture of the application.

The executor is given a ``RecordingClient``: the ``ScimClient`` the workers use, whose
transport sends nothing. It records every request the executor makes, answers the reads
from the console's picture (the extracted ``TargetUser`` and ``TargetGroup`` rows, with
what the dry run wrote so far) and accepts every write. The executor's run is a
``DryRun``, which keeps nothing: no account remembered, no change to the picture, no call
log, no success; and what the client learns of the application's dialect stays in it. So
the plan an action type shows (``provisioning/action_types``) is made of the requests its
executor makes, and cannot drift from what the workers send.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any
from urllib.parse import unquote

import httpx

from integrations.models import Integration, TargetGroup, TargetUser
from integrations.scim_client import SCIM_JSON, ScimClient, ScimClientError
from provisioning.action_types.base import Executor, NoLongerAllowed, groups_endpoint, users_endpoint
from provisioning.dialect_forms import applied
from provisioning.lookups import Listing
from provisioning.models import Action

LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
# The id of a resource a dry run creates: the application assigns it when the action runs.
NEW_ID = "(assigned by the application)"
EQUALS = re.compile(r'^\s*([\w.:]+) eq "((?:[^"\\]|\\.)*)"\s*$')


@dataclass
class PlannedRequest:
    method: str
    path: str
    body: dict[str, Any] | None = None
    note: str = ""
    # The account or group the path names, by its name: "PATCH Groups/abc123 (Engineers)".
    label: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value not in (None, "")}


class Picture:
    """The console's picture of one application, answering a dry run's requests.

    Reads are answered from the extracted rows, or from what the dry run wrote before them;
    writes succeed, and change only the dry run's own copy of the resource.
    """

    def __init__(self, integration: Integration) -> None:
        self.integration = integration
        self.users = users_endpoint(integration)
        self.groups = groups_endpoint(integration)
        self.written: dict[str, dict[str, Any] | None] = {}  # path -> the resource as written (None: deleted)
        self.replaced: dict[str, list[dict[str, Any]]] = {}  # path -> the replace operations patched since

    def answer(self, method: str, path: str, params: dict[str, str], body: Any) -> httpx.Response:
        if method == "GET":
            return self._read(path, params)
        if method == "POST":
            created = {**body, "id": NEW_ID}
            self.written[f"{path}/{NEW_ID}"] = created
            return _json(201, created)
        if method == "PUT":
            written = {**body, "id": path.rpartition("/")[2]}
            self.written[path] = written
            self.replaced.pop(path, None)
            return _json(200, written)
        if method == "DELETE":
            self.written[path] = None
            self.replaced.pop(path, None)
            return httpx.Response(204)
        operations = (body or {}).get("Operations") or []
        if all(str(op.get("op")).lower() == "replace" for op in operations):  # a member's change is not read back
            self.replaced.setdefault(path, []).extend(operations)
        return httpx.Response(204)

    def _read(self, path: str, params: dict[str, str]) -> httpx.Response:
        endpoint, _, remote_id = path.partition("/")
        if remote_id:
            resource = self._resource(path)
            return _json(404, {"detail": "not in the console's picture"}) if resource is None else _json(200, resource)
        rows = self._matching(endpoint, params.get("filter"))
        if rows is None:
            return _json(400, {"detail": "a filter the console's picture does not answer"})
        start = max(1, int(params.get("startIndex") or 1))
        count = int(params["count"]) if params.get("count") else None
        page = list(rows.order_by("pk")[start - 1 : start - 1 + count if count is not None else None])
        resources = [self._as_resource(row) for row in page]
        whole = start == 1 and (count is None or len(page) < count)  # the page holds every row: no count needed
        return _json(
            200,
            {
                "schemas": [LIST_RESPONSE],
                "totalResults": len(page) if whole else rows.count(),
                "startIndex": start,
                "itemsPerPage": len(resources),
                "Resources": resources,
            },
        )

    def _resource(self, path: str) -> dict[str, Any] | None:
        """The resource at ``path``, with what the dry run wrote to it."""
        resource = self.written[path] if path in self.written else self._pictured(path)
        if resource is not None and path in self.replaced:
            return applied(resource, self.replaced[path])
        return resource

    def _pictured(self, path: str) -> dict[str, Any] | None:
        endpoint, _, remote_id = path.partition("/")
        rows: Any = {self.users: TargetUser.objects, self.groups: TargetGroup.objects}.get(endpoint)
        if rows is None or not remote_id:
            return None
        row = rows.filter(integration=self.integration, remote_id=remote_id, removed_at__isnull=True).first()
        return None if row is None else self._as_resource(row)

    def _matching(self, endpoint: str, filter_text: str | None) -> Any:
        """The rows of ``endpoint`` the filter selects (all without one); None for a filter not answered."""
        if endpoint == self.users:
            rows: Any = TargetUser.objects.filter(integration=self.integration, removed_at__isnull=True)
            lookups = {"userName": "user_name__iexact", "externalId": "external_id"}
        elif endpoint == self.groups:
            rows = TargetGroup.objects.filter(integration=self.integration, removed_at__isnull=True)
            lookups = {"displayName": "display_name__iexact", "members.value": "memberships__member_remote_id"}
        else:
            return None
        if not filter_text:
            return rows
        clause = EQUALS.match(filter_text)
        if clause is None or clause[1] not in lookups:
            return None
        value = re.sub(r"\\(.)", r"\1", clause[2])
        # Each row once (a join on members could repeat it), without DISTINCT over the json resource column.
        return rows.filter(pk__in=rows.filter(**{lookups[clause[1]]: value}).values("pk"))

    def _as_resource(self, row: TargetUser | TargetGroup) -> dict[str, Any]:
        """The row's resource as extracted, with what its columns say where the resource is silent."""
        if isinstance(row, TargetUser):
            known = {"userName": row.user_name, "active": row.active}
            if row.external_id:
                known["externalId"] = row.external_id
        else:
            known = {"displayName": row.display_name}
        return {**known, **(row.resource or {}), "id": row.remote_id}


def _json(status: int, body: dict[str, Any]) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode(), headers={"Content-Type": SCIM_JSON})


class RecordingClient(ScimClient):
    """The workers' SCIM client, sending nothing: every request is recorded and answered by the picture."""

    def __init__(self, integration: Integration) -> None:
        self.picture = Picture(integration)
        self.sent: list[PlannedRequest] = []  # every request, in order
        super().__init__(integration, http=httpx.Client(transport=httpx.MockTransport(self._answer)), read_attempts=1)
        self.base_path = unquote(httpx.URL(self.base).path)

    @functools.cached_property
    def _headers_and_auth(self) -> tuple[dict[str, str], httpx.BasicAuth | None]:
        return {"Accept": SCIM_JSON, "Content-Type": SCIM_JSON}, None  # nothing leaves: no credentials

    def learn(self, capability: str, value: Any, note: str = "") -> None:
        """Kept for this dry run only: what a dry run meets is the picture, not the application."""
        self.learned[capability] = (value, note)

    def _answer(self, request: httpx.Request) -> httpx.Response:
        path = unquote(request.url.path)[len(self.base_path) :].strip("/")
        params = dict(request.url.params.multi_items())
        body = json.loads(request.content) if request.content else None
        query = "&".join(f"{key}={value}" for key, value in params.items())
        self.sent.append(PlannedRequest(request.method, f"{path}?{query}" if query else path, body))
        return self.picture.answer(request.method, path, params, body)


class DryRun:
    """The run of a dry run: it keeps nothing (the picture stays as it is, and nothing is logged)."""

    def __init__(self) -> None:
        self.listing = Listing()
        self.lookups: dict[tuple[str, str], dict[str, Any] | None] = {}

    def remember_user(self, action: Action, resource: dict[str, Any]) -> None:
        """Not remembered: the account exists only in the dry run."""

    def update_picture(self, change: Callable[[], None]) -> None:
        """Not made: nothing changed in the application."""

    def keep_record(self, write: Callable[[], object]) -> None:
        """Not kept: the dry run read the console's picture, not the application."""


@dataclass
class Rehearsal:
    """What an executor did in a dry run."""

    requests: list[PlannedRequest]  # every request it made, in order
    result: dict[str, Any] = field(default_factory=dict)
    stopped: str = ""  # why it would stop (the error it raised), or ""

    @property
    def writes(self) -> list[PlannedRequest]:
        return [request for request in self.requests if request.method != "GET"]

    @property
    def look_ups(self) -> list[PlannedRequest]:
        """The reads before the first write: what decides what is written."""
        reads = []
        for request in self.requests:
            if request.method != "GET":
                break
            reads.append(request)
        return reads

    def steps(self, planned: list[PlannedRequest]) -> list[PlannedRequest]:
        """``planned``, and why the action would stop there, if it would."""
        if not self.stopped:
            return planned
        return [*planned, PlannedRequest("—", "", note=f"it would stop here: {self.stopped}")]


def rehearse(integration: Integration, action_type: str, parameters: dict[str, Any], execute: Executor) -> Rehearsal:
    """Run ``execute`` on an unsaved action of these parameters, against the picture."""
    action = Action(integration=integration, action_type=action_type, parameters=parameters)
    client = RecordingClient(integration)
    try:
        result = execute(action, client, DryRun())
    except (ScimClientError, NoLongerAllowed) as stop:
        return Rehearsal(client.sent, stopped=str(stop))
    finally:
        client.http.close()
    return Rehearsal(client.sent, result)


# --- labels: what a path names, by name ------------------------------------------------------


def user_names(integration: Integration, user_ids: list[str]) -> dict[str, str]:
    return dict(
        TargetUser.objects.filter(integration=integration, remote_id__in=user_ids).values_list("remote_id", "user_name")
    )


def group_name(integration: Integration, group_id: str) -> str:
    names = TargetGroup.objects.filter(integration=integration, remote_id=group_id).values_list(
        "display_name", flat=True
    )
    return next(iter(names), "")


def members_label(group: str, verb: str, user_ids: list[str], names: dict[str, str]) -> str:
    """ "Engineers: add ada, bob and 3 more" """
    shown = [names.get(user_id, user_id) for user_id in user_ids[:5]]
    more = f" and {len(user_ids) - 5} more" if len(user_ids) > 5 else ""
    return f"{group or 'the group'}: {verb} {', '.join(shown)}{more}"


def with_user_names(
    integration: Integration, requests: list[PlannedRequest], names: dict[str, str] | None = None
) -> list[PlannedRequest]:
    """The requests, each one on an account labelled with its name (from ``names`` where given)."""
    prefix = users_endpoint(integration) + "/"
    if names is None:
        names = user_names(integration, [r.path.removeprefix(prefix) for r in requests if r.path.startswith(prefix)])
    return [
        replace(r, label=names.get(r.path.removeprefix(prefix), "")) if r.path.startswith(prefix) else r
        for r in requests
    ]
