"""The one mechanism that decides who may reach which view.

Every view declares an :class:`AccessPolicy` (a decorator for function views, a class
attribute for class-based views and API viewsets). :class:`AccessPolicyMiddleware`
enforces it before any view runs, for the UI, the REST API and /scim/v2 alike; a view
that declares nothing is refused (fail closed). ``tests/console/test_access_matrix.py``
walks every URL pattern with every role against these declarations.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, TypeVar

from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.views import redirect_to_login
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from console.accounts.models import ApiKey, Person
from console.accounts.permissions import Perm
from console.core.db import first_raw

logger = logging.getLogger(__name__)

PUBLIC: Literal["public"] = "public"  # anyone, signed in or not
AUTHENTICATED: Literal["authenticated"] = "authenticated"  # any signed-in person, whatever their roles
Requirement = Perm | Literal["public", "authenticated"]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
Style = Literal["html", "json", "scim"]


@dataclass(frozen=True)
class AccessPolicy:
    """What a view requires: ``read`` for safe methods, ``write`` for the rest.

    ``actions`` overrides both for named API viewset actions (``create``, ``revoke`` …).
    """

    read: Requirement
    write: Requirement | None = None
    actions: Mapping[str, Requirement] = field(default_factory=dict)
    style: Style = "html"

    def requirement(self, method: str, action: str | None = None) -> Requirement | None:
        if action and action in self.actions:
            return self.actions[action]
        if method.upper() in SAFE_METHODS:
            return self.read
        return self.write


def api_policy(read: Requirement = Perm.VIEW, write: Requirement | None = None, **actions: Requirement) -> AccessPolicy:
    return AccessPolicy(read=read, write=write, actions=actions, style="json")


ViewFunc = TypeVar("ViewFunc", bound=Callable[..., HttpResponseBase])


def requires(
    read: Requirement, write: Requirement | None = None, style: Style = "html"
) -> Callable[[ViewFunc], ViewFunc]:
    """Declare the policy of a function view: ``@requires(Perm.VIEW, write=Perm.MANAGE_PEOPLE)``."""

    def decorate(view: ViewFunc) -> ViewFunc:
        view.access_policy = AccessPolicy(read=read, write=write, style=style)  # type: ignore[attr-defined]
        return view

    return decorate


def policy_of(view_func: Callable[..., Any]) -> AccessPolicy | None:
    policy = getattr(view_func, "access_policy", None)
    for holder in ("cls", "view_class"):  # DRF views and Django class-based views
        if policy is None and hasattr(view_func, holder):
            policy = getattr(getattr(view_func, holder), "access_policy", None)
    return policy


def action_of(view_func: Callable[..., Any], method: str) -> str | None:
    actions = getattr(view_func, "actions", None)  # set on DRF viewset views
    return actions.get(method.lower()) if actions else None


def acting_person(request: HttpRequest | Request) -> Person:
    """The signed-in person of a request that passed the access policy."""
    user = request.user
    if not isinstance(user, Person):
        raise exceptions.NotAuthenticated()
    return user


def _implements(view_func: Callable[..., Any], method: str) -> bool:
    """Whether a class-based view handles ``method``; function views are assumed to."""
    actions = getattr(view_func, "actions", None)
    if actions is not None:
        return method.lower() in actions
    view_class = getattr(view_func, "cls", None) or getattr(view_func, "view_class", None)
    return view_class is None or hasattr(view_class, method.lower())


def person_meets(person: Any, requirement: Requirement) -> bool:
    if requirement == PUBLIC:
        return True
    if not getattr(person, "is_authenticated", False) or not person.is_active:
        return False
    if requirement == AUTHENTICATED:
        return True
    return bool(person.has_console_permission(requirement))


def _refuse(request: HttpRequest, policy: AccessPolicy, status: int, detail: str) -> HttpResponse:
    if policy.style == "html":
        if status == 401:
            return redirect_to_login(request.get_full_path())
        return render(request, "403.html", {"detail": detail}, status=403)
    if policy.style == "scim":
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": str(status), "detail": detail}
        response: HttpResponse = JsonResponse(body, status=status, content_type="application/scim+json")
    else:
        response = JsonResponse(
            {"detail": detail, "code": "not_authenticated" if status == 401 else "forbidden"}, status=status
        )
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="console"'
    return response


class AccessPolicyMiddleware:
    """Enforce the declared policy of every view before it runs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., Any], view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        policy = policy_of(view_func)
        if policy is None:
            logger.error("view without access policy refused", extra={"path": request.path})
            return _refuse(
                request, AccessPolicy(read=PUBLIC, style="json"), 403, "This view declares no access policy."
            )
        requirement = policy.requirement(request.method or "GET", action_of(view_func, request.method or "GET"))
        if requirement is None:
            if not _implements(view_func, request.method or "GET"):
                return None  # the view answers 405 Method Not Allowed itself
            return _refuse(request, policy, 403, f"{request.method} is not allowed here.")
        if requirement == PUBLIC:
            return None
        person = request.user
        if not getattr(person, "is_authenticated", False):
            error = getattr(request, "api_key_error", None)
            return _refuse(request, policy, 401, error or "Authentication credentials were not provided.")
        if not person_meets(person, requirement):
            detail = (
                "Your roles do not allow this."
                if requirement == AUTHENTICATED
                else f"Your roles do not allow this (needs the permission {requirement})."
            )
            return _refuse(request, policy, 403, detail)
        return None


# --- API keys -------------------------------------------------------------------------

BEARER_PATHS = ("/api/", "/scim/")
LAST_USED_RESOLUTION = timedelta(minutes=1)


def bearer_token(request: HttpRequest) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def owner_with_permissions(person_id: int) -> Person:
    """The key's owner with every permission they hold, in one statement.

    Every bearer request pays for this, so it is hand-written SQL (the ORM spends several
    times the database's own time composing the equivalent joins). The permissions land
    where :func:`console.accounts.selectors.person_permissions` keeps them, so the access
    check that follows makes no query of its own.
    """
    from console.accounts.models import Role, Team, TeamMembership
    from console.accounts.selectors import permissions_remember

    person_roles = Person.roles.through._meta.db_table
    team_roles = Team.roles.through._meta.db_table
    rows = list(
        Person.objects.raw(
            f"""SELECT p.*, r.permissions AS role_permissions
                FROM {Person._meta.db_table} p
                LEFT JOIN {Role._meta.db_table} r ON r.id IN (
                    SELECT role_id FROM {person_roles} WHERE person_id = p.id
                    UNION SELECT tr.role_id FROM {team_roles} tr
                        JOIN {TeamMembership._meta.db_table} m ON m.team_id = tr.team_id
                        WHERE m.person_id = p.id)
                WHERE p.id = %s""",  # noqa: S608 - table names from the models, values as parameters
            [person_id],
        )
    )
    person = rows[0]
    granted: set[str] = set()
    for row in rows:
        value = row.role_permissions  # type: ignore[attr-defined]
        if value is not None:
            granted.update(json.loads(value) if isinstance(value, str) else value)
    permissions_remember(person=person, permissions=granted)
    return person


def api_key_authenticate(token: str) -> tuple[ApiKey | None, str]:
    """Return the key for ``token`` or ``(None, reason)``. Reasons never echo the token."""
    from console.accounts.services import parse_api_key

    parsed = parse_api_key(token)
    if parsed is None:
        return None, "Invalid API key."
    prefix, secret = parsed
    by_prefix = f"SELECT * FROM {ApiKey._meta.db_table} WHERE prefix = %s"  # noqa: S608 - as above
    key = first_raw(ApiKey, by_prefix, [prefix])
    if key is None or not key.matches(secret):
        return None, "Invalid API key."
    if key.is_revoked:
        return None, "This API key has been revoked."
    if key.is_expired:
        return None, "This API key has expired."
    key.owner = owner_with_permissions(key.owner_id)
    if not key.owner.is_active:
        return None, "The owner of this API key is inactive."
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        # The condition is the statement's own, so parallel requests write once and the time
        # never goes back (a read, then a write, let each of them write its own "now").
        stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
        if ApiKey.objects.filter(stale, pk=key.pk).update(last_used_at=now):
            key.last_used_at = now
    return key, ""


class ApiKeyAuthenticationMiddleware:
    """``Authorization: Bearer <key>`` on /api/ and /scim/ paths authenticates as the key's owner."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(BEARER_PATHS):
            token = bearer_token(request)
            if token is not None:
                key, reason = api_key_authenticate(token)
                request.api_key = key  # type: ignore[attr-defined]
                request.user = key.owner if key else AnonymousUser()
                if key is None:
                    request.api_key_error = reason  # type: ignore[attr-defined]
        return self.get_response(request)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """DRF view of what :class:`ApiKeyAuthenticationMiddleware` established."""

    def authenticate(self, request: Request) -> tuple[Person, ApiKey] | None:
        django_request = request._request
        if bearer_token(django_request) is None:
            return None
        key = getattr(django_request, "api_key", None)
        if key is None:
            raise exceptions.AuthenticationFailed(getattr(django_request, "api_key_error", "Invalid API key."))
        return key.owner, key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="console"'


class CsrfSessionAuthentication(authentication.SessionAuthentication):
    """Session sign-in for the API, with CSRF enforced on writes."""


class ConsolePermission(permissions.BasePermission):
    """Re-checks, inside DRF, the same policy the middleware enforced."""

    def has_permission(self, request: Request, view: Any) -> bool:
        policy: AccessPolicy | None = getattr(view, "access_policy", None)
        if policy is None:
            return False
        method = (request.method or "GET").lower()
        requirement = policy.requirement(method, getattr(view, "action", None))
        if requirement is None:
            return not hasattr(view, method)  # unimplemented: let DRF answer 405
        return person_meets(request.user, requirement)
