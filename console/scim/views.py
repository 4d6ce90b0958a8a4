"""The /scim/v2 endpoints: Users, Groups, Schemas, ResourceTypes, ServiceProviderConfig."""

from __future__ import annotations

import json
import logging
import math
import uuid
from typing import Any

from django.conf import settings
from django.db import DatabaseError, DataError, connection
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from scim2_models import EnterpriseUser, Group, User

from console.accounts.access import AccessPolicy, acting_person
from console.accounts.models import Person, Role, Team
from console.accounts.permissions import Perm
from console.core.counters import count_in_window
from console.core.db import first_raw
from console.core.errors import ConsoleError
from console.core.models import ConsoleSettings
from console.scim.errors import ScimError, invalid_syntax, not_found
from console.scim.filters import scim_filter_apply
from console.scim.ids import id_q, parse_id
from console.scim.patch import operations_of
from console.scim.resources import MANAGER_ANNOTATIONS, group_to_scim, location, user_to_scim, version_of
from console.scim.services import (
    roles_known,
    scim_group_create,
    scim_group_delete,
    scim_group_patch,
    scim_group_replace,
    scim_user_create,
    scim_user_delete,
    scim_user_patch,
    scim_user_replace,
)

logger = logging.getLogger(__name__)

SCIM_JSON = "application/scim+json"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
MAX_PAGE = 200
MAX_START = 2**62  # an OFFSET the databases take; a page past every resource is empty either way


def scim_response(body: Any, status: int = 200, **headers: str) -> HttpResponse:
    response = JsonResponse(body, status=status, content_type=SCIM_JSON, safe=False)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def error_response(error: ScimError) -> HttpResponse:
    body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(error.status), "detail": error.detail}
    if error.scim_type:
        body["scimType"] = error.scim_type
    return scim_response(body, error.status)


def scim_rate_limited(key_id: int) -> int:
    """Seconds to wait when this key has used up its requests for the current minute, else 0.

    The request is counted and the total read back in one atomic step, so parallel requests
    get exactly the limit through (see :mod:`console.core.counters`).
    """
    limit = int(settings.SCIM_RATE_LIMIT_PER_MINUTE)
    if limit <= 0:
        return 0
    used = count_in_window(f"scim-rate:{key_id}", 60, aligned=True)
    if used.count > limit:
        return max(1, math.ceil(used.seconds_left))
    return 0


@method_decorator(csrf_exempt, name="dispatch")  # bearer keys only, never a session cookie
class ScimView(View):
    access_policy = AccessPolicy(read=Perm.SCIM_PROVISION, write=Perm.SCIM_PROVISION, style="scim")
    http_method_names = ["get", "post", "put", "patch", "delete"]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            if getattr(request, "api_key", None) is None:
                raise ScimError(401, "Authenticate with Authorization: Bearer <API key>.")
            if not ConsoleSettings.load().scim_provisioning_enabled:
                raise ScimError(
                    403, "SCIM provisioning is turned off. An admin can enable it under Settings > Sign-in."
                )
            wait = scim_rate_limited(request.api_key.pk)  # type: ignore[attr-defined]
            if wait:
                response = error_response(ScimError(429, f"Too many requests; retry in {wait} s."))
                response["Retry-After"] = str(wait)
                return response
            return super().dispatch(request, *args, **kwargs)
        except ConsoleError as exc:
            # A rule of the console refused, in SCIM's shape: whatever the path (group patch,
            # replace or delete, a member's roles), the accounts services refuse to leave the
            # console without an active local admin (409).
            return error_response(ScimError(exc.status, exc.message))
        except ScimError as error:
            response = error_response(error)
            if error.status == 401:
                response["WWW-Authenticate"] = 'Bearer realm="scim"'
            return response
        except DataError:
            logger.warning("scim value refused by the database", extra={"path": request.path})
            return error_response(ScimError(400, "A value does not fit its attribute.", "invalidValue"))
        except DatabaseError:
            # The server failed (a lock timeout, a lost connection): never a bare 500 page, and
            # never the exception text (it may quote secrets).
            logger.exception("scim request failed", extra={"path": request.path})
            return error_response(ScimError(500, "The request failed on the server; it has been logged."))

    def http_method_not_allowed(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return error_response(ScimError(405, f"{request.method} is not supported here."))

    def body(self, request: HttpRequest) -> dict[str, Any]:
        try:
            data = json.loads(request.body or b"null")
        except (ValueError, UnicodeDecodeError):
            raise invalid_syntax("The body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise invalid_syntax("The body must be a JSON object.")
        return data

    def check_version(self, request: HttpRequest, instance: Person | Team) -> None:
        expected = request.headers.get("If-Match")
        if (
            expected
            and expected.strip() != "*"
            and version_of(instance) not in [v.strip() for v in expected.split(",")]
        ):
            raise ScimError(412, "The resource changed since you read it (If-Match does not match its version).")


def attribute_lists(request: HttpRequest) -> tuple[set[str], set[str]]:
    def split(name: str) -> set[str]:
        return {a.strip().lower() for a in request.GET.get(name, "").split(",") if a.strip()}

    return split("attributes"), split("excludedAttributes")


def project(body: dict[str, Any], attributes: set[str], excluded: set[str]) -> dict[str, Any]:
    """Apply ``attributes`` / ``excludedAttributes`` (id, schemas and meta always stay)."""
    always = {"id", "schemas", "meta"}
    if attributes:
        roots = {a.split(".")[0] for a in attributes}
        return {k: v for k, v in body.items() if k.lower() in roots or k in always}
    if excluded:
        return {k: v for k, v in body.items() if k.lower() not in excluded or k in always}
    return body


def paging(request: HttpRequest) -> tuple[int, int]:
    try:
        start = min(max(1, int(request.GET.get("startIndex", "1"))), MAX_START)
        count = max(0, min(int(request.GET.get("count", str(MAX_PAGE))), MAX_PAGE))
    except ValueError:
        raise ScimError(400, "startIndex and count must be integers.", "invalidValue") from None
    return start, count


def list_response(resources: list[dict[str, Any]], total: int, start: int) -> HttpResponse:
    return scim_response(
        {
            "schemas": [LIST_SCHEMA],
            "totalResults": total,
            "startIndex": start,
            "itemsPerPage": len(resources),
            "Resources": resources,
        }
    )


def people() -> QuerySet[Person]:
    return Person.objects.filter(removed_at__isnull=True)


def scim_person(ident: int | uuid.UUID) -> Person | None:
    """One person (not removed), by key or SCIM id, with their direct roles and their manager's
    SCIM id, which the document and the answer read.

    Two plain statements, each an index probe: every request on /Users/{id} starts here.
    """
    # table names come from the models; values travel as parameters
    table = Person._meta.db_table
    if isinstance(ident, int):
        column, value = "id", ident
    else:
        column, value = "scim_id", Person._meta.get_field("scim_id").get_db_prep_value(ident, connection)
    by_id = f"""SELECT p.*, m.id AS scim_manager_key, m.scim_id AS scim_manager_id FROM {table} p
                LEFT JOIN {table} m ON m.id = p.manager_id
                WHERE p.{column} = %s AND p.removed_at IS NULL"""  # noqa: S608
    person = first_raw(Person, by_id, [value])
    if person is not None:
        if isinstance(person.scim_manager_id, str):  # type: ignore[attr-defined]  # SQLite keeps UUIDs as text
            person.scim_manager_id = uuid.UUID(person.scim_manager_id)  # type: ignore[attr-defined]
        roles = Role.objects.raw(
            f"""SELECT r.* FROM {Role._meta.db_table} r
                JOIN {Person.roles.through._meta.db_table} pr ON pr.role_id = r.id
                WHERE pr.person_id = %s ORDER BY r.name""",  # noqa: S608
            [person.pk],
        )
        roles_known(person, list(roles))
    return person


class SearchMixin(ScimView):
    """``POST …/.search``: the query travels in a SearchRequest body instead of the URL."""

    def search(self, request: HttpRequest) -> HttpResponse:
        body = self.body(request)
        params = request.GET.copy()
        for key in ("filter", "startIndex", "count"):
            if body.get(key) is not None:
                params[key] = str(body[key])
        for key in ("attributes", "excludedAttributes"):
            if isinstance(body.get(key), list):
                params[key] = ",".join(str(a) for a in body[key])
        request.GET = params  # type: ignore[assignment]
        return self.get(request)

    def get(self, request: HttpRequest) -> HttpResponse:
        raise NotImplementedError


class UsersView(SearchMixin):
    def post(self, request: HttpRequest) -> HttpResponse:
        if request.path.rstrip("/").endswith("/.search"):
            return self.search(request)
        person, _ = scim_user_create(body=self.body(request), actor=acting_person(request), request=request)
        body = user_to_scim(person, request)
        return scim_response(body, 201, Location=body["meta"]["location"], ETag=body["meta"]["version"])

    def get(self, request: HttpRequest) -> HttpResponse:
        queryset = people()
        if request.GET.get("filter"):
            queryset = scim_filter_apply(queryset, request.GET["filter"], resource="User")
        start, count = paging(request)
        total = queryset.count()
        page = (
            list(
                queryset.order_by("pk")
                .annotate(**MANAGER_ANNOTATIONS)
                .prefetch_related("roles")[start - 1 : start - 1 + count]
            )
            if count
            else []
        )
        attributes, excluded = attribute_lists(request)
        return list_response([project(user_to_scim(p, request), attributes, excluded) for p in page], total, start)


class UserView(ScimView):
    def person(self, pk: str) -> Person:
        """``pk`` is the person's SCIM id or, as a client may have stored it, their integer key."""
        ident = parse_id(pk)
        person = None if ident is None else scim_person(ident)
        if person is None:
            raise not_found("No such user.")
        return person

    def respond(self, request: HttpRequest, person: Person, status: int = 200) -> HttpResponse:
        body = project(user_to_scim(person, request), *attribute_lists(request))
        return scim_response(body, status, ETag=version_of(person), Location=location(request, "user", person.scim_id))

    def get(self, request: HttpRequest, pk: str) -> HttpResponse:
        person = self.person(pk)
        if request.headers.get("If-None-Match") == version_of(person):
            return HttpResponse(status=304)
        return self.respond(request, person)

    def put(self, request: HttpRequest, pk: str) -> HttpResponse:
        person = self.person(pk)
        self.check_version(request, person)
        person = scim_user_replace(
            person=person, body=self.body(request), actor=acting_person(request), request=request
        )
        return self.respond(request, person)  # the services keep the instance current

    def patch(self, request: HttpRequest, pk: str) -> HttpResponse:
        person = self.person(pk)
        self.check_version(request, person)
        operations = operations_of(self.body(request))
        person = scim_user_patch(person=person, operations=operations, actor=acting_person(request), request=request)
        return self.respond(request, person)  # the services keep the instance current

    def delete(self, request: HttpRequest, pk: str) -> HttpResponse:
        person = self.person(pk)
        self.check_version(request, person)
        scim_user_delete(person=person, actor=acting_person(request), request=request)
        return HttpResponse(status=204)


class GroupsView(SearchMixin):
    def get(self, request: HttpRequest) -> HttpResponse:
        queryset = Team.objects.all()
        if request.GET.get("filter"):
            queryset = scim_filter_apply(queryset, request.GET["filter"], resource="Group")
        start, count = paging(request)
        total = queryset.count()
        page = list(queryset.order_by("pk")[start - 1 : start - 1 + count]) if count else []
        attributes, excluded = attribute_lists(request)
        with_members = "members" not in excluded and (not attributes or "members" in attributes)
        resources = [project(group_to_scim(t, request, with_members=with_members), attributes, excluded) for t in page]
        return list_response(resources, total, start)

    def post(self, request: HttpRequest) -> HttpResponse:
        if request.path.rstrip("/").endswith("/.search"):
            return self.search(request)
        team = scim_group_create(body=self.body(request), actor=acting_person(request), request=request)
        body = group_to_scim(team, request)
        return scim_response(body, 201, Location=body["meta"]["location"], ETag=body["meta"]["version"])


class GroupView(ScimView):
    def team(self, pk: str) -> Team:
        """``pk`` is the team's SCIM id or, as a client may have stored it, its integer key."""
        ident = parse_id(pk)
        team = None if ident is None else Team.objects.filter(id_q(ident)).first()
        if team is None:
            raise not_found("No such group.")
        return team

    def respond(self, request: HttpRequest, team: Team) -> HttpResponse:
        attributes, excluded = attribute_lists(request)
        with_members = "members" not in excluded and (not attributes or "members" in attributes)
        body = project(group_to_scim(team, request, with_members=with_members), attributes, excluded)
        return scim_response(body, 200, ETag=version_of(team), Location=location(request, "group", team.scim_id))

    def get(self, request: HttpRequest, pk: str) -> HttpResponse:
        team = self.team(pk)
        if request.headers.get("If-None-Match") == version_of(team):
            return HttpResponse(status=304)
        return self.respond(request, team)

    def put(self, request: HttpRequest, pk: str) -> HttpResponse:
        team = self.team(pk)
        self.check_version(request, team)
        team = scim_group_replace(team=team, body=self.body(request), actor=acting_person(request), request=request)
        return self.respond(request, team)

    def patch(self, request: HttpRequest, pk: str) -> HttpResponse:
        team = self.team(pk)
        self.check_version(request, team)
        operations = operations_of(self.body(request))
        team = scim_group_patch(team=team, operations=operations, actor=acting_person(request), request=request)
        if request.GET.get("attributes") or request.GET.get("excludedAttributes"):
            return self.respond(request, team)
        response = HttpResponse(status=204)
        response["ETag"] = version_of(team)
        return response

    def delete(self, request: HttpRequest, pk: str) -> HttpResponse:
        team = self.team(pk)
        self.check_version(request, team)
        scim_group_delete(team=team, actor=acting_person(request), request=request)
        return HttpResponse(status=204)


def _schema(model: Any, request: HttpRequest) -> dict[str, Any]:
    schema = model.to_schema().model_dump(scim_ctx=None, exclude_none=True, by_alias=True, mode="json")
    schema["meta"] = {
        "resourceType": "Schema",
        "location": request.build_absolute_uri(f"/scim/v2/Schemas/{schema['id']}"),
    }
    return schema


ROLES_ATTRIBUTE_VALUES = ["admin", "operator", "viewer", "scim_provisioner"]


def schemas_of(request: HttpRequest) -> list[dict[str, Any]]:
    found = [_schema(User, request), _schema(EnterpriseUser, request), _schema(Group, request)]
    # Passwords are not accepted over SCIM (changePassword: false), so the schema does not offer one.
    found[0]["attributes"] = [a for a in found[0]["attributes"] if a["name"] != "password"]
    for attribute in found[0]["attributes"]:
        if attribute["name"] == "roles":
            attribute["description"] = f"Console roles granted directly: {', '.join(ROLES_ATTRIBUTE_VALUES)}."
            for sub in attribute.get("subAttributes", []):
                if sub["name"] == "value":
                    sub["canonicalValues"] = ROLES_ATTRIBUTE_VALUES
    return found


class SchemasView(ScimView):
    def get(self, request: HttpRequest, schema_id: str | None = None) -> HttpResponse:
        schemas = schemas_of(request)
        if schema_id is not None:
            match = next((s for s in schemas if s["id"] == schema_id), None)
            if match is None:
                raise not_found("No such schema.")
            return scim_response(match)
        return list_response(schemas, len(schemas), 1)


def resource_types(request: HttpRequest) -> list[dict[str, Any]]:
    base = request.build_absolute_uri("/scim/v2/ResourceTypes/")
    return [
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "People",
            "schema": "urn:ietf:params:scim:schemas:core:2.0:User",
            "schemaExtensions": [
                {"schema": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "required": False}
            ],
            "meta": {"resourceType": "ResourceType", "location": base + "User"},
        },
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "Teams",
            "schema": "urn:ietf:params:scim:schemas:core:2.0:Group",
            "meta": {"resourceType": "ResourceType", "location": base + "Group"},
        },
    ]


class ResourceTypesView(ScimView):
    def get(self, request: HttpRequest, type_id: str | None = None) -> HttpResponse:
        types = resource_types(request)
        if type_id is not None:
            match = next((t for t in types if t["id"] == type_id), None)
            if match is None:
                raise not_found("No such resource type.")
            return scim_response(match)
        return list_response(types, len(types), 1)


class ServiceProviderConfigView(ScimView):
    def get(self, request: HttpRequest) -> HttpResponse:
        return scim_response(
            {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
                "documentationUri": request.build_absolute_uri("/api/docs/"),
                "patch": {"supported": True},
                "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
                "filter": {"supported": True, "maxResults": MAX_PAGE},
                "changePassword": {"supported": False},
                "sort": {"supported": False},
                "etag": {"supported": True},
                "authenticationSchemes": [
                    {
                        "type": "oauthbearertoken",
                        "name": "API key",
                        "primary": True,
                        "description": "Authorization: Bearer <API key of a person with the SCIM provisioner role>",
                    }
                ],
                "meta": {
                    "resourceType": "ServiceProviderConfig",
                    "location": request.build_absolute_uri("/scim/v2/ServiceProviderConfig"),
                },
            }
        )


class RootSearchView(ScimView):
    """``POST /.search`` across Users and Groups: people first, then teams, paged together.

    Ids are unique across both types, so each resource appears once; a numeric ``id`` (an
    old key, meaningful within one type only) matches nothing here.
    """

    def post(self, request: HttpRequest) -> HttpResponse:
        body = SearchMixin.body(self, request)
        text = body.get("filter")
        if text is not None and not isinstance(text, str):
            raise invalid_syntax("filter must be a string.")
        try:
            start = min(max(1, int(body.get("startIndex") or 1)), MAX_START)
            raw_count = body.get("count")
            count = max(0, min(int(raw_count if raw_count is not None else MAX_PAGE), MAX_PAGE))
        except (TypeError, ValueError):
            raise ScimError(400, "startIndex and count must be integers.", "invalidValue") from None
        attributes = {str(a).lower() for a in body.get("attributes") or []}
        excluded = {str(a).lower() for a in body.get("excludedAttributes") or []}
        users: QuerySet[Person] = people()
        teams: QuerySet[Team] = Team.objects.all()
        if text:
            # An attribute one resource type lacks simply matches none of that type.
            errors = []
            try:
                users = scim_filter_apply(users, text, resource="User", own_keys=False)
            except ScimError as error:
                errors.append(error)
                users = people().none()
            try:
                teams = scim_filter_apply(teams, text, resource="Group", own_keys=False)
            except ScimError as error:
                errors.append(error)
                teams = Team.objects.none()
            if len(errors) == 2:
                raise errors[0]
        user_total = users.count()
        total = user_total + teams.count()
        offset = start - 1
        resources: list[dict[str, Any]] = []
        if count and offset < user_total:
            page = (
                users.order_by("pk").annotate(**MANAGER_ANNOTATIONS).prefetch_related("roles")[offset : offset + count]
            )
            resources += [project(user_to_scim(p, request), attributes, excluded) for p in page]
        remaining = count - len(resources)
        if remaining > 0:
            team_offset = max(0, offset - user_total)
            with_members = "members" not in excluded and (not attributes or "members" in attributes)
            resources += [
                project(group_to_scim(t, request, with_members=with_members), attributes, excluded)
                for t in teams.order_by("pk")[team_offset : team_offset + remaining]
            ]
        return list_response(resources, total, start)


@csrf_exempt
def scim_not_found(request: HttpRequest, path: str = "") -> HttpResponse:
    return error_response(ScimError(404, "No such SCIM endpoint."))


scim_not_found.access_policy = AccessPolicy(read="public", write="public", style="scim")  # type: ignore[attr-defined]
