"""Conventions every REST resource shares: JSON errors with a message and field errors."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter
from rest_framework.views import exception_handler as drf_exception_handler

from console.core.errors import ConsoleError


class ConsoleRouter(DefaultRouter):
    """The router every resource is registered on: an ``{id}`` in a path is a whole number.

    DRF's default lookup takes any text, and a view's ``pk=text`` look-up then fails in
    the database layer (a 500); with digits only, anything else never reaches a view and
    answers the JSON 404. A viewset that looks up by something else says so with its own
    ``lookup_value_regex``.
    """

    include_root_view = False
    include_format_suffixes = False
    default_lookup_value_regex = "[0-9]+"

    def __init__(self) -> None:
        super().__init__(trailing_slash=True)

    def get_lookup_regex(self, viewset: Any, lookup_prefix: str = "") -> str:
        if getattr(viewset, "lookup_value_regex", None) is None:
            lookup_field = getattr(viewset, "lookup_url_kwarg", None) or getattr(viewset, "lookup_field", "pk")
            return f"(?P<{lookup_prefix}{lookup_field}>{self.default_lookup_value_regex})"
        return super().get_lookup_regex(viewset, lookup_prefix)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Errors read ``{"detail": message, "code": code, "fields": {field: [messages]}}``.

    The console's own errors (``console.core.errors``) are mapped here and nowhere else:
    their class says the status (400 bad input with ``fields``, 409 refused, 404 unknown).
    """
    if isinstance(exc, ConsoleError):
        return console_error_response(exc)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    if isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields: Any = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        non_field = fields.get("non_field_errors")
        message = str(non_field[0]) if non_field else "Some fields are not valid; see fields."
        response.data = {"detail": message, "code": "invalid", "fields": fields}
        response.status_code = status.HTTP_400_BAD_REQUEST
    elif isinstance(exc, exceptions.APIException):
        response.data = {"detail": str(exc.detail), "code": exc.get_codes()}
    return response


def console_error_response(exc: ConsoleError) -> Response:
    """The one JSON shape of a console error."""
    body: dict[str, Any] = {"detail": exc.message, "code": exc.code}
    if exc.status == status.HTTP_400_BAD_REQUEST:
        body["fields"] = {exc.field or "non_field_errors": [exc.message]}
    return Response(body, status=exc.status)
