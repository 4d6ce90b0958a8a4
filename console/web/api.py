"""Conventions every REST resource shares: JSON errors with a message and field errors."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from console.accounts.services import AccessError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Errors read ``{"detail": message, "code": code, "fields": {field: [messages]}}``."""
    if isinstance(exc, AccessError):
        exc = exceptions.ValidationError({"non_field_errors": [str(exc)]})
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
